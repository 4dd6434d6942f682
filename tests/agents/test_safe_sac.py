from __future__ import annotations

import itertools
import math

import pytest
import torch

from robot_rl.agents import TrainConfig, Trainer
from robot_rl.agents.safe_sac import CostEstimate, LagrangeUpdate, SafeSAC, SafeSACConfig
from robot_rl.types import Batch

from .fakes import PointEnv


def _config(mode: LagrangeUpdate, **kwargs) -> SafeSACConfig:
    return SafeSACConfig(hidden=(32, 32), batch_size=32, cost_limit=5.0, lagrange=mode, **kwargs)


@pytest.mark.parametrize("mode", list(LagrangeUpdate))
def test_multiplier_rises_while_cost_exceeds_the_limit_and_falls_once_met(mode):
    agent = SafeSAC(2, 1, _config(mode, multiplier_init=0.0), seed=0)
    trace = [agent.multiplier]
    for _ in range(30):  # episode cost 20 > limit 5
        agent.on_episodes([0.0], [20.0])
        trace.append(agent.multiplier)
    rising = trace[1:]
    assert all(b >= a for a, b in itertools.pairwise(rising))
    assert trace[-1] > trace[0] + 0.1
    peak = trace[-1]
    for _ in range(300):  # cost 0 < limit: the multiplier relaxes, never below zero
        agent.on_episodes([0.0], [0.0])
        trace.append(agent.multiplier)
        assert agent.multiplier >= 0.0
    assert trace[-1] < 0.5 * peak


@pytest.mark.parametrize("mode", list(LagrangeUpdate))
def test_multiplier_is_projected_onto_zero_not_below(mode):
    agent = SafeSAC(2, 1, _config(mode, multiplier_init=0.3, multiplier_lr=1.0), seed=0)
    for _ in range(200):
        agent.on_episodes([0.0], [0.0])
    assert agent.multiplier == 0.0


@pytest.mark.parametrize("mode", list(LagrangeUpdate))
def test_multiplier_integrates_per_env_step_not_per_episode(mode):
    """Ten episodes of a tenth of the time limit move λ as far as one full-length episode."""
    gains = {"pid_kp": 0.0, "pid_ki": 0.01, "pid_kd": 0.0, "multiplier_lr": 0.01}
    short, full = (SafeSAC(2, 1, _config(mode, **gains), seed=0) for _ in range(2))
    for _ in range(10):
        short.on_episodes([0.0], [9.0], [0.1])
    full.on_episodes([0.0], [9.0], [1.0])
    assert short.multiplier == pytest.approx(full.multiplier) == pytest.approx(0.04)


def test_trainer_reports_each_episode_as_a_share_of_the_time_limit():
    shares: list[float] = []

    class Recorder(SafeSAC):
        def on_episodes(self, returns, costs, episode_shares=None):
            shares.extend(episode_shares)

    agent = Recorder(2, 1, _config(LagrangeUpdate.PID), seed=0)
    config = TrainConfig(total_steps=60, learning_starts=60, eval_every=0, safety_termination=True)
    Trainer(agent, [PointEnv(horizon=20, band=0.0)], config, "point").train()
    assert shares == [1 / 20] * 60  # every step is unsafe: a stop after one step


@pytest.mark.parametrize("mode", list(LagrangeUpdate))
def test_bounded_error_moves_the_multiplier_by_a_bounded_step_both_ways(mode):
    """A huge violation moves λ no more than one of the size of the clip; so does a return."""
    gains = {"pid_kp": 0.0, "pid_ki": 0.01, "pid_kd": 0.0, "multiplier_lr": 0.01}
    clipped = SafeSAC(2, 1, _config(mode, error_clip=2.0, **gains), seed=0)
    free = SafeSAC(2, 1, _config(mode, error_clip=None, **gains), seed=0)
    for agent in (clipped, free):
        agent.on_episodes([0.0], [1000.0])  # cost 1000 against the limit 5
    assert clipped.multiplier == pytest.approx(0.02)  # 0.01 x clip 2
    assert free.multiplier == pytest.approx(9.95)  # 0.01 x 995
    for _ in range(3):
        clipped.on_episodes([0.0], [6.0])  # a violation of 1, inside the clip
    assert clipped.multiplier == pytest.approx(0.05)
    clipped.on_episodes([0.0], [0.0])  # -5, clipped to -2
    assert clipped.multiplier == pytest.approx(0.03)


def test_error_clip_must_be_positive():
    with pytest.raises(ValueError, match="error_clip"):
        SafeSACConfig(error_clip=0.0)


@pytest.mark.parametrize("limit", [-1.0, math.nan, math.inf])
def test_bad_cost_limit_is_rejected(limit):
    with pytest.raises(ValueError, match="cost_limit"):
        SafeSACConfig(cost_limit=limit)


class _DisagreeingCritics(torch.nn.Module):
    """Two cost critics: the first says every action is free, the second that a > 0 costs 2a."""

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.stack((torch.zeros_like(action[:, 0]), 2.0 * action[:, 0].clamp(min=0.0)))


@pytest.mark.parametrize(
    ("estimate", "expected"), [(CostEstimate.MAX, [0.0, 1.0]), (CostEstimate.MEAN, [0.0, 0.5])]
)
def test_cost_estimate_combines_the_members(estimate, expected):
    agent = SafeSAC(2, 1, _config(LagrangeUpdate.PID, cost_estimate=estimate), seed=0)
    value = agent.cost_value(
        _DisagreeingCritics(), torch.zeros(2, 2), torch.tensor([[-0.5], [0.5]])
    )
    torch.testing.assert_close(value, torch.tensor(expected))


def test_an_unsafe_terminal_state_goes_on_costing_and_a_safe_one_costs_nothing_more():
    agent = SafeSAC(2, 1, _config(LagrangeUpdate.PID, cost_gamma=0.9), seed=0)
    n = 3
    batch = Batch(
        obs=torch.zeros(n, 2),
        action=torch.zeros(n, 1),
        reward=torch.zeros(n),
        next_obs=torch.ones(n, 2),
        terminated=torch.tensor([1.0, 1.0, 0.0]),
        cost=torch.tensor([2.0, 0.0, 2.0]),
    )
    next_action = torch.zeros(n, 1)
    next_qc = agent.cost_value(agent.targets["cost"], batch.next_obs, next_action)
    target = agent.cost_target(batch, next_action)
    torch.testing.assert_close(target[:2], torch.tensor([2.0 / (1.0 - 0.9), 0.0]))
    torch.testing.assert_close(target[2], 2.0 + 0.9 * next_qc[2])


@pytest.mark.parametrize("estimate", list(CostEstimate))
def test_cost_critic_learns_the_cost_and_the_penalty_pushes_the_actor_away(estimate):
    """With the reward flat, a large multiplier makes the actor avoid the costly action."""
    config = _config(
        LagrangeUpdate.PID, cost_gamma=0.0, multiplier_init=5.0, cost_estimate=estimate
    )
    agent = SafeSAC(2, 1, config, seed=0)
    g = torch.Generator().manual_seed(0)
    n = 128
    obs = torch.randn(n, 2, generator=g)
    action = torch.rand(n, 1, generator=g) * 2 - 1
    batch = Batch(
        obs=obs,
        action=action,
        reward=torch.zeros(n),
        next_obs=obs,
        terminated=torch.zeros(n),
        cost=(action[:, 0] > 0).float(),  # positive actions are unsafe
    )
    before = agent.actor(obs).mean().item()
    for _ in range(300):
        agent.update(batch)
    with torch.no_grad():
        qc = agent.critics["cost"](obs, torch.full((n, 1), 0.8)).mean()
        qc_safe = agent.critics["cost"](obs, torch.full((n, 1), -0.8)).mean()
    assert qc > 0.7
    assert qc_safe < 0.3
    assert agent.actor(obs).mean().item() < min(before, 0.0) - 0.2


def test_safe_sac_runs_in_the_loop_and_resumes_its_multiplier(tmp_path):
    def trainer(total, path=None):
        agent = SafeSAC(2, 1, _config(LagrangeUpdate.GRADIENT), seed=0)
        config = TrainConfig(total_steps=total, learning_starts=20, eval_every=0, log_every=50)
        return Trainer(agent, [PointEnv(band=0.1)], config, "point", checkpoint_path=path)

    straight = trainer(120).train()
    assert straight.agent.multiplier > 0.0
    assert straight.history[-1][1]["safety/multiplier"] == pytest.approx(straight.agent.multiplier)
    path = tmp_path / "safe.pt"
    trainer(60, path).train()
    resumed = trainer(120, path).load(path).train()
    assert resumed.agent.multiplier == straight.agent.multiplier
    torch.testing.assert_close(
        next(resumed.agent.critics["cost"].parameters()),
        next(straight.agent.critics["cost"].parameters()),
        rtol=0,
        atol=0,
    )
