from __future__ import annotations

import torch
from torch import distributions

from robot_rl.agents import EnsembleCritic, SquashedGaussianActor
from robot_rl.agents.networks import ActorPolicy
from robot_rl.types import Policy


def test_log_prob_matches_torch_tanh_transformed_normal():
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 2, (16,))
    obs = torch.randn(64, 3)
    g = torch.Generator().manual_seed(1)
    action, log_prob = actor.sample(obs, g)
    mean, log_std = actor.net(obs).split(2, -1)
    dist = distributions.TransformedDistribution(
        distributions.Normal(mean, log_std.exp()), [distributions.TanhTransform(cache_size=1)]
    )
    # Recompute the same pre-tanh sample to avoid atanh's round-off near ±1.
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    pre = mean + log_std.exp() * noise
    expected = distributions.Normal(mean, log_std.exp()).log_prob(pre).sum(-1) - torch.log1p(
        -(torch.tanh(pre) ** 2)
    ).sum(-1)
    torch.testing.assert_close(log_prob, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(action, torch.tanh(pre))
    assert dist.support.check(action.clamp(-0.999999, 0.999999)).all()


def test_deterministic_actor_is_a_plain_bounded_module():
    actor = SquashedGaussianActor(4, 3, (8, 8))
    out = actor(100 * torch.randn(10, 4))
    assert out.shape == (10, 3)
    assert out.abs().max() <= 1.0
    x = torch.randn(5, 4)
    exported = torch.export.export(actor, (x,))
    torch.testing.assert_close(exported.module()(x), actor(x))


def test_ensemble_members_are_independent_q_functions():
    critic = EnsembleCritic(3, 2, (16, 16), members=3)
    obs, action = torch.randn(7, 3), torch.randn(7, 2)
    q = critic(obs, action)
    assert q.shape == (3, 7)
    # Member e computed alone with its own weights gives row e.
    x = torch.cat((obs, action), -1)
    for e in range(3):
        h = x
        layers = [m for m in critic.net if hasattr(m, "weight")]
        for k, layer in enumerate(layers):
            h = h @ layer.weight[e] + layer.bias[e]
            if k < len(layers) - 1:
                h = torch.relu(h)
        torch.testing.assert_close(q[e], h.squeeze(-1))
    assert not torch.allclose(q[0], q[1])


def test_actor_policy_satisfies_the_policy_contract():
    policy = ActorPolicy(SquashedGaussianActor(3, 1, (8,)))
    assert isinstance(policy, Policy)
    policy.reset()
    action = policy.act(torch.randn(3).numpy())
    assert action.shape == (1,)
    assert abs(action[0]) <= 1.0
