from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware import Lifecycle, LifecycleError, MockRobot, mock_spec


def test_lifecycle_order_is_enforced() -> None:
    robot = MockRobot(mock_spec())
    with pytest.raises(LifecycleError, match="spec"):
        _ = robot.spec
    with pytest.raises(LifecycleError, match="read needs a configured robot"):
        robot.read()
    robot.configure()
    assert robot.lifecycle is Lifecycle.INACTIVE
    robot.read()  # configured is read-only
    with pytest.raises(LifecycleError, match=r"write\(\) needs the robot active"):
        robot.write(np.zeros(2))
    with pytest.raises(LifecycleError, match="configure"):
        robot.configure()
    robot.activate()
    robot.write(np.array([0.1, 0.2]))
    with pytest.raises(LifecycleError, match="start_episode"):
        robot.start_episode()
    robot.deactivate()
    assert robot.lifecycle is Lifecycle.INACTIVE
    assert robot.safe_stops == 1
    robot.shutdown()
    robot.shutdown()  # idempotent
    assert robot.lifecycle is Lifecycle.FINALIZED
    assert robot.safe_stops == 2


def test_write_refuses_wrong_shapes_and_non_finite_commands() -> None:
    with MockRobot(mock_spec()) as robot:
        robot.activate()
        with pytest.raises(ValueError, match="shape"):
            robot.write(np.zeros(3))
        with pytest.raises(ValueError, match="finite"):
            robot.write(np.array([0.0, np.inf]))
        assert robot.commands == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_context_manager_safe_stops_on_exceptions_and_ctrl_c(error: BaseException) -> None:
    robot = MockRobot(mock_spec(mode=ControlMode.TORQUE))

    def run() -> None:
        with robot:
            robot.activate()
            robot.write(np.array([0.5, 0.5]))
            raise error

    with pytest.raises(type(error)):
        run()
    assert robot.lifecycle is Lifecycle.FINALIZED
    assert robot.safe_stops == 1
    # Damping -D q̇ with D = 1 and q̇ = 0.5 N·m × 10 ms on a unit inertia.
    np.testing.assert_allclose(robot.last_command, [-0.005, -0.005])


class InterruptedStop(MockRobot):
    """A robot whose safe stop is hit by Ctrl-C half-way."""

    finished = False

    def _safe_stop(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        super()._safe_stop()
        self.finished = True


def test_ctrl_c_during_the_safe_stop_waits_for_it_to_finish(python_sigint) -> None:
    robot = InterruptedStop(mock_spec())
    robot.configure()
    robot.activate()
    with pytest.raises(KeyboardInterrupt):
        robot.deactivate()
    assert robot.finished
    assert robot.lifecycle is Lifecycle.INACTIVE
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_start_episode_unsupported_is_a_clear_error() -> None:
    from robot_rl.hardware import RobotInterface

    class Fixed(MockRobot):
        _start_episode = RobotInterface._start_episode

    with Fixed(mock_spec()) as robot, pytest.raises(NotImplementedError, match="start state"):
        robot.start_episode()
