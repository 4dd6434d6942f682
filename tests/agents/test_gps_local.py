"""GPS local machinery: dynamics fitting, KL divergences, the KL-constrained C-step."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.agents.gps.cost import QuadraticCost
from robot_rl.agents.gps.cstep import CStepStatus, c_step, kl_constrained_lqr
from robot_rl.agents.gps.dynamics import DynamicsPrior, fit_dynamics
from robot_rl.agents.gps.linear_gaussian import (
    LinearGaussianController,
    LinearGaussianDynamics,
    forward,
    kl_divergence,
)

N_STATE, N_ACT, HORIZON = 4, 2, 15


def _linear_system(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = np.eye(N_STATE) + 0.1 * rng.standard_normal((N_STATE, N_STATE))
    B = 0.3 * rng.standard_normal((N_STATE, N_ACT))
    c = 0.05 * rng.standard_normal(N_STATE)
    return A, B, c


def _rollouts(
    A: np.ndarray,
    B: np.ndarray,
    c: np.ndarray,
    samples: int,
    rng: np.random.Generator,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((samples, HORIZON + 1, N_STATE))
    U = rng.standard_normal((samples, HORIZON, N_ACT))
    X[:, 0] = 0.5 * rng.standard_normal((samples, N_STATE))
    for t in range(HORIZON):
        X[:, t + 1] = (
            X[:, t] @ A.T + U[:, t] @ B.T + c + noise * rng.standard_normal((samples, N_STATE))
        )
    return X, U


def _lq_problem(rng: np.random.Generator) -> tuple[LinearGaussianDynamics, QuadraticCost]:
    A, B, c = _linear_system(rng)
    T, n, m = HORIZON, N_STATE, N_ACT
    dynamics = LinearGaussianDynamics(
        A=np.tile(A, (T, 1, 1)),
        B=np.tile(B, (T, 1, 1)),
        c=np.tile(c, (T, 1)),
        covariance=np.tile(1e-4 * np.eye(n), (T, 1, 1)),
        x0_mean=rng.standard_normal(n),
        x0_covariance=1e-3 * np.eye(n),
    )
    goal = rng.standard_normal(n)
    Q, R = np.diag(rng.uniform(0.5, 2.0, n)), 0.1 * np.eye(m)
    C = np.zeros((T, n + m, n + m))
    C[:, :n, :n], C[:, n:, n:] = Q, R
    cvec = np.zeros((T, n + m))
    cvec[:, :n] = -Q @ goal
    cost = QuadraticCost(C, cvec, np.zeros(T), 10 * Q, -10 * Q @ goal, 0.0)
    return dynamics, cost


def _lqr_by_augmented_state(
    dynamics: LinearGaussianDynamics, cost: QuadraticCost
) -> tuple[np.ndarray, np.ndarray]:
    """Textbook Riccati recursion on the state [x, 1] (which absorbs the offsets)."""
    T, n, m = dynamics.horizon, dynamics.state_size, dynamics.action_size
    Vxx = np.zeros((n + 1, n + 1))
    Vxx[:n, :n] = cost.C_final
    Vxx[:n, n] = Vxx[n, :n] = cost.c_final
    K, k = np.empty((T, m, n)), np.empty((T, m))
    for t in reversed(range(T)):
        Aa = np.eye(n + 1)
        Aa[:n, :n], Aa[:n, n] = dynamics.A[t], dynamics.c[t]
        Ba = np.vstack([dynamics.B[t], np.zeros((1, m))])
        Qa = np.zeros((n + 1, n + 1))
        Qa[:n, :n] = cost.C[t, :n, :n]
        Qa[:n, n] = Qa[n, :n] = cost.c[t, :n]
        R = cost.C[t, n:, n:]
        gain = -np.linalg.solve(R + Ba.T @ Vxx @ Ba, Ba.T @ Vxx @ Aa)
        K[t], k[t] = gain[:, :n], gain[:, n]
        Vxx = Qa + Aa.T @ Vxx @ (Aa + Ba @ gain)
        Vxx = 0.5 * (Vxx + Vxx.T)
    return K, k


def test_dynamics_fit_recovers_a_linear_system_from_many_samples() -> None:
    rng = np.random.default_rng(0)
    A, B, c = _linear_system(rng)
    X, U = _rollouts(A, B, c, samples=60, rng=rng, noise=1e-3)
    fit, report = fit_dynamics(X, U, prior=None, prior_strength=0.0)
    np.testing.assert_allclose(fit.A, np.broadcast_to(A, fit.A.shape), atol=2e-3)
    np.testing.assert_allclose(fit.B, np.broadcast_to(B, fit.B.shape), atol=2e-3)
    np.testing.assert_allclose(fit.c, np.broadcast_to(c, fit.c.shape), atol=2e-3)
    assert report.residual < 3e-3


def test_mixture_prior_lets_few_samples_fit_the_system() -> None:
    """Four samples per step cannot determine 6 regressors; the prior over every step can."""
    rng = np.random.default_rng(1)
    A, B, c = _linear_system(rng)
    X, U = _rollouts(A, B, c, samples=4, rng=rng, noise=1e-3)
    no_prior, _ = fit_dynamics(X, U, prior=None, prior_strength=0.0)
    prior = DynamicsPrior(20, max_components=1, points_per_component=20, rng=rng)
    prior.update(X, U)
    fit, _ = fit_dynamics(X, U, prior=prior, prior_strength=10.0)
    err = np.abs(fit.A - A).max()
    assert err < 0.02
    assert np.abs(no_prior.A - A).max() > 5 * err
    np.testing.assert_allclose(fit.B, np.broadcast_to(B, fit.B.shape), atol=0.02)


def test_fit_rejects_non_finite_samples() -> None:
    X = np.zeros((3, HORIZON + 1, N_STATE))
    U = np.zeros((3, HORIZON, N_ACT))
    X[1, 4, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_dynamics(X, U, prior=None, prior_strength=0.0)


def test_kl_divergence_is_zero_for_equal_controllers_and_matches_monte_carlo() -> None:
    rng = np.random.default_rng(2)
    dynamics, _ = _lq_problem(rng)
    T, n, m = HORIZON, N_STATE, N_ACT
    old = LinearGaussianController(
        0.2 * rng.standard_normal((T, m, n)),
        rng.standard_normal((T, m)),
        np.tile(0.5 * np.eye(m), (T, 1, 1)),
    )
    new = LinearGaussianController(
        old.K + 0.1 * rng.standard_normal(old.K.shape),
        old.k + 0.2,
        np.tile(np.diag([0.3, 0.8]), (T, 1, 1)),
    )
    traj = forward(dynamics, new)
    np.testing.assert_allclose(kl_divergence(old, old, forward(dynamics, old)), 0.0, atol=1e-12)
    # Monte Carlo estimate of E_x[KL] at one step.
    t = 5
    xs = rng.multivariate_normal(traj.mean[t, :n], traj.covariance[t, :n, :n], size=20000)
    P = np.linalg.inv(old.covariance[t])
    d = xs @ (new.K[t] - old.K[t]).T + new.k[t] - old.k[t]
    mc = 0.5 * (
        np.trace(P @ new.covariance[t])
        + np.einsum("bi,ij,bj->b", d, P, d).mean()
        - m
        + np.log(np.linalg.det(old.covariance[t]) / np.linalg.det(new.covariance[t]))
    )
    assert kl_divergence(new, old, traj)[t] == pytest.approx(mc, rel=2e-2)


def _reference(rng: np.random.Generator) -> LinearGaussianController:
    T, n, m = HORIZON, N_STATE, N_ACT
    return LinearGaussianController(
        0.1 * rng.standard_normal((T, m, n)), np.zeros((T, m)), np.tile(0.2 * np.eye(m), (T, 1, 1))
    )


def test_c_step_equals_lqr_on_a_linear_quadratic_problem() -> None:
    rng = np.random.default_rng(3)
    dynamics, cost = _lq_problem(rng)
    result = c_step(dynamics, cost, _reference(rng), kl_bound=1e9)
    assert result.status is CStepStatus.CONVERGED
    K, k = _lqr_by_augmented_state(dynamics, cost)
    np.testing.assert_allclose(result.controller.K, K, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.controller.k, k, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bound", [0.5, 5.0, 50.0])
def test_c_step_respects_its_kl_bound(bound: float) -> None:
    rng = np.random.default_rng(4)
    dynamics, cost = _lq_problem(rng)
    reference = _reference(rng)
    result = c_step(dynamics, cost, reference, kl_bound=bound)
    assert result.status is CStepStatus.CONVERGED
    kl = kl_divergence(result.controller, reference, forward(dynamics, result.controller)).sum()
    assert kl == pytest.approx(result.kl)
    assert abs(kl - bound) <= 0.1 * bound
    # A larger step buys a lower expected cost.
    ref_cost = cost.expected(forward(dynamics, reference)).sum()
    assert result.predicted_cost < ref_cost


def test_c_step_never_returns_a_nan_controller_on_indefinite_costs() -> None:
    rng = np.random.default_rng(5)
    dynamics, cost = _lq_problem(rng)
    bad = QuadraticCost(-cost.C, cost.c, cost.e, -cost.C_final, cost.c_final, 0.0)
    with pytest.raises(ArithmeticError):
        kl_constrained_lqr(dynamics, bad, _reference(rng), eta=1e-3)
    result = c_step(dynamics, bad, _reference(rng), kl_bound=1.0)
    assert np.isfinite(result.controller.K).all()
    assert np.isfinite(result.controller.covariance).all()
    assert result.eta_increases > 0


def test_c_step_reports_an_unmet_kl_bound_and_returns_a_safe_controller() -> None:
    """Two backward passes cannot bracket a tiny bound from a far warm start: the result says
    so and falls back to a controller within the bound (here the reference itself)."""
    rng = np.random.default_rng(6)
    dynamics, cost = _lq_problem(rng)
    reference = _reference(rng)
    result = c_step(dynamics, cost, reference, kl_bound=1e-3, eta=1e-6, max_iterations=2)
    assert result.status is CStepStatus.KL_NOT_MET
    assert result.kl <= 1.1e-3
    assert np.isfinite(result.controller.K).all()
