"""CasADi NMPC: the reference optimum with both solvers, path constraints, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.controllers.ilqr import SolverStatus
from robot_rl.controllers.models import REFERENCE_CARTPOLE, Cartpole, rk4
from robot_rl.controllers.nmpc import NMPC, NLPSolver, PathConstraint
from robot_rl.controllers.problems import REFERENCE_OPTIMUM, cartpole_reference


def reference_nmpc(solver: NLPSolver, horizon: int = 100, **kwargs) -> NMPC:
    problem = cartpole_reference(horizon=horizon)
    step = rk4(Cartpole(REFERENCE_CARTPOLE), 0.05)
    return NMPC(
        step,
        problem.cost,
        horizon,
        problem.control_low,
        problem.control_high,
        solver=solver,
        **kwargs,
    )


@pytest.mark.parametrize("solver", list(NLPSolver))
def test_reference_optimum_with_both_solvers(solver: NLPSolver) -> None:
    nmpc = reference_nmpc(solver)
    result = nmpc.solve(np.zeros(4))
    assert result.status is SolverStatus.CONVERGED
    assert result.cost == pytest.approx(REFERENCE_OPTIMUM, rel=5e-3)
    assert np.all(np.abs(result.controls) <= 5.0)
    # Warm-started from its own solution it converges in a few iterations.
    again = nmpc.solve(np.zeros(4), nmpc.warm_start(result, np.zeros(4), 0))
    assert again.status is SolverStatus.CONVERGED
    assert again.iterations < 30


@pytest.mark.parametrize("solver", list(NLPSolver))
def test_path_and_state_constraints_hold(solver: NLPSolver) -> None:
    track = PathConstraint("track", lambda x, u, p: x[0], np.array([-0.3]), np.array([0.3]))
    nmpc = reference_nmpc(
        solver,
        horizon=60,
        state_low=np.array([-np.inf, -np.inf, -1.5, -np.inf]),
        state_high=np.array([np.inf, np.inf, 1.5, np.inf]),
        path_constraints=[track],
    )
    result = nmpc.solve(np.zeros(4))
    assert result.status is SolverStatus.CONVERGED
    assert np.all(np.abs(result.states[:-1, 0]) <= 0.3 + 1e-6)
    assert np.all(np.abs(result.states[1:, 2]) <= 1.5 + 1e-6)
    assert np.max(np.abs(result.states[:, 0])) > 0.29  # the constraint is active
    free = reference_nmpc(solver, horizon=60).solve(np.zeros(4))
    assert free.cost < result.cost
    np.testing.assert_allclose(  # the plan is dynamically consistent
        result.states[1:],
        np.stack(
            [
                np.asarray(nmpc.step_function(x, u)).ravel()
                for x, u in zip(result.states[:-1], result.controls, strict=True)
            ]
        ),
        atol=1e-6,
    )


def test_bad_input_gives_a_status() -> None:
    track = PathConstraint("track", lambda x, u, p: x[0], np.array([-0.3]), np.array([0.3]))
    nmpc = reference_nmpc(NLPSolver.IPOPT, horizon=20, path_constraints=[track], max_iterations=100)
    infeasible = nmpc.solve(np.array([1.0, 0.0, 0.0, 0.0]))  # starts outside the track
    assert infeasible.status is SolverStatus.INFEASIBLE  # IPOPT detects it
    assert nmpc.solve(np.array([np.nan, 0, 0, 0])).status is SolverStatus.NON_FINITE
    bad = reference_nmpc(NLPSolver.IPOPT, horizon=20)
    bad.control_low = np.array([1.0])
    bad.control_high = np.array([-1.0])
    assert bad.solve(np.zeros(4)).status is SolverStatus.INFEASIBLE
    with pytest.raises(ValueError, match="lower > upper"):
        reference_nmpc(
            NLPSolver.IPOPT,
            horizon=5,
            path_constraints=[
                PathConstraint("bad", lambda x, u, p: x[0], np.array([1.0]), np.array([0.0]))
            ],
        )
