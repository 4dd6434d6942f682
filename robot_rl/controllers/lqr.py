"""The Riccati backward pass shared by iLQR/DDP, finite-horizon LQR and guided policy search,
plus infinite-horizon LQR and an LQR stabilising controller.

``riccati_backward`` is the one dynamic-programming recursion of this package. It works on
time-varying local models, written for deviations ``δx = x - x̄``, ``δu = u - ū`` from a
nominal trajectory:

    δx_{t+1} = fx[t] δx_t + fu[t] δu_t + fc[t]
    ℓ_t(δx, δu) ≈ ½ δxᵀ lxx[t] δx + δuᵀ lux[t] δx + ½ δuᵀ luu[t] δu + lx[t]ᵀ δx + lu[t]ᵀ δu
    ℓ_T(δx)     ≈ ½ δxᵀ vxx_final δx + vx_final ᵀ δx

and returns the affine policy ``δu_t = K[t] δx_t + k[t]`` that minimises the quadratic model
(subject to optional box bounds on δu, solved exactly per step by ``box_qp``) together with
the quadratic value function ``V_t(δx) ≈ ½ δxᵀ Vxx[t] δx + Vx[t]ᵀ δx``. The recursion is the
"improved value update" of Tassa, Erez & Todorov (IROS 2012), so the value function stays
consistent when the gains come from a regularised or clamped Q-function. It is compiled
with Numba; one call on a 100-step cart-pole problem takes tens of microseconds.

Callers:
- iLQR/DDP (``robot_rl.controllers.ilqr``): Jacobians and cost derivatives along the current
  trajectory, ``fc = 0``, box bounds ``u_low - ū ≤ δu ≤ u_high - ū``, regularisation ``reg``;
  DDP adds the dynamics' second derivatives ``fxx, fux, fuu``.
- finite-horizon LQR (``finite_horizon_lqr``): ``x̄ = 0, ū = 0``, so ``δx = x``.
- guided policy search (C-step): time-varying linear-Gaussian dynamics ``fx, fu, fc`` and a
  KL-augmented cost; the controller covariance is ``inv(Quu[t])``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numba
import numpy as np
import scipy.linalg

from robot_rl.controllers.boxqp import (
    BOX_QP_NOT_POSITIVE_DEFINITE,
    BOX_QP_WORK_ROWS,
    box_qp,
    cholesky_solve_inplace,
    matmul,
    matmul_tn,
    matvec,
    matvec_t,
)


class Regularization(enum.Enum):
    """How ``reg`` (μ) enters the backward pass.

    - STATE: μ is added to the next value Hessian inside the Q-function, ``Quu = luu + fuᵀ
      (Vxx + μI) fu`` and ``Qux = lux + fuᵀ (Vxx + μI) fx`` (Tassa et al. 2012): the step is
      penalised for moving the *state*, which keeps it well behaved when ``fu`` is small.
    - CONTROL: Levenberg–Marquardt on the controls, ``Quu = luu + fuᵀ Vxx fu + μI``.
    """

    STATE = "state"
    CONTROL = "control"


class BackwardStatus(enum.Enum):
    """Outcome of ``riccati_backward``."""

    OK = "ok"
    NOT_POSITIVE_DEFINITE = "not_positive_definite"  # Quu (on the free set) not PD at `step`
    NON_FINITE = "non_finite"  # an input, or the recursion at `step`, is NaN or infinite
    INFEASIBLE_BOUNDS = "infeasible_bounds"  # du_low > du_high somewhere


class BackwardPass(NamedTuple):
    """Result of ``riccati_backward``; T steps, n states, m controls.

    Attributes:
        K: (T, m, n) feedback gains, ``δu_t = K[t] δx_t + k[t]`` (zero rows where clamped).
        k: (T, m) feedforward terms (the box-QP solution: within the bounds on δu).
        Vxx: (T + 1, n, n) value-function Hessians; ``Vxx[T] = vxx_final``.
        Vx: (T + 1, n) value-function gradients; ``Vx[T] = vx_final``.
        Quu: (T, m, m) control Hessians of the Q-function, regularised as the gains were
            computed (with ``reg = 0`` this is the exact Q-function Hessian).
        free: (T, m) True where a control is not held at a bound.
        expected: (2,) model-predicted cost change of the step ``α k``:
            ``ΔJ(α) = α expected[0] + α² expected[1]`` (exact for the unconstrained,
            unregularised LQ problem; ``expected[0] <= 0`` when Quu is PD).
        status: ``BackwardStatus.OK`` or why the recursion stopped.
        step: the time step where it stopped (-1 when OK). Arrays are valid from ``step + 1``
            to T; earlier entries are zero.
    """

    K: np.ndarray
    k: np.ndarray
    Vxx: np.ndarray
    Vx: np.ndarray
    Quu: np.ndarray
    free: np.ndarray
    expected: np.ndarray
    status: BackwardStatus
    step: int

    @property
    def ok(self) -> bool:
        return self.status is BackwardStatus.OK


_CODE_NOT_PD = -2
_CODE_NON_FINITE = -3


@numba.njit(cache=True)
def _riccati_kernel(
    fx: np.ndarray,
    fu: np.ndarray,
    fc: np.ndarray,
    lxx: np.ndarray,
    lux: np.ndarray,
    luu: np.ndarray,
    lx: np.ndarray,
    lu: np.ndarray,
    fxx: np.ndarray,
    fux: np.ndarray,
    fuu: np.ndarray,
    second_order: bool,
    reg: float,
    state_reg: bool,
    du_low: np.ndarray,
    du_high: np.ndarray,
    k_init: np.ndarray,
    K: np.ndarray,
    k: np.ndarray,
    Vxx: np.ndarray,
    Vx: np.ndarray,
    Quu_out: np.ndarray,
    free_out: np.ndarray,
    expected: np.ndarray,
) -> tuple[int, int]:
    """The recursion; Vxx[T], Vx[T] are set by the caller. Returns (code, step)."""
    T, n, m = fu.shape
    # Per-step buffers, allocated once.
    vx_next = np.empty(n)
    VA = np.empty((n, n))
    VB = np.empty((n, m))
    Qx = np.empty(n)
    Qu = np.empty(m)
    Qxx = np.empty((n, n))
    Quu = np.empty((m, m))
    Qux = np.empty((m, n))
    Quu_reg = np.empty((m, m))
    Qux_reg = np.empty((m, n))
    BtB = np.empty((m, m))
    BtA = np.empty((m, n))
    KtQuu = np.empty((n, m))
    Kt = np.empty((m, n))
    kt = np.empty(m)
    rhs = np.empty((m, n))
    chol = np.empty((m, m))
    free = np.empty(m, dtype=np.bool_)
    free_idx = np.empty(m, dtype=np.int64)
    work = np.empty((BOX_QP_WORK_ROWS, m))
    for t in range(T - 1, -1, -1):
        A = fx[t]
        B = fu[t]
        Vxx_next = Vxx[t + 1]
        matvec(Vxx_next, fc[t], vx_next)
        for i in range(n):
            vx_next[i] += Vx[t + 1, i]
        matmul(Vxx_next, A, VA)
        matmul(Vxx_next, B, VB)
        matvec_t(A, vx_next, Qx)
        matvec_t(B, vx_next, Qu)
        matmul_tn(A, VA, Qxx)
        matmul_tn(B, VB, Quu)
        matmul_tn(B, VA, Qux)
        if second_order:  # DDP: the dynamics' curvature weighted by the value gradient
            for p in range(n):
                w = vx_next[p]
                for i in range(n):
                    for j in range(n):
                        Qxx[i, j] += w * fxx[t, p, i, j]
                for i in range(m):
                    for j in range(n):
                        Qux[i, j] += w * fux[t, p, i, j]
                    for j in range(m):
                        Quu[i, j] += w * fuu[t, p, i, j]
        for i in range(n):
            Qx[i] += lx[t, i]
            for j in range(n):
                Qxx[i, j] += lxx[t, i, j]
        for i in range(m):
            Qu[i] += lu[t, i]
            for j in range(n):
                Qux[i, j] += lux[t, i, j]
            for j in range(m):
                Quu[i, j] += luu[t, i, j]
        if state_reg:
            matmul_tn(B, B, BtB)
            matmul_tn(B, A, BtA)
            for i in range(m):
                for j in range(m):
                    Quu_reg[i, j] = Quu[i, j] + reg * BtB[i, j]
                for j in range(n):
                    Qux_reg[i, j] = Qux[i, j] + reg * BtA[i, j]
        else:
            for i in range(m):
                for j in range(m):
                    Quu_reg[i, j] = Quu[i, j]
                Quu_reg[i, i] += reg
                for j in range(n):
                    Qux_reg[i, j] = Qux[i, j]
        for i in range(m):
            for j in range(i):
                sym = 0.5 * (Quu_reg[i, j] + Quu_reg[j, i])
                Quu_reg[i, j] = sym
                Quu_reg[j, i] = sym
        n_free = box_qp(
            Quu_reg, Qu, du_low[t], du_high[t], k_init[t], kt, free, chol, free_idx, work
        )
        if n_free == BOX_QP_NOT_POSITIVE_DEFINITE:
            return _CODE_NOT_PD, t
        # Gains on the free controls, K_f = -Quu_ff⁻¹ Qux_f; clamped rows stay zero.
        Kt[:] = 0.0
        if n_free > 0:
            for a in range(n_free):
                for j in range(n):
                    rhs[a, j] = -Qux_reg[free_idx[a], j]
            cholesky_solve_inplace(chol[:n_free, :n_free], rhs[:n_free])
            for a in range(n_free):
                for j in range(n):
                    Kt[free_idx[a], j] = rhs[a, j]
        # Improved value update: the unregularised Q-function with the gains found.
        #   Vx  = Qx + Kᵀ Quu k + Kᵀ Qu + Quxᵀ k
        #   Vxx = Qxx + Kᵀ Quu K + Kᵀ Qux + Quxᵀ K
        matmul_tn(Kt, Quu, KtQuu)
        finite = True
        for i in range(n):
            acc = Qx[i]
            for a in range(m):
                acc += KtQuu[i, a] * kt[a] + Kt[a, i] * Qu[a] + Qux[a, i] * kt[a]
            Vx[t, i] = acc
            finite = finite and np.isfinite(acc)
        for i in range(n):
            for j in range(i + 1):
                acc = 0.5 * (Qxx[i, j] + Qxx[j, i])
                for a in range(m):
                    acc += KtQuu[i, a] * Kt[a, j]
                    acc += Kt[a, i] * Qux[a, j] + Qux[a, i] * Kt[a, j]  # symmetric already
                Vxx[t, i, j] = acc
                Vxx[t, j, i] = acc
                finite = finite and np.isfinite(acc)
        if not finite:
            return _CODE_NON_FINITE, t
        for a in range(m):
            expected[0] += kt[a] * Qu[a]
            quad = 0.0
            for b in range(m):
                quad += Quu[a, b] * kt[b]
            expected[1] += 0.5 * kt[a] * quad
            k[t, a] = kt[a]
            free_out[t, a] = free[a]
            for j in range(n):
                K[t, a, j] = Kt[a, j]
            for b in range(m):
                Quu_out[t, a, b] = Quu_reg[a, b]
    return 0, -1


def _as_steps(name: str, value: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a C-contiguous float64 array of ``shape``, broadcasting a scalar or a
    single step."""
    if value is None:
        return np.zeros(shape)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.shape == shape[1:]:
        arr = np.broadcast_to(arr, shape)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (or {shape[1:]}), got {arr.shape}")
    return np.ascontiguousarray(arr)


def riccati_backward(
    fx: np.ndarray,
    fu: np.ndarray,
    lxx: np.ndarray,
    lux: np.ndarray | None,
    luu: np.ndarray,
    lx: np.ndarray | None,
    lu: np.ndarray | None,
    vxx_final: np.ndarray,
    vx_final: np.ndarray | None = None,
    *,
    fc: np.ndarray | None = None,
    reg: float = 0.0,
    regularization: Regularization = Regularization.STATE,
    du_low: np.ndarray | None = None,
    du_high: np.ndarray | None = None,
    k_init: np.ndarray | None = None,
    fxx: np.ndarray | None = None,
    fux: np.ndarray | None = None,
    fuu: np.ndarray | None = None,
) -> BackwardPass:
    """One backward pass of the (box-constrained) Riccati recursion; see the module docstring.

    Shapes, for T steps, n states and m controls (per-step arrays may be given for a single
    step, without the leading T, to use the same value at every step):

    Args:
        fx: (T, n, n) state Jacobians of the dynamics.
        fu: (T, n, m) control Jacobians of the dynamics.
        lxx: (T, n, n) state Hessians of the running cost.
        lux: (T, m, n) mixed Hessians ∂²ℓ/∂u∂x (None: zero).
        luu: (T, m, m) control Hessians of the running cost.
        lx: (T, n) state gradients (None: zero).
        lu: (T, m) control gradients (None: zero).
        vxx_final: (n, n) Hessian of the terminal cost.
        vx_final: (n,) gradient of the terminal cost (None: zero).
        fc: (T, n) affine term of the dynamics (None: zero, e.g. along a rolled-out
            trajectory).
        reg: regularisation μ >= 0.
        regularization: where μ enters (``Regularization``).
        du_low, du_high: (T, m) bounds on δu (None: unbounded; ±inf entries allowed).
        k_init: (T, m) initial guess for the box QPs (e.g. the previous pass's ``k``).
        fxx, fux, fuu: second derivatives of the dynamics, (T, n, n, n), (T, n, m, n) and
            (T, n, m, m), the first index being the output state (all three or none). Given,
            the pass is DDP's: ``Q·· += Σ_p Vx'[p] f··[p]``; omitted, it is iLQR's.

    Returns:
        A ``BackwardPass``. Non-finite inputs, a Q-function Hessian that is not positive
        definite on the free controls, and ``du_low > du_high`` give a status, not an
        exception.

    Raises:
        ValueError: when shapes do not match or ``reg`` is negative or not finite.
    """
    fx = np.asarray(fx, dtype=np.float64)
    fu = np.asarray(fu, dtype=np.float64)
    if fu.ndim != 3 or fx.shape != (fu.shape[0], fu.shape[1], fu.shape[1]):
        raise ValueError(f"fx must be (T, n, n) and fu (T, n, m); got {fx.shape} and {fu.shape}")
    T, n, m = fu.shape
    if not (np.isfinite(reg) and reg >= 0.0):
        raise ValueError(f"reg must be finite and >= 0, got {reg}")
    fx, fu = np.ascontiguousarray(fx), np.ascontiguousarray(fu)
    lxx = _as_steps("lxx", lxx, (T, n, n))
    lux = _as_steps("lux", lux, (T, m, n))
    luu = _as_steps("luu", luu, (T, m, m))
    lx = _as_steps("lx", lx, (T, n))
    lu = _as_steps("lu", lu, (T, m))
    fc = _as_steps("fc", fc, (T, n))
    vxx_final = np.asarray(vxx_final, dtype=np.float64)
    if vxx_final.shape != (n, n):
        raise ValueError(f"vxx_final must have shape ({n}, {n}), got {vxx_final.shape}")
    vx_final = np.zeros(n) if vx_final is None else np.asarray(vx_final, dtype=np.float64)
    if vx_final.shape != (n,):
        raise ValueError(f"vx_final must have shape ({n},), got {vx_final.shape}")
    low = _as_steps("du_low", -np.inf if du_low is None else du_low, (T, m))
    high = _as_steps("du_high", np.inf if du_high is None else du_high, (T, m))
    k0 = _as_steps("k_init", k_init, (T, m))
    given = [a is not None for a in (fxx, fux, fuu)]
    if any(given) and not all(given):
        raise ValueError("give all of fxx, fux, fuu (DDP) or none of them (iLQR)")
    second_order = all(given)
    if second_order:
        fxx = _as_steps("fxx", fxx, (T, n, n, n))
        fux = _as_steps("fux", fux, (T, n, m, n))
        fuu = _as_steps("fuu", fuu, (T, n, m, m))
    else:
        fxx, fux, fuu = np.zeros((T, 0, n, n)), np.zeros((T, 0, m, n)), np.zeros((T, 0, m, m))

    K = np.zeros((T, m, n))
    k = np.zeros((T, m))
    Vxx = np.zeros((T + 1, n, n))
    Vx = np.zeros((T + 1, n))
    Quu = np.zeros((T, m, m))
    free = np.zeros((T, m), dtype=bool)
    expected = np.zeros(2)

    def result(status: BackwardStatus, step: int) -> BackwardPass:
        return BackwardPass(K, k, Vxx, Vx, Quu, free, expected, status, step)

    if np.isnan(low).any() or np.isnan(high).any() or (low > high).any():
        bad = np.nonzero(~(low <= high).all(axis=1))[0]
        return result(BackwardStatus.INFEASIBLE_BOUNDS, int(bad[-1]))
    arrays = (fx, fu, fc, lxx, lux, luu, lx, lu, k0, fxx, fux, fuu)
    if not all(np.isfinite(a).all() for a in arrays):
        per_step = np.ones(T, dtype=bool)
        for a in arrays:
            per_step &= np.isfinite(a.reshape(T, -1)).all(axis=1)
        return result(BackwardStatus.NON_FINITE, int(np.nonzero(~per_step)[0][-1]))
    if not (np.isfinite(vxx_final).all() and np.isfinite(vx_final).all()):
        return result(BackwardStatus.NON_FINITE, T)
    Vxx[T] = 0.5 * (vxx_final + vxx_final.T)
    Vx[T] = vx_final
    code, step = _riccati_kernel(
        fx,
        fu,
        fc,
        lxx,
        lux,
        luu,
        lx,
        lu,
        fxx,
        fux,
        fuu,
        second_order,
        float(reg),
        regularization is Regularization.STATE,
        low,
        high,
        np.clip(k0, low, high),
        K,
        k,
        Vxx,
        Vx,
        Quu,
        free,
        expected,
    )
    if code == _CODE_NOT_PD:
        return result(BackwardStatus.NOT_POSITIVE_DEFINITE, step)
    if code == _CODE_NON_FINITE:
        return result(BackwardStatus.NON_FINITE, step)
    return result(BackwardStatus.OK, -1)


# -- LQR ------------------------------------------------------------------------------------------
class LQRSolution(NamedTuple):
    """Finite-horizon LQR: ``u_t = K[t] x_t`` minimises
    ``Σ_t ½(x_tᵀQx_t + 2u_tᵀSx_t + u_tᵀRu_t) + ½ x_Tᵀ Q_final x_T``.

    Attributes:
        K: (T, m, n) gains.
        P: (T + 1, n, n) cost-to-go matrices, ``V_t(x) = ½ xᵀ P[t] x``.
    """

    K: np.ndarray
    P: np.ndarray


def finite_horizon_lqr(
    A: np.ndarray,
    B: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    Q_final: np.ndarray,
    horizon: int | None = None,
    S: np.ndarray | None = None,
) -> LQRSolution:
    """Time-varying (or time-invariant) finite-horizon discrete LQR by ``riccati_backward``.

    Args:
        A: (T, n, n) or (n, n) dynamics ``x_{t+1} = A x + B u``.
        B: (T, n, m) or (n, m).
        Q: (T, n, n) or (n, n) state weights; R: (T, m, m) or (m, m) control weights;
            S: (T, m, n) or (m, n) cross weights (None: zero).
        Q_final: (n, n) terminal weight.
        horizon: T, required when every matrix is time-invariant.

    Raises:
        ValueError: on inconsistent shapes, or when the problem is not convex (the control
            Hessian is not positive definite at some step).
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    lengths = {np.asarray(M).shape[0] for M in (A, B, Q, R) if np.ndim(M) == 3}
    if S is not None and np.ndim(S) == 3:
        lengths.add(np.shape(S)[0])
    if horizon is not None:
        lengths.add(int(horizon))
    if len(lengths) != 1:
        raise ValueError(f"cannot tell the horizon: time-varying lengths/horizon {lengths}")
    T = lengths.pop()
    n, m = B.shape[-2:]
    fx = np.ascontiguousarray(np.broadcast_to(A, (T, n, n)))
    fu = np.ascontiguousarray(np.broadcast_to(B, (T, n, m)))
    bp = riccati_backward(fx, fu, Q, S, R, None, None, Q_final)
    if not bp.ok:
        raise ValueError(f"LQR backward pass failed at step {bp.step}: {bp.status.value}")
    return LQRSolution(bp.K, bp.Vxx)


def infinite_horizon_lqr(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, S: np.ndarray | None = None
) -> LQRSolution:
    """Stationary discrete LQR from the discrete algebraic Riccati equation.

    Args:
        A: (n, n), B: (n, m), Q: (n, n), R: (m, m), S: (m, n) cross weight (None: zero).

    Returns:
        ``LQRSolution`` with K (m, n) such that ``u = K x`` and P (n, n).

    Raises:
        ValueError: when the DARE has no stabilising solution (e.g. (A, B) not stabilisable).
    """
    A, B, Q, R = (np.asarray(M, dtype=np.float64) for M in (A, B, Q, R))
    S_t = None if S is None else np.asarray(S, dtype=np.float64).T
    try:
        P = scipy.linalg.solve_discrete_are(A, B, Q, R, s=S_t)
    except (np.linalg.LinAlgError, ValueError) as err:
        raise ValueError(f"no stabilising DARE solution: {err}") from err
    cross = B.T @ P @ A + (0.0 if S is None else np.asarray(S, dtype=np.float64))
    K = -np.linalg.solve(R + B.T @ P @ B, cross)
    return LQRSolution(K, P)
