"""Evaluation counts exactly, checked on a tiny fake env that counts its own calls."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robot_rl.evaluation import RandomPolicy, evaluate, run_episode


class CountingEnv(gym.Env):
    """Reward 1 per step, cost 0.5 on odd steps, success from step 3 on, 5 steps long."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self) -> None:
        self.resets = self.steps = self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        info = {"cost": 0.5 * (self.t % 2), "success": self.t >= 3, "reward_terms": {"alive": 1.0}}
        return np.zeros(1, np.float32), 1.0, False, self.t == 5, info


def test_run_episode_counts() -> None:
    env = CountingEnv()
    ep = run_episode(env, RandomPolicy(env.action_space, seed=0), seed=0, success_window=3)
    assert (ep.ret, ep.cost, ep.length) == (5.0, 1.5, 5)
    assert ep.success
    assert ep.final_success
    assert ep.reward_terms == {"alive": 5.0}
    assert not run_episode(env, RandomPolicy(env.action_space), success_window=4).success


def test_evaluate_runs_each_episode_once() -> None:
    env = CountingEnv()
    result = evaluate(env, RandomPolicy(env.action_space, seed=1), episodes=3)
    assert env.resets == 3
    assert env.steps == 15
    assert result.mean_return == 5.0
    assert result.success_rate == 1.0
    with pytest.raises(ValueError, match="episodes"):
        evaluate(env, RandomPolicy(env.action_space), episodes=0)


def test_random_policy_is_seeded() -> None:
    space = gym.spaces.Box(-2, 3, (4,))
    a, b = RandomPolicy(space, seed=3), RandomPolicy(space, seed=3)
    first = a.act(np.zeros(1))
    np.testing.assert_array_equal(first, b.act(np.zeros(1)))
    assert np.all((first >= -2) & (first <= 3))
