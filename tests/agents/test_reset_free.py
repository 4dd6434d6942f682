from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.agents import SAC, SACConfig, TrainConfig
from robot_rl.agents.envs import make_env
from robot_rl.agents.reset_free import (
    InitialStateReward,
    ResetFreeConfig,
    ResetFreeEnv,
    ResetFreeTrainer,
    ResetReward,
)

from .fakes import PointEnv

SMALL = SACConfig(hidden=(32, 32), batch_size=32)
DEMOS = np.array([[0.0, 0.0], [0.05, 0.0], [-0.05, 0.0]], dtype=np.float32)


def _trainer(
    env,
    total_steps=400,
    path=None,
    demos=DEMOS,
    learning_starts=50,
    log_every=100,
    **reset_free,
) -> ResetFreeTrainer:
    config = TrainConfig(
        total_steps=total_steps,
        learning_starts=learning_starts,
        eval_every=0,
        log_every=log_every,
    )
    rf = ResetFreeConfig(
        **({"forward_steps": 20, "reset_steps": 10, "reset_dims": (0,)} | reset_free)
    )
    return ResetFreeTrainer(
        SAC(2, 1, SMALL, seed=0),
        SAC(2, 1, SMALL, seed=1),
        ResetFreeEnv(env),
        demos,
        config,
        rf,
        "point",
        checkpoint_path=path,
    )


@pytest.mark.parametrize("reward", list(ResetReward))
def test_env_is_reset_only_as_a_counted_hard_reset(reward):
    env = PointEnv(horizon=10**9)
    trainer = _trainer(env, reset_reward=reward, reset_radius=0.1, abort_after=100).train()
    assert env.steps == 400
    # The env's own count: the initial placement plus every hard reset, nothing else.
    assert env.resets == 1 + trainer.hard_resets == trainer.env.resets
    assert trainer.env.hard_resets == trainer.hard_resets
    assert trainer.counters.resets == env.resets
    assert trainer.hard_resets > 0  # reset attempts of 10 steps do fail early on
    assert trainer.counters.episodes > trainer.hard_resets  # forward phases


def test_hard_reset_follows_only_failed_reset_attempts():
    env = PointEnv(horizon=10**9)
    # The reset region is unreachable (radius tiny, point starts in [-1, 1]): every reset
    # attempt fails, so each forward phase costs exactly one hard reset after 2 attempts.
    trainer = _trainer(
        env, total_steps=200, forward_steps=20, reset_steps=10, reset_radius=1e-6, abort_after=10**9
    ).train()
    cycle = 20 + 2 * 10
    assert trainer.hard_resets == 200 // cycle
    assert trainer.reset_successes == 0


def test_failed_returns_call_no_one_when_reset_attempts_is_none():
    env = PointEnv(horizon=10**9)
    # Every reset attempt fails, as above, but the forward agent goes on from wherever the
    # point is (EARL-style): forward and reset phases alternate and nobody resets the env.
    trainer = _trainer(
        env,
        total_steps=200,
        forward_steps=20,
        reset_steps=10,
        reset_radius=1e-6,
        abort_after=10**9,
        reset_attempts=None,
    ).train()
    assert env.resets == 1
    assert trainer.hard_resets == 0
    assert trainer.counters.episodes == 7  # 6 cycles of 20 + 10 steps, then 20 forward
    assert trainer.reset_successes == 0


@pytest.mark.parametrize("attempts", [0, -1])
def test_reset_attempts_must_be_positive_or_none(attempts):
    with pytest.raises(ValueError, match="reset_attempts"):
        ResetFreeConfig(reset_attempts=attempts)


def test_successful_resets_need_no_person():
    env = PointEnv(horizon=10**9)
    # Everything within 10 units counts as reset: every reset attempt succeeds at once.
    trainer = _trainer(env, total_steps=300, reset_radius=10.0, abort_after=10**9).train()
    assert trainer.hard_resets == 0
    assert env.resets == 1
    assert trainer.reset_successes == trainer.counters.episodes


def test_early_abort_when_the_reset_value_is_low():
    env = PointEnv(horizon=10**9)
    trainer = _trainer(env, total_steps=200, reset_radius=10.0, abort_after=60, abort_reward=1.0)
    trainer.train()  # distance rewards are <= 0, so no value reaches 1 / (1 - γ)
    assert trainer.early_aborts > 0


def test_distance_reward_is_dense_and_reset_within_the_radius():
    reward = InitialStateReward(DEMOS, dims=(0,), radius=0.1)
    obs = torch.tensor([[0.0, 5.0], [0.14, 0.0], [1.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    # -d/σ over the chosen dims: 0 at a demonstration, -0.9 just inside the radius, falling
    # by one per radius 10-40 radii out (a Gaussian bump would be flat zero there).
    torch.testing.assert_close(reward(obs), torch.tensor([0.0, -0.9, -9.5, -19.5, -39.5]))
    assert reward.is_reset(obs).tolist() == [True, True, False, False, False]


def test_reset_free_resumes_exactly(tmp_path):
    def env():
        return make_env("robot_rl/ReacherTwoLink-v0", max_episode_steps=None)

    def trainer(total, path=None):
        config = TrainConfig(total_steps=total, learning_starts=50, eval_every=0, log_every=100)
        demos = np.stack([env().reset(seed=s)[0] for s in range(5)])
        rf = ResetFreeConfig(
            forward_steps=30, reset_steps=15, reset_dims=(0, 1, 2, 3), abort_after=100
        )
        return ResetFreeTrainer(
            SAC(10, 2, SMALL, seed=0),
            SAC(10, 2, SMALL, seed=1),
            ResetFreeEnv(env()),
            demos,
            config,
            rf,
            "reacher",
            checkpoint_path=path,
        )

    straight = trainer(260).train()
    path = tmp_path / "rf.pt"
    trainer(137, path).train()
    resumed = trainer(260, path).load(path).train()
    for a, b in zip(
        straight.reset_agent.actor.parameters(), resumed.reset_agent.actor.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (resumed.hard_resets, resumed.early_aborts, resumed.phase) == (
        straight.hard_resets,
        straight.early_aborts,
        straight.phase,
    )
    assert resumed.env.total_reward == pytest.approx(straight.env.total_reward)


def test_goal_changes_without_a_reset():
    env = ResetFreeEnv(make_env("robot_rl/ReacherTwoLink-v0", max_episode_steps=None))
    obs, _ = env.reset(seed=0)
    new = env.resample_task(np.random.default_rng(1))
    assert env.resets == 1
    assert not np.allclose(new[6:8], obs[6:8])  # the goal moved
    np.testing.assert_allclose(new[:6], obs[:6], atol=1e-6)  # the arm did not


def test_reset_agent_learns_to_return_from_far_away():
    env = PointEnv(horizon=10**9)
    # Home is x = 1.5, far from where the task (reward -x²) keeps the point: a random walk of
    # 20 steps rarely gets within 0.1 of it, so only a reward that guides the reset agent
    # from afar makes hard resets stop.
    home = np.array([[1.5, 0.0], [1.45, 0.0], [1.55, 0.0]], dtype=np.float32)
    trainer = _trainer(
        env,
        total_steps=3000,
        demos=home,
        learning_starts=100,
        log_every=1000,
        reset_steps=20,
        reset_attempts=1,
        reset_radius=0.1,
    )
    history = dict(trainer.train().history)
    hard_resets, returns = (
        history[3000][f"reset_free/{k}"] - history[2000][f"reset_free/{k}"]
        for k in ("hard_resets", "reset_successes")
    )
    assert hard_resets == 0  # in the last 1000 steps (30 in the first 2000)
    assert returns >= 20  # the reset agent brings the point home every cycle
