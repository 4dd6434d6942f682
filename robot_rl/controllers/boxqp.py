"""Small dense linear algebra and the box-constrained QP of control-limited DDP, compiled.

Everything here runs inside the Riccati backward pass (once per time step per iteration), so
it is written as Numba ``njit`` functions with explicit loops over preallocated buffers: on
matrices this small (a handful of states and controls) a BLAS call or an allocation costs
more than the arithmetic. Failure is reported through return codes, never exceptions.

``box_qp`` is the projected-Newton solver of Tassa, Mansard & Todorov, "Control-limited
differential dynamic programming" (ICRA 2014): minimise ``½ xᵀHx + gᵀx`` subject to
``low <= x <= high``. Newton steps are taken on the free (unclamped) subspace with a
projected Armijo line search; the result carries the free set and the Cholesky factor of
``H`` on it, from which DDP computes its feedback gains (zero rows for clamped controls).
"""

from __future__ import annotations

import numba
import numpy as np

BOX_QP_MAX_ITER = 100
BOX_QP_MIN_GRAD = 1e-10
BOX_QP_MIN_REL_IMPROVE = 1e-12
BOX_QP_STEP_DECREASE = 0.6
BOX_QP_MIN_STEP = 1e-22
BOX_QP_ARMIJO = 0.1

BOX_QP_NOT_POSITIVE_DEFINITE = -1
"""``box_qp`` return code: the Hessian on the free subspace is not positive definite."""

BOX_QP_WORK_ROWS = 6
"""Rows of the (rows, m) float scratch buffer ``box_qp`` needs."""


# -- small dense kernels ----------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b for (r, p) a and (p, c) b."""
    r, p = a.shape
    c = b.shape[1]
    for i in range(r):
        for j in range(c):
            acc = 0.0
            for q in range(p):
                acc += a[i, q] * b[q, j]
            out[i, j] = acc


@numba.njit(cache=True, inline="always")
def matmul_tn(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = aᵀ @ b for (p, r) a and (p, c) b."""
    p, r = a.shape
    c = b.shape[1]
    for i in range(r):
        for j in range(c):
            acc = 0.0
            for q in range(p):
                acc += a[q, i] * b[q, j]
            out[i, j] = acc


@numba.njit(cache=True, inline="always")
def matvec(a: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """out = a @ v for (r, p) a."""
    r, p = a.shape
    for i in range(r):
        acc = 0.0
        for q in range(p):
            acc += a[i, q] * v[q]
        out[i] = acc


@numba.njit(cache=True, inline="always")
def matvec_t(a: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """out = aᵀ @ v for (p, r) a."""
    p, r = a.shape
    for i in range(r):
        acc = 0.0
        for q in range(p):
            acc += a[q, i] * v[q]
        out[i] = acc


@numba.njit(cache=True)
def cholesky_inplace(a: np.ndarray) -> bool:
    """Lower Cholesky factor of the symmetric (k, k) ``a``, written into its lower triangle
    (the strict upper triangle is zeroed). Returns False if ``a`` is not positive definite."""
    k = a.shape[0]
    for j in range(k):
        s = a[j, j]
        for p in range(j):
            s -= a[j, p] * a[j, p]
        if not s > 0.0:  # also catches NaN
            return False
        d = np.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, k):
            s = a[i, j]
            for p in range(j):
                s -= a[i, p] * a[j, p]
            a[i, j] = s / d
        for i in range(j):
            a[i, j] = 0.0
    return True


@numba.njit(cache=True)
def cholesky_solve_inplace(chol: np.ndarray, b: np.ndarray) -> None:
    """Overwrite ``b`` (k, r) with ``A⁻¹ b`` where ``chol`` is the lower factor of ``A``."""
    k, r = b.shape
    for c in range(r):
        for i in range(k):
            s = b[i, c]
            for p in range(i):
                s -= chol[i, p] * b[p, c]
            b[i, c] = s / chol[i, i]
        for i in range(k - 1, -1, -1):
            s = b[i, c]
            for p in range(i + 1, k):
                s -= chol[p, i] * b[p, c]
            b[i, c] = s / chol[i, i]


@numba.njit(cache=True, inline="always")
def _quadratic(h: np.ndarray, g: np.ndarray, x: np.ndarray) -> float:
    m = g.shape[0]
    value = 0.0
    for i in range(m):
        hx = 0.0
        for j in range(m):
            hx += h[i, j] * x[j]
        value += x[i] * (g[i] + 0.5 * hx)
    return value


@numba.njit(cache=True, inline="always")
def _clamp_into(x: np.ndarray, low: np.ndarray, high: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = min(max(x[i], low[i]), high[i])


# -- the box QP -----------------------------------------------------------------------------------
@numba.njit(cache=True)
def box_qp(
    h: np.ndarray,
    g: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    x0: np.ndarray,
    x: np.ndarray,
    free: np.ndarray,
    chol_free: np.ndarray,
    free_idx: np.ndarray,
    work: np.ndarray,
) -> int:
    """Solve ``min ½ xᵀhx + gᵀx`` s.t. ``low <= x <= high`` by projected Newton.

    Args:
        h: (m, m) symmetric Hessian.
        g: (m,) gradient.
        low, high: (m,) bounds (``-inf``/``inf`` for none); ``low <= high`` is the caller's
            responsibility.
        x0: (m,) initial guess (clamped into the box).
        x: (m,) output, the minimiser.
        free: (m,) bool output, True where the solution is off its bounds (or the bound
            does not push against the gradient).
        chol_free: (m, m) output; its leading (n_free, n_free) block holds the lower
            Cholesky factor of ``h`` restricted to the free indices.
        free_idx: (m,) int64 output; its first n_free entries are the free indices, in order.
        work: (BOX_QP_WORK_ROWS, m) scratch.

    Returns:
        The number of free indices n_free (>= 0), or ``BOX_QP_NOT_POSITIVE_DEFINITE``.
    """
    m = g.shape[0]
    grad, search, candidate, rhs = work[0], work[1], work[2], work[3:4].T
    clamped, old_clamped = work[4], work[5]  # 1.0 / 0.0 flags
    _clamp_into(x0, low, high, x)
    clamped[:] = 0.0
    n_free = -1
    value = _quadratic(h, g, x)
    old_value = 0.0
    for it in range(BOX_QP_MAX_ITER):
        if it > 0 and (old_value - value) < BOX_QP_MIN_REL_IMPROVE * abs(old_value):
            break
        old_value = value
        matvec(h, x, grad)
        changed = it == 0
        for i in range(m):
            grad[i] += g[i]
            old_clamped[i] = clamped[i]
            at_bound = (x[i] == low[i] and grad[i] > 0.0) or (x[i] == high[i] and grad[i] < 0.0)
            clamped[i] = 1.0 if at_bound else 0.0
            changed = changed or clamped[i] != old_clamped[i]
        if changed:  # refactorise only when the free set changed
            n_free = 0
            for i in range(m):
                if clamped[i] == 0.0:
                    free_idx[n_free] = i
                    n_free += 1
            if n_free == 0:
                break
            for a in range(n_free):
                for b in range(n_free):
                    chol_free[a, b] = h[free_idx[a], free_idx[b]]
            if not cholesky_inplace(chol_free[:n_free, :n_free]):
                return BOX_QP_NOT_POSITIVE_DEFINITE
        grad_norm = 0.0
        for a in range(n_free):
            grad_norm += grad[free_idx[a]] ** 2
        if np.sqrt(grad_norm) < BOX_QP_MIN_GRAD:
            break
        # Newton step on the free subspace with the clamped variables held where they are:
        # the free gradient at x with x_free = 0 is g_f + h_fc x_c.
        for a in range(n_free):
            i = free_idx[a]
            acc = g[i]
            for j in range(m):
                if clamped[j] != 0.0:
                    acc += h[i, j] * x[j]
            rhs[a, 0] = acc
        cholesky_solve_inplace(chol_free[:n_free, :n_free], rhs[:n_free])
        search[:] = 0.0
        for a in range(n_free):
            i = free_idx[a]
            search[i] = -rhs[a, 0] - x[i]
        slope = 0.0
        for i in range(m):
            slope += search[i] * grad[i]
        if slope >= 0.0:  # no descent left (numerical noise at the optimum)
            break
        step = 1.0
        for i in range(m):
            candidate[i] = min(max(x[i] + step * search[i], low[i]), high[i])
        new_value = _quadratic(h, g, candidate)
        while (new_value - value) / (step * slope) < BOX_QP_ARMIJO:
            step *= BOX_QP_STEP_DECREASE
            if step < BOX_QP_MIN_STEP:
                break
            for i in range(m):
                candidate[i] = min(max(x[i] + step * search[i], low[i]), high[i])
            new_value = _quadratic(h, g, candidate)
        if step < BOX_QP_MIN_STEP:
            break
        x[:] = candidate
        value = new_value
    for i in range(m):
        free[i] = clamped[i] == 0.0
    return max(n_free, 0)
