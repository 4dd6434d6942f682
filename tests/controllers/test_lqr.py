"""The shared Riccati backward pass, the box QP and LQR against closed forms and dense solves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from robot_rl.controllers.boxqp import BOX_QP_NOT_POSITIVE_DEFINITE, BOX_QP_WORK_ROWS, box_qp
from robot_rl.controllers.lqr import (
    BackwardStatus,
    Regularization,
    finite_horizon_lqr,
    infinite_horizon_lqr,
    riccati_backward,
)


def random_lq_problem(rng: np.random.Generator, T: int, n: int, m: int) -> dict[str, np.ndarray]:
    """A random convex time-varying LQ problem with cross terms, gradients and affine terms."""

    def spd(k: int, scale: float) -> np.ndarray:
        M = rng.normal(size=(T, k, k))
        return scale * (M @ M.transpose(0, 2, 1)) / k + 0.1 * np.eye(k)

    lxx, luu = spd(n, 1.0), spd(m, 0.5)
    # Keep the joint Hessian [[lxx, luxᵀ], [lux, luu]] positive definite.
    lux = 0.1 * rng.normal(size=(T, m, n))
    return {
        "fx": np.eye(n) + 0.1 * rng.normal(size=(T, n, n)),
        "fu": rng.normal(size=(T, n, m)),
        "fc": 0.1 * rng.normal(size=(T, n)),
        "lxx": lxx + 2.0 * np.eye(n),
        "lux": lux,
        "luu": luu + 1.0 * np.eye(m),
        "lx": rng.normal(size=(T, n)),
        "lu": rng.normal(size=(T, m)),
        "vxx_final": 3.0 * np.eye(n),
        "vx_final": rng.normal(size=n),
    }


def dense_lq_solution(p: dict[str, np.ndarray], x0: np.ndarray) -> np.ndarray:
    """Optimal controls (T, m) of the LQ problem, by solving its KKT system in one go."""
    T, n, m = p["fu"].shape
    # Decision vector z = (u_0..u_{T-1}); states are affine in z: x = Sx x0 + Su z + s.
    Sx = np.zeros((T + 1, n, n))
    Su = np.zeros((T + 1, n, T * m))
    s = np.zeros((T + 1, n))
    Sx[0] = np.eye(n)
    for t in range(T):
        Sx[t + 1] = p["fx"][t] @ Sx[t]
        Su[t + 1] = p["fx"][t] @ Su[t]
        Su[t + 1][:, t * m : (t + 1) * m] += p["fu"][t]
        s[t + 1] = p["fx"][t] @ s[t] + p["fc"][t]
    H = np.zeros((T * m, T * m))
    g = np.zeros(T * m)
    for t in range(T + 1):
        xa = Sx[t] @ x0 + s[t]  # state at z = 0
        Xt = Su[t]
        if t == T:
            H += Xt.T @ p["vxx_final"] @ Xt
            g += Xt.T @ (p["vxx_final"] @ xa + p["vx_final"])
            break
        E = np.zeros((m, T * m))
        E[:, t * m : (t + 1) * m] = np.eye(m)
        H += Xt.T @ p["lxx"][t] @ Xt + E.T @ p["luu"][t] @ E
        H += E.T @ p["lux"][t] @ Xt + Xt.T @ p["lux"][t].T @ E
        g += Xt.T @ (p["lxx"][t] @ xa + p["lx"][t]) + E.T @ (p["lux"][t] @ xa + p["lu"][t])
    return np.linalg.solve(H, -g).reshape(T, m)


def rollout_policy(p: dict[str, np.ndarray], K: np.ndarray, k: np.ndarray, x0: np.ndarray):
    T, _n, _m = p["fu"].shape
    x, us = x0.copy(), []
    for t in range(T):
        u = K[t] @ x + k[t]
        us.append(u)
        x = p["fx"][t] @ x + p["fu"][t] @ u + p["fc"][t]
    return np.array(us)


def test_backward_pass_solves_lq_problem_exactly() -> None:
    rng = np.random.default_rng(0)
    p = random_lq_problem(rng, T=12, n=4, m=2)
    x0 = rng.normal(size=4)
    bp = riccati_backward(**p)
    assert bp.ok
    np.testing.assert_allclose(
        rollout_policy(p, bp.K, bp.k, x0), dense_lq_solution(p, x0), atol=1e-9
    )


def test_value_function_predicts_optimal_cost() -> None:
    rng = np.random.default_rng(1)
    p = random_lq_problem(rng, T=8, n=3, m=2)
    bp = riccati_backward(**p)
    x0 = rng.normal(size=3)
    us = rollout_policy(p, bp.K, bp.k, x0)
    x, cost = x0, 0.0
    for t in range(8):
        u = us[t]
        cost += 0.5 * x @ p["lxx"][t] @ x + u @ p["lux"][t] @ x + 0.5 * u @ p["luu"][t] @ u
        cost += p["lx"][t] @ x + p["lu"][t] @ u
        x = p["fx"][t] @ x + p["fu"][t] @ u + p["fc"][t]
    cost += 0.5 * x @ p["vxx_final"] @ x + p["vx_final"] @ x
    # V_0 is quadratic up to a constant; compare its variation between two start states.
    x1 = x0 + rng.normal(size=3)
    us1 = rollout_policy(p, bp.K, bp.k, x1)
    y, cost1 = x1, 0.0
    for t in range(8):
        u = us1[t]
        cost1 += 0.5 * y @ p["lxx"][t] @ y + u @ p["lux"][t] @ y + 0.5 * u @ p["luu"][t] @ u
        cost1 += p["lx"][t] @ y + p["lu"][t] @ u
        y = p["fx"][t] @ y + p["fu"][t] @ u + p["fc"][t]
    cost1 += 0.5 * y @ p["vxx_final"] @ y + p["vx_final"] @ y

    def V(z: np.ndarray) -> float:
        return 0.5 * z @ bp.Vxx[0] @ z + bp.Vx[0] @ z

    assert cost1 - cost == pytest.approx(V(x1) - V(x0), rel=1e-9)


def test_expected_reduction_is_exact_for_lq_problem() -> None:
    rng = np.random.default_rng(2)
    p = random_lq_problem(rng, T=6, n=3, m=1)
    p["fc"][:] = 0.0  # deviations around a consistent (zero) trajectory
    bp = riccati_backward(**p)

    def cost(us: np.ndarray) -> float:
        x, total = np.zeros(3), 0.0
        for t in range(6):
            u = us[t]
            total += 0.5 * x @ p["lxx"][t] @ x + u @ p["lux"][t] @ x + 0.5 * u @ p["luu"][t] @ u
            total += p["lx"][t] @ x + p["lu"][t] @ u
            x = p["fx"][t] @ x + p["fu"][t] @ u
        return total + 0.5 * x @ p["vxx_final"] @ x + p["vx_final"] @ x

    for alpha in (1.0, 0.5, 0.1):
        us = rollout_policy(p, bp.K, alpha * bp.k, np.zeros(3))
        predicted = alpha * bp.expected[0] + alpha**2 * bp.expected[1]
        assert cost(us) - cost(np.zeros((6, 1))) == pytest.approx(predicted, rel=1e-9)


def test_finite_horizon_lqr_matches_textbook_recursion() -> None:
    rng = np.random.default_rng(3)
    A, B = np.eye(3) + 0.1 * rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    Q, R, Qf = np.diag([1.0, 2.0, 3.0]), np.diag([0.5, 0.7]), 5.0 * np.eye(3)
    sol = finite_horizon_lqr(A, B, Q, R, Qf, horizon=20)
    P = Qf
    for t in range(19, -1, -1):
        K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ A + A.T @ P @ B @ K
        np.testing.assert_allclose(sol.K[t], K, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sol.P[t], P, rtol=1e-10, atol=1e-12)


def test_long_horizon_lqr_converges_to_dare_solution() -> None:
    rng = np.random.default_rng(4)
    A = np.array([[1.0, 0.05], [0.5, 1.0]]) + 0.01 * rng.normal(size=(2, 2))  # unstable
    B = np.array([[0.0], [0.05]])
    Q, R = np.eye(2), np.array([[0.1]])
    stationary = infinite_horizon_lqr(A, B, Q, R)
    P_scipy = scipy.linalg.solve_discrete_are(A, B, Q, R)
    np.testing.assert_allclose(stationary.P, P_scipy, rtol=1e-10)
    assert np.abs(np.linalg.eigvals(A + B @ stationary.K)).max() < 1.0
    finite = finite_horizon_lqr(A, B, Q, R, np.zeros((2, 2)), horizon=2000)
    np.testing.assert_allclose(finite.K[0], stationary.K, rtol=1e-8)
    np.testing.assert_allclose(finite.P[0], stationary.P, rtol=1e-8)


def test_scalar_dare_closed_form() -> None:
    a, b, q, r = 1.2, 0.5, 2.0, 0.3
    # p = q + a²p - a²b²p²/(r + b²p)  <=>  b²p² + (r - a²r - q b²)p - q r = 0
    c2, c1, c0 = b**2, r - a**2 * r - q * b**2, -q * r
    p = (-c1 + np.sqrt(c1**2 - 4 * c2 * c0)) / (2 * c2)
    sol = infinite_horizon_lqr(np.array([[a]]), np.array([[b]]), np.array([[q]]), np.array([[r]]))
    assert sol.P[0, 0] == pytest.approx(p, rel=1e-12)
    assert sol.K[0, 0] == pytest.approx(-a * b * p / (r + b**2 * p), rel=1e-12)


def test_unstabilisable_system_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="DARE"):
        infinite_horizon_lqr(np.diag([2.0, 0.5]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1))


def solve_box_qp(h, g, low, high, x0=None):
    m = g.shape[0]
    x, free = np.empty(m), np.empty(m, dtype=bool)
    chol, idx, work = np.empty((m, m)), np.empty(m, dtype=np.int64), np.empty((BOX_QP_WORK_ROWS, m))
    x0 = np.zeros(m) if x0 is None else x0
    n_free = box_qp(h, g, low, high, x0, x, free, chol, idx, work)
    return n_free, x, free, chol[:n_free, :n_free]


@pytest.mark.parametrize("seed", range(20))
def test_box_qp_satisfies_kkt_and_bounds_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 8))
    M = rng.normal(size=(m, m))
    h = M @ M.T + 0.1 * np.eye(m)
    g = 3.0 * rng.normal(size=m)
    low, high = -rng.uniform(0.0, 1.0, m), rng.uniform(0.0, 1.0, m)
    low[rng.random(m) < 0.2] = -np.inf
    n_free, x, free, chol = solve_box_qp(h, g, low, high, rng.normal(size=m))
    assert n_free == free.sum()
    assert np.all(x >= low)
    assert np.all(x <= high)
    grad = h @ x + g
    scale = 1.0 + np.abs(g).max()
    np.testing.assert_allclose(grad[free], 0.0, atol=1e-8 * scale)
    assert np.all(grad[(x == low) & ~free] >= 0.0)
    assert np.all(grad[(x == high) & ~free] <= 0.0)
    assert np.all((x[~free] == low[~free]) | (x[~free] == high[~free]))
    np.testing.assert_allclose(chol @ chol.T, h[np.ix_(free, free)], atol=1e-12)


def test_box_qp_reports_indefinite_hessian() -> None:
    h = np.array([[1.0, 0.0], [0.0, -1.0]])
    n_free, *_ = solve_box_qp(h, np.array([0.1, 0.1]), -np.ones(2), np.ones(2))
    assert n_free == BOX_QP_NOT_POSITIVE_DEFINITE


def test_bounded_backward_pass_keeps_controls_in_box_and_zeroes_clamped_gains() -> None:
    rng = np.random.default_rng(5)
    p = random_lq_problem(rng, T=30, n=4, m=2)
    p["lu"] *= 20.0  # push the unconstrained solution far outside the box
    bp = riccati_backward(**p, du_low=-0.3, du_high=0.5)
    assert bp.ok
    assert np.all(bp.k >= -0.3)
    assert np.all(bp.k <= 0.5)
    assert (~bp.free).any()
    assert bp.free.any()
    np.testing.assert_array_equal(bp.K[~bp.free], 0.0)


def test_control_regularisation_matches_damped_problem_at_the_last_step() -> None:
    rng = np.random.default_rng(6)
    p = random_lq_problem(rng, T=5, n=3, m=2)
    mu = 0.7
    reg = riccati_backward(**p, reg=mu, regularization=Regularization.CONTROL)
    damped = riccati_backward(**{**p, "luu": p["luu"] + mu * np.eye(2)})
    np.testing.assert_allclose(reg.K[-1], damped.K[-1], rtol=1e-12)
    np.testing.assert_allclose(reg.k[-1], damped.k[-1], rtol=1e-12)


def test_state_regularisation_shrinks_the_step() -> None:
    rng = np.random.default_rng(7)
    p = random_lq_problem(rng, T=10, n=3, m=2)
    plain = riccati_backward(**p)
    strong = riccati_backward(**p, reg=1e3, regularization=Regularization.STATE)
    assert np.abs(strong.k).max() < 0.1 * np.abs(plain.k).max()


def test_bad_inputs_give_a_status_not_an_exception() -> None:
    rng = np.random.default_rng(8)
    p = random_lq_problem(rng, T=10, n=3, m=1)
    bad = {**p, "fx": p["fx"].copy()}
    bad["fx"][4, 0, 0] = np.nan
    bp = riccati_backward(**bad)
    assert bp.status is BackwardStatus.NON_FINITE
    assert bp.step == 4
    assert (
        riccati_backward(**p, du_low=1.0, du_high=-1.0).status is BackwardStatus.INFEASIBLE_BOUNDS
    )
    concave = {**p, "luu": -10.0 * np.ones((10, 1, 1)), "fu": 0.01 * p["fu"]}
    bp = riccati_backward(**concave)
    assert bp.status is BackwardStatus.NOT_POSITIVE_DEFINITE
    assert bp.step == 9
    assert np.isfinite(bp.K).all()
    assert np.isfinite(bp.k).all()


def test_shape_errors_name_the_argument() -> None:
    rng = np.random.default_rng(9)
    p = random_lq_problem(rng, T=4, n=3, m=1)
    with pytest.raises(ValueError, match="lux"):
        riccati_backward(**{**p, "lux": np.zeros((4, 3, 1))})
    with pytest.raises(ValueError, match="reg"):
        riccati_backward(**p, reg=-1.0)


def test_second_order_terms_enter_the_q_function_as_in_ddp() -> None:
    rng = np.random.default_rng(10)
    p = random_lq_problem(rng, T=1, n=3, m=2)
    fxx = rng.normal(size=(1, 3, 3, 3))
    fxx = fxx + fxx.transpose(0, 1, 3, 2)
    fux = rng.normal(size=(1, 3, 2, 3))
    fuu = 0.1 * np.eye(2) * np.ones((1, 3, 2, 2))
    ddp = riccati_backward(**p, fxx=fxx, fux=fux, fuu=fuu)
    vx = p["vx_final"] + p["vxx_final"] @ p["fc"][0]
    A, B = p["fx"][0], p["fu"][0]
    Quu = p["luu"][0] + B.T @ p["vxx_final"] @ B + np.einsum("p,pij->ij", vx, fuu[0])
    Qux = p["lux"][0] + B.T @ p["vxx_final"] @ A + np.einsum("p,pij->ij", vx, fux[0])
    np.testing.assert_allclose(ddp.Quu[0], Quu, rtol=1e-12)
    np.testing.assert_allclose(ddp.K[0], -np.linalg.solve(Quu, Qux), rtol=1e-10)
    with pytest.raises(ValueError, match="fxx"):
        riccati_backward(**p, fxx=fxx)
