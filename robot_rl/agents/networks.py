"""The networks of the SAC family: a squashed-Gaussian actor and Q-function ensembles.

The actor's ``forward`` is the deterministic policy, a plain ``nn.Module`` mapping
(B, obs_dim) -> (B, act_dim) in [-1, 1], so it can be scripted or exported as it is; sampling
with log-probabilities is a separate method. Critics are ensembles of E Q-functions evaluated
as one batched network (``robot_rl.nn.ensemble_mlp``): SAC's twin critics cost one
``baddbmm`` per layer, not two MLP calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.functional import softplus

from robot_rl.nn import ensemble_mlp, mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of the actor's log standard deviation (before squashing), as in SB3."""

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


class SquashedGaussianActor(nn.Module):
    """π(a|s) = tanh(N(μ(s), σ(s)²)), one MLP giving μ and log σ.

    ``forward(obs)`` is the deterministic action tanh(μ(s)), (B, obs_dim) -> (B, act_dim).

    Args:
        obs_dim: observation length.
        act_dim: action length (actions in [-1, 1]).
        hidden: hidden layer widths.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.net = mlp(obs_dim, 2 * act_dim, hidden, nn.ReLU)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.net(obs)[..., : self.act_dim]
        return torch.tanh(mean)

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample and its log-probability.

        Args:
            obs: (B, obs_dim)
            generator: source of the Gaussian noise.

        Returns:
            action (B, act_dim) in (-1, 1), log_prob (B,) of the squashed distribution.
        """
        shape = (*obs.shape[:-1], self.act_dim)
        return self.reparameterise(obs, torch.randn(shape, generator=generator))

    def reparameterise(
        self, obs: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The action tanh(μ(s) + σ(s) ε) for given standard-normal noise ε, and its log-prob.

        Args:
            obs: (B, obs_dim)
            noise: (B, act_dim) ε ~ N(0, I).

        Returns:
            action (B, act_dim) in (-1, 1), log_prob (B,) of the squashed distribution.
        """
        mean, log_std = self.net(obs).split(self.act_dim, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        pre_tanh = mean + log_std.exp() * noise
        # log N(u; μ, σ) - Σ log(1 - tanh(u)²), the latter as 2 (log 2 - u - softplus(-2u)).
        log_prob = (
            -0.5 * noise.square()
            - log_std
            - _HALF_LOG_2PI
            - 2.0 * (_LOG_2 - pre_tanh - softplus(-2.0 * pre_tanh))
        ).sum(-1)
        return torch.tanh(pre_tanh), log_prob


class EnsembleCritic(nn.Module):
    """E Q-functions Q_e(s, a) evaluated together: (B, obs), (B, act) -> (E, B).

    Args:
        obs_dim: observation length.
        act_dim: action length.
        hidden: hidden layer widths of every member.
        members: E, the number of Q-functions (2 for SAC's twin critics).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], members: int = 2) -> None:
        super().__init__()
        self.members = members
        self.net = ensemble_mlp(members, obs_dim + act_dim, 1, hidden, nn.ReLU)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat((obs, action), dim=-1).expand(self.members, -1, -1)
        return self.net(x).squeeze(-1)


class ActorPolicy:
    """The deterministic actor as a ``robot_rl.types.Policy`` (one observation at a time).

    Args:
        actor: a module mapping (B, obs_dim) -> (B, act_dim), e.g. ``SquashedGaussianActor``.
    """

    def __init__(self, actor: nn.Module) -> None:
        self.actor = actor

    def reset(self) -> None:
        """The actor is memoryless."""

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        return self.actor(x)[0].numpy().astype(np.float64)
