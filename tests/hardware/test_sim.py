from __future__ import annotations

import numpy as np
import pytest

import robot_rl
from robot_rl.evaluation import evaluate
from robot_rl.hardware import DeployConfig, Pacing, SimRobot, deploy
from robot_rl.hardware.backends.sim import RealityGap


@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_commands_drive_the_env_exactly_as_its_actions_do(engine: str) -> None:
    env_id = "robot_rl/CartpoleSwingup-v0"
    twin = robot_rl.make(env_id, engine=engine)
    obs, _ = twin.reset(seed=3)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    with SimRobot.make(env_id, engine) as robot:
        state = robot.start_episode(seed=3)
        np.testing.assert_array_equal(state.observation, obs)
        robot.activate()
        for action in actions:
            robot.write(robot.spec.command_from_action(action))
            obs, *_ = twin.step(action)
            state = robot.read()
            np.testing.assert_array_equal(state.observation, obs)
        assert state.time == pytest.approx(20 * 0.05)
        assert state.seq == 20
        np.testing.assert_array_equal(state.applied, robot.spec.command_from_action(actions[-1]))
        assert state.effort[1] == 0.0  # the hinge has no actuator


def test_deploying_through_the_hal_scores_like_the_env(linear_policy) -> None:
    env_id = "robot_rl/ReacherTwoLink-v0"
    env = robot_rl.make(env_id)
    policy = linear_policy(10, 2, seed=0)  # stays clear of the elbow's soft limits
    expected = evaluate(env, policy, episodes=3, seed=7)
    resets = policy.resets
    result = deploy(
        SimRobot.make(env_id), policy, DeployConfig(episodes=3, seed=7, pacing=Pacing.NONE)
    )
    assert result.termination.value == "completed"
    assert "POSITION_LIMIT" not in result.event_counts  # no intervention: same as the env
    np.testing.assert_allclose([e.ret for e in result.episodes], expected.returns, rtol=1e-5)
    assert [e.success for e in result.episodes] == list(expected.successes)
    assert [e.cycles for e in result.episodes] == [51, 51, 51]  # 50 transitions + final sample
    assert policy.resets == resets + 3  # once per episode


def test_a_reality_gap_sets_the_envs_domain_parameters() -> None:
    gap = RealityGap(
        mass_scale=1.2, strength_scale=0.8, damping_add=0.01, latency=0.02, obs_noise=0.01
    )
    robot = SimRobot.make("robot_rl/PendulumSwingup-v0", gap=gap)
    params, nominal = robot.env.domain_params, robot.env.nominal_params
    np.testing.assert_allclose(params.link_masses, nominal.link_masses * 1.2)
    np.testing.assert_allclose(params.actuator_strength, nominal.actuator_strength * 0.8)
    np.testing.assert_allclose(params.joint_damping, nominal.joint_damping + 0.01)
    assert params.latency == 0.02
    assert params.obs_noise == 0.01
    with robot:
        a = robot.start_episode(seed=0).observation
        b = robot.start_episode(seed=0).observation
        c = robot.start_episode(seed=1).observation
    np.testing.assert_array_equal(a, b)  # seeded noise
    assert not np.array_equal(a, c)


def test_a_reality_gap_can_differ_per_link_and_joint() -> None:
    gap = RealityGap(mass_scale=(1.0, 1.3), damping_add=(0.05, 0.005))
    env = SimRobot.make("robot_rl/CartpoleSwingup-v0", gap=gap).env
    np.testing.assert_allclose(env.domain_params.link_masses, [1.0, 0.13])
    np.testing.assert_allclose(env.domain_params.joint_damping, [0.05, 0.005])
    with pytest.raises(ValueError, match="mass_scale has 3 values; this robot needs 1 or 2"):
        SimRobot.make("robot_rl/CartpoleSwingup-v0", gap=RealityGap(mass_scale=(1, 1, 1)))
    with pytest.raises(ValueError, match="must be positive"):
        RealityGap(strength_scale=(0.0,))


def test_a_faster_period_steps_the_physics_less_per_command() -> None:
    with SimRobot.make("robot_rl/ArmReach-v0", "pybullet", period=0.002) as robot:
        assert robot.spec.rate == pytest.approx(500.0)
        robot.activate()
        robot.write(np.full(7, 0.5))
        state = robot.read()
        assert state.time == pytest.approx(0.002)
        assert np.all(np.abs(state.velocity) < 0.5)  # the servo has not caught up in 2 ms
    with pytest.raises(ValueError, match="multiple of the physics step"):
        SimRobot.make("robot_rl/ArmReach-v0", period=0.0025)


@pytest.mark.parametrize(
    ("env_id", "engine"),
    [
        ("robot_rl/ArmReach-v0", "pybullet"),  # velocity control: hold
        ("robot_rl/ReacherTwoLink-v0", "mujoco"),  # torque control: damp
    ],
)
def test_safe_stop_brings_the_robot_to_rest(env_id: str, engine: str) -> None:
    with SimRobot.make(env_id, engine) as robot:
        robot.activate()
        for _ in range(20):
            robot.write(robot.spec.command_low * 0.8)
        moving = np.abs(robot.read().velocity).max()
        robot.deactivate()
        assert moving > 0.5
        assert np.abs(robot.read().velocity).max() < 5e-3
