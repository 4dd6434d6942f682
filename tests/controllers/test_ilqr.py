"""iLQR / box-DDP: LQ exactness, the reference swing-up optimum, bounds, bad input."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from robot_rl.controllers.costs import Cost, quadratic
from robot_rl.controllers.derivatives import CasadiDynamics
from robot_rl.controllers.ilqr import ILQR, ILQRSettings, LineSearch, SolverStatus
from robot_rl.controllers.lqr import finite_horizon_lqr
from robot_rl.controllers.problems import REFERENCE_OPTIMUM, cartpole_reference


def linear_problem(T: int = 30):
    rng = np.random.default_rng(0)
    A = np.eye(3) + 0.1 * rng.normal(size=(3, 3))
    B = rng.normal(size=(3, 2))
    x, u = ca.SX.sym("x", 3), ca.SX.sym("u", 2)
    dynamics = CasadiDynamics(ca.Function("lin", [x, u], [ca.DM(A) @ x + ca.DM(B) @ u]))
    Q, R, Qf = np.array([1.0, 2.0, 0.5]), np.array([0.3, 0.1]), np.array([10.0, 10.0, 10.0])
    cost = Cost(
        3,
        2,
        running={
            "state": lambda x, u, p: quadratic(Q)(x),
            "effort": lambda x, u, p: quadratic(R)(u),
        },
        terminal={"final": lambda x, p: quadratic(Qf)(x)},
    )
    return A, B, np.diag(Q), np.diag(R), np.diag(Qf), dynamics, cost


def test_ilqr_on_lq_problem_equals_lqr_after_one_iteration() -> None:
    A, B, Q, R, Qf, dynamics, cost = linear_problem()
    x0 = np.array([1.0, -2.0, 0.5])
    solver = ILQR(dynamics, cost, 30, settings=ILQRSettings(max_iterations=1, reg_init=0.0))
    result = solver.solve(x0)
    lqr = finite_horizon_lqr(A, B, Q, R, Qf, horizon=30)
    x, us = x0, []
    for t in range(30):
        us.append(lqr.K[t] @ x)
        x = A @ x + B @ us[-1]
    np.testing.assert_allclose(result.controls, np.array(us), atol=1e-9)
    assert result.log[0].alpha == 1.0
    assert result.log[0].actual_reduction == pytest.approx(result.log[0].predicted_reduction)
    # A second iteration finds nothing left to improve.
    assert ILQR(dynamics, cost, 30).solve(x0).status is SolverStatus.CONVERGED


def test_reference_swingup_reaches_the_optimum_within_bounds() -> None:
    problem = cartpole_reference()
    solver = ILQR(
        problem.dynamics,
        problem.cost,
        problem.horizon,
        problem.control_low,
        problem.control_high,
        ILQRSettings(max_iterations=500),
    )
    result = solver.solve(problem.x0)
    assert result.status is SolverStatus.CONVERGED
    assert result.cost == pytest.approx(REFERENCE_OPTIMUM, rel=5e-3)
    assert abs(result.states[-1, 1] - np.pi) < 0.01
    assert np.all(np.abs(result.controls) <= 5.0)  # exactly
    assert np.sum(np.abs(result.controls) == 5.0) > 5  # the bound is active
    np.testing.assert_allclose(
        problem.dynamics.rollout(problem.x0, result.controls), result.states, atol=1e-12
    )


def test_ddp_converges_to_the_same_optimum_near_it() -> None:
    # Full DDP is less robust than iLQR far from the optimum (indefinite dynamics curvature),
    # so it refines an iLQR iterate here.
    problem = cartpole_reference()
    args = (problem.dynamics, problem.cost, 100, problem.control_low, problem.control_high)
    start = ILQR(*args, ILQRSettings(max_iterations=180)).solve(problem.x0)
    assert start.cost > REFERENCE_OPTIMUM + 1.0
    ddp = ILQR(*args, ILQRSettings(max_iterations=300, second_order=True))
    result = ddp.solve(problem.x0, start.controls)
    assert result.status is SolverStatus.CONVERGED
    assert result.cost == pytest.approx(REFERENCE_OPTIMUM, rel=5e-3)


def test_backtracking_and_parallel_line_search_agree() -> None:
    problem = cartpole_reference(horizon=40)
    results = [
        ILQR(
            problem.dynamics, problem.cost, 40, problem.control_low, problem.control_high,
            ILQRSettings(line_search=mode, max_iterations=300),
        ).solve(problem.x0)
        for mode in LineSearch
    ]  # fmt: skip
    np.testing.assert_allclose(results[0].controls, results[1].controls, atol=1e-10)


def test_same_problem_same_result() -> None:
    problem = cartpole_reference(horizon=40)
    solve = lambda: ILQR(  # noqa: E731
        problem.dynamics, problem.cost, 40, problem.control_low, problem.control_high
    ).solve(problem.x0)
    np.testing.assert_array_equal(solve().controls, solve().controls)


def test_warm_start_from_the_solution_converges_at_once() -> None:
    problem = cartpole_reference()
    solver = ILQR(
        problem.dynamics,
        problem.cost,
        100,
        problem.control_low,
        problem.control_high,
        ILQRSettings(max_iterations=500),
    )
    first = solver.solve(problem.x0)
    again = solver.solve(problem.x0, first.controls)
    assert again.iterations <= 2
    assert again.cost <= first.cost + 1e-9


def test_bad_input_gives_a_status_and_no_nan_plan() -> None:
    problem = cartpole_reference(horizon=20)
    solver = ILQR(problem.dynamics, problem.cost, 20, problem.control_low, problem.control_high)
    nan_start = solver.solve(np.array([0.0, np.nan, 0.0, 0.0]))
    assert nan_start.status is SolverStatus.NON_FINITE
    assert np.isfinite(nan_start.controls).all()
    empty = solver.solve(problem.x0, control_low=1.0, control_high=-1.0)
    assert empty.status is SolverStatus.INFEASIBLE
    assert not empty.status.usable
    short = solver.solve(problem.x0, max_iterations=2)
    assert short.status is SolverStatus.MAX_ITERATIONS
    assert short.status.usable
    assert np.isfinite(short.controls).all()
    nan_guess = solver.solve(problem.x0, np.full((20, 1), np.nan))
    assert nan_guess.status.usable
    assert np.isfinite(nan_guess.controls).all()
    with pytest.raises(ValueError, match="x0"):
        solver.solve(np.zeros(3))
    with pytest.raises(ValueError, match="control_low"):
        ILQR(problem.dynamics, problem.cost, 20, 1.0, -1.0)


def test_dynamics_that_blow_up_are_reported_not_propagated() -> None:
    # ẋ = x² blows up in finite time from x0 = 1: the rollout overflows to inf.
    x, u = ca.SX.sym("x", 1), ca.SX.sym("u", 1)
    dynamics = CasadiDynamics(ca.Function("blow", [x, u], [x + x**2 + u]))
    cost = Cost(1, 1, running={"x": lambda x, u, p: x**2 + u**2})
    result = ILQR(dynamics, cost, 50).solve(np.array([1.0]))
    assert result.status is SolverStatus.NON_FINITE
    assert np.isfinite(result.controls).all()


def test_callback_sees_every_iteration_and_can_stop() -> None:
    problem = cartpole_reference(horizon=40)
    seen = []
    result = ILQR(
        problem.dynamics, problem.cost, 40, problem.control_low, problem.control_high
    ).solve(problem.x0, callback=lambda log: seen.append(log.iteration) or len(seen) == 3)
    assert seen == [1, 2, 3]
    assert result.iterations == 3


def test_warm_started_solve_equals_a_solve_from_the_same_guess() -> None:
    problem = cartpole_reference(horizon=40)
    args = (problem.dynamics, problem.cost, 40, problem.control_low, problem.control_high)
    solver = ILQR(*args)
    plan = solver.solve(problem.x0)
    x1 = problem.dynamics.step(problem.x0[None], plan.controls[:1])[0] + 0.01
    guess = solver.warm_start(plan, x1, 1)
    warm = solver.solve(x1, guess, max_iterations=3)
    twin = ILQR(*args)  # same history, but given a copy: it rolls the guess out itself
    twin.solve(problem.x0)
    plain = twin.solve(x1, guess.copy(), max_iterations=3)
    np.testing.assert_allclose(warm.controls, plain.controls, atol=1e-12)
    np.testing.assert_allclose(warm.states, plain.states, atol=1e-12)
