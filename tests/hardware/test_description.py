from __future__ import annotations

import math

import numpy as np
import pytest

import robot_rl
from robot_rl.envs.robots import A1, CARTPOLE, IIWA, PENDULUM, REACHER, ActuatorSpec
from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware import RobotSpec, SafeBehaviour, SimRobot, mock_spec, spec_from_robot
from robot_rl.hardware.description import DAMPING_DECAY, urdf_joint_limits


def test_limits_come_from_the_urdf_and_the_actuators() -> None:
    cart = spec_from_robot(CARTPOLE, 0.05)
    assert cart.joint_names == ("slider", "hinge")
    assert cart.actuated == (0,)
    assert cart.mode is ControlMode.TORQUE
    assert cart.safe_behaviour is SafeBehaviour.DAMP
    np.testing.assert_array_equal(cart.position_low, [-2.0, -math.inf])
    np.testing.assert_array_equal(cart.position_high, [2.0, math.inf])
    np.testing.assert_array_equal(cart.effort_limit, [10.0])
    assert cart.rate == pytest.approx(20.0)
    assert cart.max_rate == pytest.approx(1000.0)

    reacher = spec_from_robot(REACHER, 0.05)
    np.testing.assert_array_equal(reacher.position_high, [math.inf, 2.8])

    arm = spec_from_robot(IIWA, 0.05)
    assert arm.mode is ControlMode.VELOCITY
    assert arm.safe_behaviour is SafeBehaviour.HOLD
    assert arm.n_joints == arm.n_act == 7
    assert np.all(np.isfinite(arm.position_low))
    assert np.all(arm.velocity_limit == 10.0)

    dog = spec_from_robot(A1, 0.02)
    assert dog.mode is ControlMode.POSITION
    assert dog.safe_behaviour is SafeBehaviour.HOLD


def test_urdf_limits_treat_continuous_joints_as_unlimited() -> None:
    limits = urdf_joint_limits(PENDULUM.urdf())
    assert limits["hinge"][:2] == (-math.inf, math.inf)


def test_mixed_control_modes_are_refused() -> None:
    import dataclasses

    mixed = dataclasses.replace(
        REACHER,
        actuators=(
            REACHER.actuators[0],
            ActuatorSpec("elbow", ControlMode.VELOCITY, (-1.0, 1.0), force_limit=0.05, kv=0.01),
        ),
    )
    with pytest.raises(ValueError, match="mixes control modes"):
        spec_from_robot(mixed, 0.05)


@pytest.mark.parametrize("env_id", ["robot_rl/CartpoleSwingup-v0", "robot_rl/ReacherTwoLink-v0"])
def test_safe_stop_damping_is_stable_at_the_control_rate(env_id: str) -> None:
    from robot_rl.hardware.backends.sim import actuated_inertia

    robot = robot_rl.make(env_id).task.robot
    inertia = actuated_inertia(robot)
    spec = spec_from_robot(robot, 0.05, inertia=inertia)
    # The discrete damper scales speed by 1 - D dt / I per period: keep it in (0, 1).
    assert np.all(spec.damping * 0.05 / inertia <= DAMPING_DECAY + 1e-12)
    assert np.all(spec.damping > 0)


def test_spec_round_trips_through_json_with_infinite_limits() -> None:
    import json

    with SimRobot.make("robot_rl/CartpoleSwingup-v0") as robot:
        spec = robot.spec
    back = RobotSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back.to_dict() == spec.to_dict()
    assert back.task == "robot_rl/CartpoleSwingup-v0"
    assert back.observation_size == 5
    assert math.isinf(back.position_high[1])


def test_bad_specs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="missing the field 'mode'"):
        RobotSpec.from_dict({k: v for k, v in mock_spec().to_dict().items() if k != "mode"})
    good = mock_spec().to_dict()
    with pytest.raises(ValueError, match="command range"):
        RobotSpec.from_dict({**good, "command_low": [1.0, 1.0]})
    with pytest.raises(ValueError, match="shape"):
        RobotSpec.from_dict({**good, "effort_limit": [1.0]})


def test_action_and_command_maps_are_inverse_and_match_the_env() -> None:
    spec = spec_from_robot(CARTPOLE, 0.05)
    action = np.array([0.3])
    np.testing.assert_allclose(spec.command_from_action(action), [3.0])
    np.testing.assert_allclose(spec.action_from_command(spec.command_from_action(action)), action)
