"""System identification recovers the parameters of a "real" robot (the PyBullet cart-pole
with a deliberate reality gap) from a logged run, on the MuJoCo model."""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl
from robot_rl.models.sysid import RecordedRun, identify


def _record(env, steps: int, seed: int) -> RecordedRun:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    m = env.physics.measure()
    qpos, qvel, ctrl = [m["qpos"]], [m["qvel"]], []
    half = env.task.robot.ctrl_high
    for k in range(steps):
        # Excitation around a weak centring loop, so the cart stays off the rail ends.
        excitation = 0.6 * np.sin(0.3 * k) + 0.3 * rng.normal()
        action = np.clip([excitation - 0.5 * m["qpos"][0] - 0.3 * m["qvel"][0]], -1, 1)
        env.step(action)
        m = env.physics.measure()
        qpos.append(m["qpos"])
        qvel.append(m["qvel"])
        ctrl.append(half * action)
    return RecordedRun(np.array(qpos), np.array(qvel), np.array(ctrl), env.task.control_dt)


@pytest.fixture(scope="module")
def gap_and_run():
    real = robot_rl.make("robot_rl/CartpoleSwingup-v0", engine="pybullet", max_episode_steps=None)
    truth = real.nominal_params.replace(link_masses=[1.15, 0.13], joint_damping=[0.0, 0.004])
    real.set_domain_params(truth)
    return real, truth, _record(real, steps=100, seed=0)


def test_identify_recovers_masses_and_damping(gap_and_run) -> None:
    real, truth, run = gap_and_run
    result = identify(
        real.task.robot, [run], real.nominal_params, fit=("link_masses", "joint_damping")
    )
    np.testing.assert_allclose(result.estimate.link_masses, truth.link_masses, rtol=0.01)
    assert result.estimate.joint_damping[1] == pytest.approx(0.004, abs=3e-4)
    assert result.final_rms < 0.3 * result.initial_rms
    assert result.skipped_segments == 0
    # Unfitted fields stay where they started.
    assert result.estimate.gravity == real.nominal_params.gravity


def test_bad_runs_are_rejected(gap_and_run) -> None:
    real, _, run = gap_and_run
    robot = real.task.robot
    broken = RecordedRun(run.qpos[:-2], run.qvel, run.ctrl, run.control_dt)
    with pytest.raises(ValueError, match="qpos has shape"):
        identify(robot, [broken], real.nominal_params)
    nan = RecordedRun(run.qpos, run.qvel * np.nan, run.ctrl, run.control_dt)
    with pytest.raises(ValueError, match="NaN"):
        identify(robot, [nan], real.nominal_params)
    with pytest.raises(ValueError, match="can fit"):
        identify(robot, [run], real.nominal_params, fit=("gravity",))
    with pytest.raises(ValueError, match="at least one"):
        identify(robot, [], real.nominal_params)
    pinned = RecordedRun(np.full_like(run.qpos, 2.0), run.qvel, run.ctrl, run.control_dt)
    with pytest.raises(ValueError, match="touched a limit"):
        identify(robot, [pinned], real.nominal_params)
    quadruped = robot_rl.make("robot_rl/QuadrupedWalk-v0")
    with pytest.raises(ValueError, match="fixed-base"):
        identify(quadruped.task.robot, [run], quadruped.nominal_params)
