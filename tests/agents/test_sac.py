from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.agents import (
    SAC,
    ActorPolicy,
    NonFiniteError,
    ReplayBuffer,
    SACConfig,
    TrainConfig,
    Trainer,
    load_actor,
)
from robot_rl.agents.envs import make_env
from robot_rl.checkpoint import CheckpointError
from robot_rl.types import Batch

from .fakes import PointEnv

SMALL = SACConfig(hidden=(32, 32), batch_size=32)


def _trainer(envs, total_steps=200, seed=0, path=None, config=SMALL, **train_kwargs) -> Trainer:
    obs_dim, act_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    train = TrainConfig(
        total_steps=total_steps,
        num_envs=len(envs),
        learning_starts=50,
        eval_every=0,
        log_every=100,
        seed=seed,
        **train_kwargs,
    )
    return Trainer(
        SAC(obs_dim, act_dim, config, seed=seed), envs, train, "point", checkpoint_path=path
    )


def _fixed_batch(n=64, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 2, generator=g)
    return Batch(
        obs=obs,
        action=torch.rand(n, 1, generator=g) * 2 - 1,
        reward=-(obs[:, 0] ** 2),
        next_obs=obs + 0.01,
        terminated=torch.zeros(n),
        cost=torch.zeros(n),
    )


def test_loop_steps_each_env_exactly_and_counts_every_reset():
    envs = [PointEnv(horizon=10), PointEnv(horizon=10)]
    trainer = _trainer(envs, total_steps=200, updates_per_step=0.5).train()
    assert [e.steps for e in envs] == [100, 100]
    # One reset at the start, then one after each of the 10 episodes of each env.
    assert [e.resets for e in envs] == [11, 11]
    k = trainer.counters
    assert (k.env_steps, k.episodes, k.resets) == (200, 20, 22)
    # 0.5 gradient steps per env step once learning starts (after 50 steps).
    assert trainer.agent.updates == 75
    assert len(trainer.buffer) == 200


def test_critic_regresses_onto_the_reward_when_gamma_is_zero():
    agent = SAC(2, 1, SACConfig(hidden=(32, 32), gamma=0.0, critic_lr=1e-3), seed=0)
    batch = _fixed_batch()

    def loss() -> float:
        with torch.no_grad():
            next_action, next_log_prob = agent.actor.sample(batch.next_obs)
            terms = agent.critic_loss(batch, next_action, next_log_prob, agent.temperature)
            return float(terms["critic"])

    before = loss()
    for _ in range(200):
        agent.update(batch)
    assert loss() < 0.1 * before


def test_actor_moves_towards_higher_q():
    agent = SAC(2, 1, SMALL, seed=0)
    batch = _fixed_batch()
    with torch.no_grad():  # a critic that likes action +1 everywhere
        last = agent.critics["reward"].net[-1]
        last.weight.zero_()
        last.bias.zero_()
        agent.critics["reward"].net[0].weight.zero_()
        agent.critics["reward"].net[0].weight[:, 2, :] = 1.0  # the action input
        agent.critics["reward"].net[0].bias.zero_()
        last.weight.fill_(1.0)
    agent.critic_optimizer.param_groups[0]["lr"] = 0.0
    before = agent.actor(batch.obs).mean().item()
    for _ in range(50):
        agent.update(batch)
    assert agent.actor(batch.obs).mean().item() > before + 0.2


@pytest.mark.parametrize(("target_entropy", "direction"), [(5.0, 1), (-5.0, -1)])
def test_temperature_moves_towards_the_target_entropy(target_entropy, direction):
    agent = SAC(2, 1, SACConfig(hidden=(32,), target_entropy=target_entropy), seed=0)
    before = agent.temperature.item()
    for _ in range(20):
        agent.update(_fixed_batch())
    after = agent.temperature.item()
    # Entropy below target: raise α; above: lower it.
    assert (after - before) * direction > 0


def test_same_seed_same_run_other_seed_other_run():
    def params(seed):
        trainer = _trainer([PointEnv()], total_steps=150, seed=seed).train()
        return torch.cat([p.flatten() for p in trainer.agent.actor.parameters()])

    torch.testing.assert_close(params(0), params(0), rtol=0, atol=0)
    assert not torch.allclose(params(0), params(1))


def test_library_code_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _trainer([PointEnv()], total_steps=120).train()
    torch.testing.assert_close(torch.rand(3), expected)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    """Stop mid-episode, resume from the checkpoint: same parameters, same next actions."""

    def env():
        return make_env("robot_rl/PendulumSwingup-v0")

    straight = _trainer([env()], total_steps=330).train()

    path = tmp_path / "run.pt"
    _trainer([env()], total_steps=170, path=path).train()  # 170: mid-episode
    resumed = _trainer([env()], total_steps=330, path=path).load(path)
    assert resumed.counters.env_steps == 170
    resumed.train()

    for a, b in zip(
        straight.agent.actor.parameters(), resumed.agent.actor.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    obs = straight._obs
    np.testing.assert_array_equal(straight.agent.act(obs), resumed.agent.act(obs))
    np.testing.assert_array_equal(
        straight.agent.act(obs, deterministic=True), resumed.agent.act(obs, deterministic=True)
    )
    assert straight.counters == resumed.counters


def test_checkpoint_of_another_env_or_algorithm_is_refused(tmp_path):
    path = tmp_path / "point.pt"
    _trainer([PointEnv()], total_steps=60, path=path).train()
    env = make_env("robot_rl/PendulumSwingup-v0")
    other = Trainer(SAC(3, 1, SMALL), [env], TrainConfig(total_steps=10, eval_every=0), "pendulum")
    with pytest.raises(CheckpointError, match="env_id"):
        other.load(path)
    bigger = _trainer([PointEnv()], config=SACConfig(hidden=(64, 64), batch_size=32))
    with pytest.raises(CheckpointError, match="config"):
        bigger.load(path)


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        _trainer([PointEnv()]).load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        _trainer([PointEnv()]).load(tmp_path / "missing.pt")


def test_nan_observation_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    trainer = _trainer([PointEnv(nan_at=137)], total_steps=300, path=path, checkpoint_every=100)
    with pytest.raises(NonFiniteError, match=r"observation.*episode step 7 of env step 136") as err:
        trainer.train()
    assert "last good checkpoint" in str(err.value)
    kept = _trainer([PointEnv()], total_steps=300, path=path).load(path)
    assert kept.counters.env_steps == 100


def test_nan_reward_is_named():
    class NanReward(PointEnv):
        def step(self, action):
            obs, _, term, trunc, info = super().step(action)
            return obs, math.nan, term, trunc, info

    with pytest.raises(NonFiniteError, match=r"reward nan .*env step 0"):
        _trainer([NanReward()]).train()


def test_safety_termination_ends_episodes_on_cost_and_charges_the_steps_left():
    env = PointEnv(horizon=50, band=0.0)  # every step costs
    trainer = _trainer([env], total_steps=20, safety_termination=True).train()
    assert trainer.counters.episodes == 20 == trainer.counters.terminations
    assert float(trainer.buffer.all().terminated.min()) == 1.0
    # Each episode ended on its first step; the stopped robot stays unsafe for 49 more.
    assert trainer.history[-1][1]["rollout/cost"] == 50.0
    assert trainer.counters.violations == 20


def test_an_env_without_a_time_limit_is_not_charged():
    env = PointEnv(horizon=50, band=0.0)
    env.max_episode_steps = None
    trainer = _trainer([env], total_steps=20, safety_termination=True).train()
    assert trainer.history[-1][1]["rollout/cost"] == 1.0


def test_actor_loaded_from_a_checkpoint_acts_like_the_trained_one(tmp_path):
    path = tmp_path / "run.pt"
    trainer = _trainer([PointEnv()], total_steps=80, path=path).train()
    policy = ActorPolicy(load_actor(path))
    assert isinstance(policy, robot_rl.types.Policy)
    obs = np.array([0.3, 0.5], np.float32)
    np.testing.assert_array_equal(policy.act(obs), trainer.agent.policy().act(obs))
    with pytest.raises(CheckpointError):
        load_actor(tmp_path / "missing.pt")


def test_gymnasium_env_actions_are_rescaled_to_unit_box():
    env = make_env("Pendulum-v1")
    assert np.all(env.action_space.low == -1.0)
    assert np.all(env.action_space.high == 1.0)


def test_buffer_is_part_of_the_trainer():
    trainer = _trainer([PointEnv()], total_steps=60)
    assert isinstance(trainer.buffer, ReplayBuffer)


@pytest.mark.slow
def test_sac_learns_pendulum():
    """Gymnasium's Pendulum-v1: random is about -1200, swung up and held is above -200."""
    env, eval_env = make_env("Pendulum-v1"), make_env("Pendulum-v1")
    config = TrainConfig(total_steps=6000, eval_every=0, seed=0)
    trainer = Trainer(
        SAC(3, 1, SACConfig(hidden=(64, 64)), seed=0),
        [env],
        config,
        "Pendulum-v1",
        eval_env=eval_env,
    )
    trainer.train()
    assert trainer.evaluate().mean_return > -250


def test_checkpoint_deploys_and_exports_through_the_hardware_loader(tmp_path):
    from robot_rl.hardware.export import export_torchscript
    from robot_rl.hardware.policies import load_policy

    path = tmp_path / "run.pt"
    trainer = _trainer([PointEnv()], total_steps=80, path=path).train()
    policy, metadata = load_policy(str(path))
    assert (metadata.obs_dim, metadata.act_dim, metadata.algorithm) == (2, 1, "sac")
    obs = np.array([0.3, 0.5], np.float32)
    np.testing.assert_allclose(policy.act(obs), trainer.agent.policy().act(obs), atol=1e-6)
    exported = export_torchscript(policy.module, tmp_path / "actor.pt", metadata)
    scripted, _ = load_policy(str(exported))
    np.testing.assert_allclose(scripted.act(obs), policy.act(obs), atol=1e-6)
