"""Safe SAC: SAC on a constrained MDP through a Lagrange multiplier.

Maximise E[Σ γ^t r_t] subject to E[Σ_t c_t] ≤ ``cost_limit`` per episode, with the env's
safety ``cost`` signal (the cart leaving its track band, the quadruped tilting past its
bounds). A cost critic ensemble Q_c learns the discounted cost; the actor minimises
α log π - Q_r + λ Q_c; λ ≥ 0 is the Lagrange multiplier, moved by the measured episode costs
of training:

- ``LagrangeUpdate.GRADIENT``: projected dual gradient ascent, λ <- max(0, λ + η (J_c - limit));
  the projection keeps λ non-negative and lets it reach exactly 0 (a softplus or log
  parameterisation starting near 0 barely moves: its gradient vanishes there).
- ``LagrangeUpdate.PID``: the PID Lagrangian of Stooke, Achiam and Abbeel (2020),
  λ = max(0, K_p e + I + K_d max(0, ΔJ_c)) with e = J_c - limit and I = max(0, I + K_i e),
  whose proportional and derivative terms damp the oscillation of the pure integral
  (gradient) update.

Both integrate per full-length episode of experience: an episode that ends early (a fall, a
safety stop) moves λ by its share of the time limit, so λ integrates at the same rate per env
step however long the episodes are (per episode, it raced to ~75 within 30k steps of a
quadruped's safety-stopped episodes, a few dozen steps each).

Either update can bound the violation it acts on, e = clip(J_c - limit, ±``error_clip``), so
λ moves by at most a fixed step per full-length episode. Early in training the policy leaves
the safe set in most steps; an unbounded update then drives λ so high, before the agent has
learnt how to earn reward at all, that it settles on a timid policy it never leaves (on the
cart-pole with a narrow band: a partial swing-up, return ~43 of ~80). With a bounded step, λ
grows while violations persist and falls as fast once they stop; there the agent finds the
full swing-up.

The cost critics combine by their maximum (``CostEstimate.MAX``), as SAC's reward critics
combine by their minimum: the actor minimises Q_c, so with the members' mean it finds the
actions whose cost they underestimate. On the cart-pole that was the band's edge: the policy
parked the cart there, and its evaluation cost swung between 0 and ~70 from one evaluation to
the next with the multiplier well above zero. With the maximum, the evaluation cost over the
last 30 % of training fell from 29 to 8.5 (limit 5; 3 seeds, same return); the policy examined
parks 0.3 m inside the band, and what cost remains is the swing-up's excursion
(``benchmarks/safe_sac.py``).

Safety early termination (ending an episode, as terminal, at its first unsafe step) is a
setting of the loop, ``TrainConfig.safety_termination``. An episode that ends on an unsafe
step, by a safety stop or by the env's own termination (a fall), leaves the robot unsafe: the
cost critic's target there is that step's cost repeated forever, c / (1 - γ_c), and the
trainer charges the episode cost for the steps left. Stopping or falling early is then never
cheaper, for the constraint, than staying safe.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from robot_rl.agents.networks import EnsembleCritic
from robot_rl.agents.sac import SAC, SACConfig
from robot_rl.checkpoint import CheckpointError
from robot_rl.types import Batch


class CostEstimate(enum.Enum):
    """How the cost critic ensemble's members combine into one estimate of Q_c."""

    MAX = "max"
    """The largest member's: pessimistic, the cost counterpart of SAC's minimum over its reward
    critics. The actor minimises Q_c, so it seeks out actions whose cost the critics
    underestimate; the maximum, in the critic's target and in the actor's penalty, counters
    that bias."""
    MEAN = "mean"
    """The members' mean: unbiased for a fixed policy, but exploited by the actor."""


class LagrangeUpdate(enum.Enum):
    """How the Lagrange multiplier follows the measured episode cost."""

    GRADIENT = "gradient"
    """Projected dual gradient ascent on λ, one step per finished episode."""
    PID = "pid"
    """PID control of λ on the constraint violation (Stooke et al., 2020)."""


@dataclass(frozen=True)
class SafeSACConfig(SACConfig):
    """Hyperparameters of safe SAC (SAC's, plus the constraint's)."""

    cost_limit: float = 10.0
    """Allowed expected cost per episode (the env's cost summed over an episode)."""
    lagrange: LagrangeUpdate = LagrangeUpdate.PID
    """How the multiplier is updated."""
    multiplier_init: float = 0.0
    """Initial λ."""
    multiplier_lr: float = 0.005
    """Step size η of the dual update, λ per unit of episode cost over the limit and per
    full-length episode of experience (GRADIENT)."""
    pid_kp: float = 0.02
    """Proportional gain on (episode cost - limit) (PID)."""
    pid_ki: float = 0.0015
    """Integral gain, per full-length episode of experience (PID)."""
    pid_kd: float = 0.0
    """Derivative gain on rises of the episode cost (PID)."""
    error_clip: float | None = 10.0
    """Bound on |episode cost - limit| that one multiplier update acts on; None: unbounded.
    About one to a few cost limits: ``benchmarks/safe_sac.py`` measured these gains with the
    clip at one limit on the cart-pole and five on the quadruped, whose early episodes cost
    forty limits; unbounded, or with 2.5x the gains and a derivative term, λ trapped the
    cart-pole in a partial swing-up and sent the quadruped's to ~80."""
    cost_gamma: float = 0.99
    """Discount of the cost critic."""
    cost_critics: int = 2
    """Q-functions in the cost critic ensemble."""
    cost_estimate: CostEstimate = CostEstimate.MAX
    """How their estimates combine."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.cost_limit) or self.cost_limit < 0.0:
            raise ValueError(f"cost_limit must be a finite number >= 0, got {self.cost_limit}")
        if self.multiplier_init < 0.0 or self.multiplier_lr <= 0.0:
            raise ValueError("multiplier_init must be >= 0 and multiplier_lr > 0")
        if min(self.pid_kp, self.pid_ki, self.pid_kd) < 0.0:
            raise ValueError("PID gains must be >= 0")
        if self.error_clip is not None and not self.error_clip > 0.0:
            raise ValueError(f"error_clip must be > 0 or None, got {self.error_clip}")
        if not 0.0 <= self.cost_gamma < 1.0:
            raise ValueError(f"cost_gamma must be in [0, 1), got {self.cost_gamma}")
        if self.cost_critics < 1:
            raise ValueError("cost_critics must be >= 1")


class SafeSAC(SAC):
    """SAC with a cost critic and a Lagrange multiplier on the expected episode cost.

    Args:
        obs_dim: observation length.
        act_dim: action length.
        config: hyperparameters, including ``cost_limit``.
        seed: seeds the network initialisation and the policy noise.
    """

    algorithm: ClassVar[str] = "safe-sac"
    config: SafeSACConfig

    def __init__(self, obs_dim: int, act_dim: int, config: SafeSACConfig, seed: int = 0) -> None:
        if not isinstance(config, SafeSACConfig):
            raise TypeError("SafeSAC needs a SafeSACConfig")
        super().__init__(obs_dim, act_dim, config, seed)
        # a (float64) tensor, so a compiled update reads its value instead of baking it in
        self._multiplier = torch.tensor(config.multiplier_init, dtype=torch.float64)
        self._pid_integral = config.multiplier_init
        self._last_cost: float | None = None
        self.episode_cost = math.nan

    def build_critics(self) -> dict[str, nn.Module]:
        c = self.config
        critics = super().build_critics()
        critics["cost"] = EnsembleCritic(self.obs_dim, self.act_dim, c.hidden, c.cost_critics)
        return critics

    @property
    def multiplier(self) -> float:
        """λ ≥ 0."""
        return float(self._multiplier)

    def cost_value(
        self, critic: nn.Module, obs: torch.Tensor, action: torch.Tensor
    ) -> torch.Tensor:
        """The ensemble's combined discounted-cost estimate, (B, obs), (B, act) -> (B,)."""
        members = critic(obs, action)
        if self.config.cost_estimate is CostEstimate.MAX:
            return members.amax(0)
        return members.mean(0)

    # -- losses ------------------------------------------------------------------------------
    def critic_loss(
        self,
        batch: Batch,
        next_action: torch.Tensor,
        next_log_prob: torch.Tensor,
        alpha: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        terms = super().critic_loss(batch, next_action, next_log_prob, alpha)
        target = self.cost_target(batch, next_action)
        qc = self.critics["cost"](batch.obs, batch.action)
        terms["cost_critic"] = 0.5 * (qc - target).square().mean(-1).sum()
        return terms

    @torch.no_grad()
    def cost_target(self, batch: Batch, next_action: torch.Tensor) -> torch.Tensor:
        """The cost critics' Bellman target, (B,).

        c + γ_c Q_c(s', a') from the target critics; at a terminal transition with a positive
        cost the robot is left in an unsafe state that goes on costing c every step,
        c / (1 - γ_c) (the trainer charges the episode cost the same way).

        Args:
            next_action: (B, act_dim) a' ~ π(s').
        """
        gamma = self.config.cost_gamma
        next_qc = self.cost_value(self.targets["cost"], batch.next_obs, next_action)
        bootstrap = batch.cost + gamma * (1.0 - batch.terminated) * next_qc
        unsafe_end = (batch.terminated > 0.0) & (batch.cost > 0.0)
        return torch.where(unsafe_end, batch.cost / (1.0 - gamma), bootstrap)

    def actor_loss(
        self, batch: Batch, action: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        terms = super().actor_loss(batch, action, log_prob, alpha)
        qc = self.cost_value(self.critics["cost"], batch.obs, action)
        terms["cost_penalty"] = self._multiplier.to(qc.dtype) * qc.mean()
        return terms

    # -- the multiplier ------------------------------------------------------------------------
    def on_episodes(
        self,
        returns: Sequence[float],
        costs: Sequence[float],
        shares: Sequence[float] | None = None,
    ) -> None:
        """Move λ by the mean cost of the episodes that just ended.

        The integrating step (the gradient update's, the PID's integral) is scaled by the
        experience the episodes hold, their ``shares`` of a full-length episode summed: λ then
        integrates at the same rate per env step whether episodes run to the time limit or end
        early (a fall, a safety stop), instead of racing ahead when they are short.
        """
        if not len(costs):
            return
        cost = float(np.mean(costs))
        experience = float(len(costs) if shares is None else np.sum(shares))
        self.episode_cost = cost
        c = self.config
        error = cost - c.cost_limit
        if c.error_clip is not None:
            error = min(max(error, -c.error_clip), c.error_clip)
        if c.lagrange is LagrangeUpdate.GRADIENT:
            self._multiplier.fill_(max(0.0, self.multiplier + c.multiplier_lr * error * experience))
        else:
            self._pid_integral = max(0.0, self._pid_integral + c.pid_ki * error * experience)
            rise = 0.0 if self._last_cost is None else max(0.0, cost - self._last_cost)
            self._multiplier.fill_(
                max(0.0, c.pid_kp * error + self._pid_integral + c.pid_kd * rise)
            )
        self._last_cost = cost

    def metrics(self) -> dict[str, float]:
        """The constraint's state for the logger."""
        return {
            "safety/multiplier": self.multiplier,
            "safety/cost_limit": self.config.cost_limit,
            "safety/episode_cost": self.episode_cost,
        }

    # -- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, metadata = super().state_dict()
        metadata["multiplier"] = {
            "multiplier": self.multiplier,
            "pid_integral": self._pid_integral,
            "last_cost": self._last_cost,
            "episode_cost": None if math.isnan(self.episode_cost) else self.episode_cost,
        }
        return tensors, metadata

    def load_state_dict(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        super().load_state_dict(tensors, metadata)
        try:
            state = metadata["multiplier"]
            self._multiplier.fill_(float(state["multiplier"]))
            self._pid_integral = float(state["pid_integral"])
            self._last_cost = state["last_cost"]
            cost = state["episode_cost"]
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"safe SAC state is missing {err}") from None
        self.episode_cost = math.nan if cost is None else float(cost)
