"""The true simulator: reproduces env.step exactly and never disturbs the env it plans for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.models import SimulatorDynamics
from robot_rl.models.simulator import ControlDelay


@pytest.mark.parametrize(
    ("env_id", "latency"),
    [
        ("robot_rl/CartpoleSwingup-v0", 0.0),
        ("robot_rl/ReacherTwoLink-v0", 0.0),
        ("robot_rl/CartpoleSwingup-v0", 0.02),  # 20 of the 50 physics steps of a period
        ("robot_rl/PendulumSwingup-v0", 0.07),  # longer than a control period
    ],
)
def test_oracle_reproduces_env_step_exactly(env_id, latency):
    env = robot_rl.make(env_id)  # no pushes or observation noise
    env.set_domain_params(env.nominal_params.replace(latency=latency))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):  # start mid-episode, with a solver warm start in place
        env.step(rng.uniform(-1, 1, env.action_space.shape))
    oracle = SimulatorDynamics(env)
    start = env.get_state()
    state, warmstart = oracle.from_env(start.physics)
    actions = rng.uniform(-1, 1, (1, 12, env.action_space.shape[0]))
    states, sensordata = oracle.rollout(state, actions, warmstart, ControlDelay.of(env))
    predicted = oracle.observations(sensordata, start.task_state)[0]
    np.testing.assert_array_equal(
        predicted[0].astype(np.float32), env.get_state().obs.astype(np.float32)
    )
    for t in range(12):
        obs, *_ = env.step(actions[0, t])
        np.testing.assert_array_equal(predicted[t + 1].astype(np.float32), obs)
        np.testing.assert_array_equal(states[0, t], oracle.from_env(env.get_state().physics)[0])
    if not latency:
        # The Dynamics protocol (pure physics, no latency): one control period of a batch.
        batch = np.stack([state, states[0, 4]])
        nxt = oracle.step(batch, actions[0, [0, 5]])
        np.testing.assert_array_equal(nxt[1], states[0, 5])
        as_torch = oracle.step(torch.as_tensor(batch), torch.as_tensor(actions[0, [0, 5]]))
        assert torch.is_tensor(as_torch)
        np.testing.assert_array_equal(as_torch.numpy(), nxt)
    oracle.close()


def test_planning_leaves_the_env_untouched():
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=True)
    env.reset(seed=3)
    env.step(np.array([0.5]))
    before = env.get_state()
    data_before = (
        env.physics.data.qpos.copy(),
        env.physics.data.qvel.copy(),
        env.physics.data.time,
    )
    oracle = SimulatorDynamics(env, threads=2)
    returns = oracle.evaluate(before.obs, torch.rand(64, 10, 1) * 2 - 1)
    assert returns.shape == (64,)
    assert torch.isfinite(returns).all()
    after = env.get_state()
    np.testing.assert_array_equal(after.physics, before.physics)
    np.testing.assert_array_equal(after.obs, before.obs)
    assert after.step == before.step
    np.testing.assert_array_equal(env.physics.data.qpos, data_before[0])
    np.testing.assert_array_equal(env.physics.data.qvel, data_before[1])
    assert env.physics.data.time == data_before[2]
    oracle.close()


@pytest.mark.parametrize("cost_weight", [0.0, 5.0])
def test_oracle_scores_match_the_env_rewards_and_costs(cost_weight):
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", track_band=0.05)
    env.reset(seed=0)
    oracle = SimulatorDynamics(env, cost_weight=cost_weight)
    actions = torch.rand(3, 8, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1
    returns = oracle.evaluate(None, actions)
    start = env.get_state()
    costs = 0.0
    for i in range(3):
        env.set_state(start)
        total = 0.0
        for t in range(8):
            _, reward, _, _, info = env.step(actions[i, t].numpy())
            total += reward - cost_weight * info["cost"]
            costs += info["cost"]
        assert abs(float(returns[i]) - total) < 1e-4
    assert costs > 0  # the narrow band makes the cost matter
    oracle.close()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="needs a MuJoCo env"):
        SimulatorDynamics(robot_rl.make("robot_rl/PendulumSwingup-v0", engine="pybullet"))
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    env.reset(seed=0)
    oracle = SimulatorDynamics(env)
    state, _ = oracle.from_env(env.get_state().physics)
    with pytest.raises(ValueError, match=r"actions must have shape \(B, H, 1\)"):
        oracle.rollout(state, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        oracle.rollout(state, np.full((1, 3, 1), np.nan))
    with pytest.raises(ValueError, match="env physics state must have"):
        oracle.from_env(np.zeros(3))
    oracle.close()
