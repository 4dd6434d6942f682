"""Faults a deployment must survive, each ending with the robot safe and a complete record."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware import (
    DeployConfig,
    Lifecycle,
    MockFaults,
    MockRobot,
    Pacing,
    SafetyConfig,
    SimRobot,
    Termination,
    deploy,
    mock_spec,
    read_run,
    safe_command,
)
from robot_rl.hardware.backends.sim import RealityGap


def assert_safe_and_recorded(robot: MockRobot, record: Path, termination: Termination) -> None:
    """The robot was safe-stopped last, and the record is complete and says why it ended."""
    assert robot.lifecycle is Lifecycle.FINALIZED
    assert robot.safe_stops >= 1
    np.testing.assert_array_equal(robot.last_command, safe_command(robot.spec, robot.read_state()))
    log = read_run(record)
    assert log.complete
    assert log.termination == termination.value
    assert log.n_cycles == len(log.cycles["applied"]) > 0
    for command in robot.commands:  # nothing unsafe ever reached the motors
        assert np.all(np.isfinite(command))
        assert np.all(command >= robot.spec.command_low)
        assert np.all(command <= robot.spec.command_high)


class Robot(MockRobot):
    def read_state(self):
        return self._state()


def test_a_policy_that_raises_ends_the_run_safely(tmp_path: Path, scripted_policy) -> None:
    def boom(step: int) -> None:
        if step == 7:
            raise RuntimeError("policy bug")

    robot = Robot(mock_spec())
    policy = scripted_policy([np.array([0.5, -0.5])], hook=boom)
    result = deploy(
        robot, policy, DeployConfig(episode_steps=50, pacing=Pacing.NONE), record=tmp_path / "r.h5"
    )
    assert result.termination is Termination.POLICY_ERROR
    assert "policy bug" in result.detail
    assert result.cycles == 8
    assert result.event_counts["POLICY_ERROR"] == 1
    assert_safe_and_recorded(robot, tmp_path / "r.h5", Termination.POLICY_ERROR)


def test_a_stalled_policy_trips_the_watchdog(tmp_path: Path, scripted_policy) -> None:
    def stall(step: int) -> None:
        if step == 5:
            time.sleep(3.0)

    robot = Robot(mock_spec(rate=50.0))
    policy = scripted_policy([np.array([0.2, 0.2])], hook=stall)
    # A generous budget (10 periods): only the stall, not a busy machine, runs out of it.
    config = DeployConfig(episode_steps=100, pacing=Pacing.TIMER, policy_timeout=0.2)
    result = deploy(
        robot, policy, config, SafetyConfig(watchdog_cycles=3), record=tmp_path / "r.h5"
    )
    assert result.termination is Termination.WATCHDOG
    assert result.event_counts["POLICY_STALL"] == 3
    assert result.event_counts["MISSED_COMMAND"] == 2
    assert result.cycles == 8  # 5 good cycles, 3 stalled ones
    assert_safe_and_recorded(robot, tmp_path / "r.h5", Termination.WATCHDOG)
    # While stalled, the previous command was held, never anything new.
    np.testing.assert_array_equal(robot.commands[5], [0.2, 0.2])


def test_a_slow_first_call_is_made_before_the_robot_is_armed(
    tmp_path: Path, scripted_policy
) -> None:
    calls: list[float] = []

    def cold_start(step: int) -> None:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            time.sleep(0.3)  # 15 periods: first-call overheads of a planner

    robot = Robot(mock_spec(rate=50.0))
    policy = scripted_policy([np.array([0.2, 0.2])], hook=cold_start)
    config = DeployConfig(episode_steps=20, pacing=Pacing.TIMER)
    result = deploy(
        robot, policy, config, SafetyConfig(watchdog_cycles=2), record=tmp_path / "r.h5"
    )
    assert result.termination is Termination.COMPLETED
    assert "POLICY_STALL" not in result.event_counts
    assert len(calls) == 21  # the warm-up, then one call per cycle that sends a command
    assert_safe_and_recorded(robot, tmp_path / "r.h5", Termination.COMPLETED)


any_float = st.floats(allow_nan=True, allow_infinity=True)
hostile = st.lists(
    st.one_of(
        st.lists(any_float, min_size=2, max_size=2).map(np.array),
        st.lists(st.floats(-1e9, 1e9), min_size=2, max_size=2).map(np.array),
        st.lists(st.floats(-1, 1), min_size=0, max_size=3).map(np.array),
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.parametrize(
    "mode", [ControlMode.POSITION, ControlMode.VELOCITY, ControlMode.TORQUE], ids=lambda m: m.value
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=hostile)
def test_fuzzed_actions_never_reach_the_robot(
    mode, actions, tmp_path_factory, scripted_policy
) -> None:
    record = tmp_path_factory.mktemp("fuzz") / "r.h5"
    robot = Robot(mock_spec(mode=mode, rate=100.0))
    result = deploy(
        robot,
        scripted_policy(actions),
        DeployConfig(episode_steps=30, pacing=Pacing.NONE),
        record=record,
    )
    assert result.termination in (Termination.COMPLETED, Termination.WATCHDOG)
    assert_safe_and_recorded(robot, record, result.termination)
    log = read_run(record)
    changed = ~np.isclose(np.nan_to_num(log.cycles["desired"], nan=1e300), log.cycles["applied"])
    flagged = log.cycles["interventions"] != 0
    assert np.all(flagged[changed.any(axis=1) & ~np.isnan(log.cycles["applied"]).any(axis=1)])


def test_a_robot_that_stops_answering_ends_the_run(tmp_path: Path, linear_policy) -> None:
    robot = Robot(mock_spec(), MockFaults(stop_answering_after=12))
    result = deploy(
        robot,
        linear_policy(4, 2),
        DeployConfig(episode_steps=50, pacing=Pacing.NONE),
        record=tmp_path / "r.h5",
    )
    assert result.termination is Termination.COMMS_LOST
    assert "stopped answering" in result.detail
    log = read_run(tmp_path / "r.h5")
    assert log.complete
    assert log.termination == "comms_lost"
    assert log.n_cycles == 12  # one cycle per read that was answered
    assert robot.safe_stops >= 1
    assert robot.lifecycle is Lifecycle.FINALIZED


def test_a_sensor_fault_latches_the_estop(tmp_path: Path, linear_policy) -> None:
    robot = Robot(mock_spec(), MockFaults(nan_state_after=6))
    result = deploy(
        robot,
        linear_policy(4, 2),
        DeployConfig(episode_steps=50, pacing=Pacing.NONE),
        record=tmp_path / "r.h5",
    )
    assert result.termination is Termination.STATE_LIMIT
    assert result.event_counts["STATE_LIMIT"] == 1
    assert result.event_counts["ESTOP"] == 1
    assert all(np.all(np.isfinite(c)) for c in robot.commands)


def test_loop_overruns_are_counted_and_the_run_goes_on(tmp_path: Path, linear_policy) -> None:
    # Every read takes 1.5 periods of a 100 Hz loop: each cycle overruns and a deadline is
    # skipped before most of them.
    robot = Robot(mock_spec(rate=100.0), MockFaults(read_delay=0.015))
    result = deploy(
        robot,
        linear_policy(4, 2),
        DeployConfig(episode_steps=10, pacing=Pacing.TIMER),
        record=tmp_path / "r.h5",
    )
    assert result.termination is Termination.COMPLETED
    assert result.loop.overruns >= 10
    assert result.event_counts["OVERRUN"] == result.loop.overruns
    assert result.lost_cycles >= 5
    log = read_run(tmp_path / "r.h5")
    assert log.lost_cycles() == result.lost_cycles
    assert_safe_and_recorded(robot, tmp_path / "r.h5", Termination.COMPLETED)


def test_ctrl_c_ends_the_run_with_a_safe_stop(
    tmp_path: Path, scripted_policy, python_sigint
) -> None:
    def ctrl_c(step: int) -> None:
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    robot = Robot(mock_spec())
    policy = scripted_policy([np.array([0.3, 0.3])], hook=ctrl_c)
    result = deploy(
        robot,
        policy,
        DeployConfig(episode_steps=200, pacing=Pacing.TIMER),
        record=tmp_path / "r.h5",
    )
    assert result.termination is Termination.INTERRUPTED
    assert_safe_and_recorded(robot, tmp_path / "r.h5", Termination.INTERRUPTED)


def test_history_and_filter_shape_what_the_policy_sees_and_sends(scripted_policy) -> None:
    robot = Robot(mock_spec(rate=100.0))
    policy = scripted_policy([np.array([1.0, -1.0]), np.array([-1.0, 1.0])])
    config = DeployConfig(episode_steps=5, pacing=Pacing.NONE, history=3, action_filter=10.0)
    deploy(robot, policy, config, SafetyConfig(slew_rate=None))
    assert policy.seen[0].shape == (12,)  # 3 stacked observations of 4
    np.testing.assert_array_equal(policy.seen[0][:4], policy.seen[0][8:])  # filled at reset
    alpha = 1 - np.exp(-2 * np.pi * 10.0 / 100.0)
    np.testing.assert_allclose(robot.commands[0], [1.0, -1.0])  # starts at the first action
    np.testing.assert_allclose(robot.commands[1], [1 - 2 * alpha, -1 + 2 * alpha])


def test_same_seed_same_run(tmp_path: Path, linear_policy) -> None:
    logs = []
    for name in ("a", "b"):
        deploy(
            SimRobot.make("robot_rl/CartpoleSwingup-v0", gap=RealityGap(obs_noise=0.01)),
            linear_policy(5, 1, seed=2),
            DeployConfig(episodes=2, seed=11, pacing=Pacing.NONE),
            record=tmp_path / f"{name}.h5",
        )
        logs.append(read_run(tmp_path / f"{name}.h5"))
    for column in ("observation", "desired", "applied", "reward"):
        np.testing.assert_array_equal(logs[0].cycles[column], logs[1].cycles[column])
