"""The contract every env satisfies on every engine (dm_control's suite_test, gymnasium's
checker): spaces, determinism, no shared memory, reward terms, state round trips, batched
scoring, rendering and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import robot_rl


def _actions(env, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def _rollout(env, actions: np.ndarray, seed: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info["domain_params"])]
    for a in actions:
        obs, reward, _terminated, _truncated, info = env.step(a)
        out.append((obs, reward, info["domain_params"], info["reward_terms"], info["cost"]))
    return out


def test_gymnasium_check_env(env_id: str, engine: str) -> None:
    env = robot_rl.make(
        env_id, engine=engine, randomization=True, render_mode="rgb_array", render_size=(64, 48)
    )
    check_env(env, skip_render_check=False)
    env.close()


def test_spaces_match_task(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (env.task.observation_size,)
    assert env.action_space.shape == (env.task.robot.action_size,)
    assert obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("randomize", [False, True])
def test_same_seed_same_rollout(env_id: str, engine: str, randomize: bool) -> None:
    first = robot_rl.make(env_id, engine=engine, randomization=randomize)
    second = robot_rl.make(env_id, engine=engine, randomization=randomize)
    actions = _actions(first, 30)
    for a, b in zip(
        _rollout(first, actions, seed=7), _rollout(second, actions, seed=7), strict=True
    ):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]


def test_initial_state_is_randomised(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine)
    first, _ = env.reset(seed=1)
    second, _ = env.reset(seed=2)
    assert not np.allclose(first, second)


def test_observations_share_no_memory(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine)
    obs0, _ = env.reset(seed=0)
    kept = obs0.copy()
    obs1, *_ = env.step(env.action_space.sample())
    obs2, *_ = env.step(env.action_space.sample())
    assert not np.shares_memory(obs0, obs1)
    assert not np.shares_memory(obs1, obs2)
    np.testing.assert_array_equal(obs0, kept)


def test_reward_terms_sum_to_reward(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine, randomization=True)
    env.reset(seed=3)
    for a in _actions(env, 20):
        _, reward, terminated, truncated, info = env.step(a)
        assert reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-9)
        assert info["cost"] >= 0.0
        if terminated or truncated:
            env.reset()


def test_state_round_trip_reproduces_the_future(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine, randomization=True)
    env.reset(seed=4)
    for a in _actions(env, 5, seed=1):
        env.step(a)
    saved = env.get_state()
    future = _actions(env, 10, seed=2)
    first = [env.step(a)[0] for a in future]
    env.set_state(saved)
    second = [env.step(a)[0] for a in future]
    # MuJoCo restores bit for bit; PyBullet drops its contact cache on a state reset.
    tol = 0 if engine == "mujoco" else 2e-3 if "Quadruped" in env_id else 1e-6
    np.testing.assert_allclose(np.array(first), np.array(second), atol=tol, rtol=0)


def test_batched_scoring_matches_env_and_torch(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine)
    _obs, _ = env.reset(seed=5)
    clean_obs, actions, next_obs, rewards, costs = [], [], [], [], []
    for a in _actions(env, 12, seed=3):
        before = env.get_state().obs
        _, reward, _, _, info = env.step(a)
        clean_obs.append(before)
        actions.append(a)
        next_obs.append(env.get_state().obs)
        rewards.append(reward)
        costs.append(info["cost"])
    o, a, n = (np.array(x, dtype=np.float64) for x in (clean_obs, actions, next_obs))
    task = env.task
    np.testing.assert_allclose(task.reward(o, a, n), rewards, atol=1e-9)
    np.testing.assert_allclose(task.cost(o, a, n), costs)
    # The same functions on torch tensors, batched with an extra leading axis.
    to = lambda x: torch.as_tensor(x).reshape(3, 4, -1)  # noqa: E731
    torch_reward = task.reward(to(o), to(a), to(n)).reshape(-1).numpy()
    np.testing.assert_allclose(torch_reward, rewards, atol=1e-9)
    torch_cost = task.cost(to(o), to(a), to(n)).reshape(-1).numpy()
    np.testing.assert_allclose(torch_cost, costs)
    assert task.termination(to(o), to(a), to(n)).shape == (3, 4)


def test_render_gives_an_image(env_id: str, engine: str) -> None:
    env = robot_rl.make(env_id, engine=engine, render_mode="rgb_array", render_size=(96, 72))
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (72, 96, 3)
    assert frame.dtype == np.uint8
    assert frame.std() > 1.0  # not a blank image


@pytest.mark.parametrize("bad", [np.zeros(99), np.array([np.nan] * 12), np.array([np.inf] * 12)])
def test_bad_actions_raise(env_id: str, engine: str, bad: np.ndarray) -> None:
    env = robot_rl.make(env_id, engine=engine)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    action = bad if bad.shape[0] == 99 else bad[:n]
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_out_of_range_actions_are_clipped_to_the_bounds(env_id: str) -> None:
    clipped, wild = (robot_rl.make(env_id) for _ in range(2))
    n = clipped.action_space.shape[0]
    clipped.reset(seed=0)
    wild.reset(seed=0)
    a, *_ = clipped.step(np.ones(n))
    b, *_ = wild.step(np.full(n, 1e6))
    np.testing.assert_array_equal(a, b)
