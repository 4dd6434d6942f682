"""Receding-horizon control in the envs: swing-ups, the arm, fallbacks, an untouched simulator."""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl
from robot_rl.controllers.ilqr import SolverStatus, TrajectoryResult
from robot_rl.controllers.presets import PlannerKind, PlanningModel, make_mpc
from robot_rl.controllers.receding_horizon import ActionScaling, TrajOptMPC
from robot_rl.evaluation import run_episode
from robot_rl.types import Policy


@pytest.mark.parametrize("env_id", ["robot_rl/PendulumSwingup-v0", "robot_rl/CartpoleSwingup-v0"])
def test_ilqr_mpc_on_the_analytic_model_swings_up_and_balances(env_id: str) -> None:
    env = robot_rl.make(env_id)
    mpc = make_mpc(env, PlanningModel.ANALYTIC)
    assert isinstance(mpc, Policy)
    episode = run_episode(env, mpc, seed=0, success_window=20)
    assert episode.success  # the last second upright
    assert not any(step.fallback for step in mpc.steps)
    actions = []
    run_episode(env, mpc, seed=0, on_step=lambda obs, action, info: actions.append(action))
    again = []
    run_episode(env, mpc, seed=0, on_step=lambda obs, action, info: again.append(action))
    np.testing.assert_array_equal(actions, again)  # same seed, same run


def test_nmpc_swings_up_the_pendulum() -> None:
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    mpc = make_mpc(env, PlanningModel.ANALYTIC, PlannerKind.NMPC, horizon=40, warm_iterations=30)
    assert run_episode(env, mpc, seed=1, success_window=20).success


def test_ilqr_mpc_with_simulator_derivatives_swings_up_the_pendulum() -> None:
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    mpc = make_mpc(env, PlanningModel.SIMULATOR, horizon=40, warm_iterations=3)
    assert run_episode(env, mpc, seed=2, success_window=20).success


@pytest.mark.slow
def test_ilqr_mpc_with_simulator_derivatives_swings_up_the_randomized_cartpole() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=True)
    mpc = make_mpc(env, PlanningModel.SIMULATOR)
    assert run_episode(env, mpc, seed=0, success_window=20).success


def test_planning_leaves_the_env_simulator_untouched() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=True)
    obs, _ = env.reset(seed=4)
    mpc = make_mpc(env, PlanningModel.SIMULATOR, horizon=10, first_iterations=3)
    before = env.unwrapped.get_state()
    mpc.act(obs)
    after = env.unwrapped.get_state()
    np.testing.assert_array_equal(before.physics, after.physics)
    assert before.step == after.step


class ScriptedOptimizer:
    """Returns a good plan, then failures: to test the fallback."""

    horizon, action_size = 5, 1

    def __init__(self, statuses: list[SolverStatus]) -> None:
        self.statuses = statuses
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def initial_controls(self) -> np.ndarray:
        return np.zeros((5, 1))

    def warm_start(self, previous, x0, steps=1, parameters=None) -> np.ndarray:
        return previous.controls

    def solve(self, x0, controls=None, parameters=None, *, max_iterations=None) -> TrajectoryResult:
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        bad = not status.usable
        U = np.full((5, 1), np.nan) if bad else np.arange(1.0, 6.0)[:, None]
        X = np.zeros((6, 1))
        return TrajectoryResult(X, U, np.zeros((5, 1, 1)), np.zeros((5, 1)), 0.0, status, 1, 0.0)


def test_mpc_falls_back_to_the_last_good_plan_and_reports_it() -> None:
    good, bad = SolverStatus.CONVERGED, SolverStatus.NON_FINITE
    mpc = TrajOptMPC(ScriptedOptimizer([good, bad, bad]), lambda o: o, ActionScaling.identity(1))
    controls = [mpc.control(np.zeros(1)) for _ in range(4)]
    np.testing.assert_array_equal(np.concatenate(controls), [1.0, 2.0, 3.0, 4.0])
    assert [s.fallback for s in mpc.steps] == [False, True, True, True]
    assert mpc.steps[1].status is bad


def test_mpc_without_any_good_plan_applies_the_neutral_control() -> None:
    mpc = TrajOptMPC(
        ScriptedOptimizer([SolverStatus.NON_FINITE]),
        lambda o: o,
        ActionScaling(np.array([-2.0]), np.array([2.0])),
    )
    action = mpc.act(np.zeros(1))
    assert np.isfinite(action).all()
    np.testing.assert_array_equal(action, [0.0])
    assert mpc.steps[0].fallback


def test_unsupported_combinations_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="no MPC preset"):
        make_mpc(robot_rl.make("robot_rl/QuadrupedWalk-v0"))
    with pytest.raises(ValueError, match="NMPC needs an analytic model"):
        make_mpc(
            robot_rl.make("robot_rl/PendulumSwingup-v0"), PlanningModel.SIMULATOR, PlannerKind.NMPC
        )
    with pytest.raises(ValueError, match="MuJoCo"):
        make_mpc(
            robot_rl.make("robot_rl/PendulumSwingup-v0", engine="pybullet"), PlanningModel.SIMULATOR
        )


def test_a_nan_observation_falls_back_instead_of_failing() -> None:
    env = robot_rl.make("robot_rl/ArmReach-v0")
    obs, _ = env.reset(seed=0)
    mpc = make_mpc(env, PlanningModel.SIMULATOR, horizon=5, first_iterations=2)
    first = mpc.act(obs)
    bad = obs.copy()
    bad[18] = np.nan  # the target
    second = mpc.act(bad)
    assert np.isfinite(second).all()
    assert mpc.steps[-1].fallback
    assert mpc.steps[-1].status is SolverStatus.NON_FINITE
    assert np.isfinite(first).all()


def test_the_envs_listed_as_analytic_are_exactly_those_with_an_analytic_model() -> None:
    from robot_rl.controllers.presets import ANALYTIC_ENVS, SUPPORTED_ENVS

    for env_id in SUPPORTED_ENVS:
        env = robot_rl.make(env_id)
        if env_id in ANALYTIC_ENVS:
            make_mpc(env, PlanningModel.ANALYTIC)
        else:
            with pytest.raises(ValueError, match="no analytic model"):
                make_mpc(env, PlanningModel.ANALYTIC)
