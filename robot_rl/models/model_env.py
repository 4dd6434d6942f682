"""Imagined rollouts through a learned ensemble, scored with a task's reward and termination.

A planner hands ``ModelEnv.evaluate`` C candidate action sequences (C, H, A); each is rolled
out from the current observation by P particles and scored by the mean over its particles of
the summed task reward, less ``cost_weight`` times the task's safety cost when one is given
(steps after a predicted termination count as 0). How a particle picks its ensemble member is
the ``Propagation`` mode (Chua et al., 2018):

- ``TS1``: a fresh random elite for every particle at every step;
- ``TS_INF``: one random elite per particle for the whole rollout;
- ``EXPECTATION``: every elite on every particle, their means averaged;
- ``RANDOM_MODEL``: one random elite per step for the whole batch.

Candidates are compared on common random numbers: particle p of every candidate uses the
same member and the same noise draw at each step, so the differences between candidates'
scores come from their actions, not from luck (the optimiser ranks candidates; independent
draws would make it partly rank noise). The P · C rows are laid out particle-major, one
block of C rows per particle slot; in the trajectory-sampling modes the slots are padded up
to a multiple of the number of elites (padding slots are simulated and ignored) and cut into
one equal group per elite, so each member runs one batched matmul per layer on exactly its
own rows. TS1 reshuffles the slots among the members every step (a particle's member at
each step is uniform over the elites, a block gather of the rows); TS∞ shuffles once. With
``sample`` the next state is drawn from the member's Gaussian (aleatoric noise), else it is
the member's mean.

A model with an action history (``GaussianEnsemble.action_history`` = h) also sees the h
actions before each step: the candidate's own earlier actions, and before the first step the
``past_actions`` the controller actually applied.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import numpy as np
import torch

from robot_rl.models.ensemble import GaussianEnsemble
from robot_rl.types import Array, RewardFn

TerminationFn = Callable[[Array, Array, Array], Array]


class Propagation(enum.Enum):
    """How particles choose ensemble members (see the module docstring)."""

    TS1 = "ts1"
    TS_INF = "ts_inf"
    EXPECTATION = "expectation"
    RANDOM_MODEL = "random_model"


class ModelEnv:
    """Batched imagined rollouts of (candidates × particles × horizon) on a ``GaussianEnsemble``.

    Also a ``Dynamics``: ``step(obs, action)`` advances a batch by one imagined step.

    Args:
        model: the ensemble (its current elites are used).
        reward_fn: batched task reward (..., obs), (..., act), (..., obs) -> (...); None to use
            the model's own reward prediction (the model must predict reward).
        termination_fn: batched termination, True where the next state is terminal; None for
            never.
        cost_fn: batched safety cost, subtracted from the reward with ``cost_weight``.
        cost_weight: weight of the safety cost in the planning objective (0: ignored).
        particles: rollouts per candidate, P.
        propagation: how particles choose members.
        sample: draw next states from the predicted Gaussians (else take the means).
        generator: source of member choices and noise.
    """

    def __init__(
        self,
        model: GaussianEnsemble,
        reward_fn: RewardFn | None,
        termination_fn: TerminationFn | None = None,
        cost_fn: RewardFn | None = None,
        cost_weight: float = 0.0,
        particles: int = 20,
        propagation: Propagation = Propagation.TS1,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if particles < 1:
            raise ValueError(f"particles must be >= 1, got {particles}")
        if reward_fn is None and not model.predict_reward:
            raise ValueError("reward_fn is None, but the model does not predict the reward")
        if cost_weight < 0 or (cost_weight > 0 and cost_fn is None):
            raise ValueError("cost_weight must be >= 0, and a positive weight needs a cost_fn")
        self.model = model
        self.reward_fn, self.termination_fn = reward_fn, termination_fn
        self.cost_fn, self.cost_weight = cost_fn, float(cost_weight)
        self.particles = int(particles)
        self.propagation = Propagation(propagation)
        self.sample = bool(sample)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    # -- planning ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, obs: Array, actions: torch.Tensor, past_actions: Array | None = None
    ) -> torch.Tensor:
        """Mean return over particles of each candidate action sequence.

        Args:
            obs: (obs_dim,) start observation, or (C, obs_dim) one per candidate.
            actions: (C, H, act_dim) candidate action sequences.
            past_actions: (h, act_dim) the actions applied before ``obs``, oldest first, for
                a model with an action history h, or (C, h, act_dim) one history per
                candidate (None: zeros, an episode's start).

        Returns:
            (C,) returns; -inf for a candidate whose imagined rollout went non-finite.
        """
        returns, _ = self._run(obs, actions, past_actions, record=False)
        return returns

    @torch.no_grad()
    def rollout(
        self, obs: Array, actions: torch.Tensor, past_actions: Array | None = None
    ) -> torch.Tensor:
        """Imagined observations of every particle: (C, P, H + 1, obs_dim), start included."""
        _, trajectories = self._run(obs, actions, past_actions, record=True)
        assert trajectories is not None
        return trajectories

    def _run(
        self, obs: Array, actions: torch.Tensor, past_actions: Array | None, record: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        model, g, mode = self.model, self.generator, self.propagation
        dtype = model.dtype
        actions = torch.as_tensor(actions, dtype=dtype)
        if actions.ndim != 3 or actions.shape[2] != model.act_dim:
            raise ValueError(
                f"actions must have shape (C, H, {model.act_dim}), got {tuple(actions.shape)}"
            )
        C, H, _ = actions.shape
        P, o = self.particles, model.obs_dim
        start = torch.as_tensor(np.asarray(obs) if not torch.is_tensor(obs) else obs, dtype=dtype)
        if start.shape not in ((o,), (C, o)):
            raise ValueError(f"obs must have shape ({o},) or ({C}, {o}), got {tuple(start.shape)}")
        h, A = model.action_history, model.act_dim
        if past_actions is None:
            past = torch.zeros(h, A, dtype=dtype)
        else:
            past = torch.as_tensor(np.asarray(past_actions), dtype=dtype)
            if past.shape not in ((h, A), (C, h, A)):
                raise ValueError(
                    f"past_actions must have shape ({h}, {A}) or ({C}, {h}, {A}), got {tuple(past.shape)}"
                )

        inputs = torch.cat([past.expand(C, h, A), actions], dim=1) if h else actions

        # Particle-major rows: block p (C rows) is particle slot p of every candidate. A block
        # shares its member and its noise, so candidates are compared on common random numbers.
        elites = model.elite_index
        K = len(elites)
        grouped = mode in (Propagation.TS1, Propagation.TS_INF)
        slots = math.ceil(P / K) * K if grouped else P  # padding slots are simulated, ignored
        per_member = slots // K if grouped else slots
        forward = model.grouped_forward(elites, per_member * C)

        s = start.expand(slots, C, o).clone()
        ret = torch.zeros(slots, C, dtype=dtype)
        alive = torch.ones(slots, C, dtype=torch.bool) if self.termination_fn else None
        slot = torch.arange(slots)  # which particle slot each block holds
        trajectories = None
        if record:
            trajectories = torch.empty(slots, C, H + 1, o, dtype=dtype)
            trajectories[:, :, 0] = s

        def reorder() -> None:
            nonlocal s, ret, alive, slot
            perm = torch.randperm(slots, generator=g)
            s, ret, slot = s[perm], ret[perm], slot[perm]
            if alive is not None:
                alive = alive[perm]

        if mode is Propagation.TS_INF:
            reorder()  # a random member per particle, kept for the whole rollout
        for t in range(H):
            if mode is Propagation.TS1:
                reorder()  # a fresh random member per particle
            a_in = inputs[:, t : t + h + 1].reshape(C, -1)  # [a_{t-h}, ..., a_t], (C, w)
            a = actions[:, t]
            if grouped:
                mean, std = forward(s.view(K, per_member * C, o), a_in.repeat(per_member, 1))
            elif mode is Propagation.EXPECTATION:
                mean, std = forward(s.view(1, -1, o).expand(K, -1, -1), a_in.repeat(slots, 1))
                mean, std = mean.mean(0, keepdim=True), std.square().mean(0, keepdim=True).sqrt()
            else:
                k = int(torch.randint(K, (1,), generator=g))
                mean, std = forward(s.view(1, -1, o), a_in.repeat(slots, 1), group=k)
            mean, std = mean.reshape(slots, C, -1), std.reshape(slots, C, -1)
            next_s = s + mean[..., :o]
            if self.sample:
                noise = torch.randn(slots, 1, o, generator=g, dtype=dtype)
                next_s += std[..., :o] * noise
            r = self.reward_fn(s, a, next_s) if self.reward_fn else mean[..., o].clone()
            if self.cost_weight:
                assert self.cost_fn is not None
                r = r - self.cost_weight * self.cost_fn(s, a, next_s)
            if alive is not None:
                assert self.termination_fn is not None
                r = torch.where(alive, r, torch.zeros_like(r))
                alive = alive & ~self.termination_fn(s, a, next_s)
            ret += r
            s = next_s
            if trajectories is not None:
                trajectories[slot, :, t + 1] = s

        real = (slot < P)[:, None]
        returns = torch.where(real, ret, torch.zeros_like(ret)).sum(0) / P
        returns = torch.where(torch.isfinite(returns), returns, torch.full_like(returns, -math.inf))
        if trajectories is not None:
            trajectories = trajectories[:P].transpose(0, 1)
        return returns, trajectories

    # -- the Dynamics protocol ----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, state: Array, action: Array) -> Array:
        """One imagined step of a batch: (B, obs_dim), (B, action_input_dim) -> (B, obs_dim).

        The action input carries the model's action history, if any. Each row is one particle: in TS1 and TS∞ each row draws a random elite, in
        EXPECTATION the elites' means are averaged, in RANDOM_MODEL one elite serves all
        rows. NumPy in, NumPy out.
        """
        is_numpy = not torch.is_tensor(state)
        model, g, dtype = self.model, self.generator, self.model.dtype
        obs = torch.as_tensor(np.asarray(state) if is_numpy else state, dtype=dtype)
        act = torch.as_tensor(np.asarray(action) if is_numpy else action, dtype=dtype)
        width = model.action_input_dim
        if obs.ndim != 2 or obs.shape[1] != model.obs_dim or act.shape != (len(obs), width):
            raise ValueError(
                f"step expects (B, {model.obs_dim}) states and (B, {width}) actions, "
                f"got {tuple(obs.shape)} and {tuple(act.shape)}"
            )
        pred = model.predict(obs, act, model.elite_index)
        mean, var = pred.mean[..., : model.obs_dim], pred.var[..., : model.obs_dim]
        K, B = mean.shape[:2]
        if self.propagation in (Propagation.TS1, Propagation.TS_INF):
            pick = torch.randint(K, (B,), generator=g)
            mean, var = mean[pick, torch.arange(B)], var[pick, torch.arange(B)]
        elif self.propagation is Propagation.EXPECTATION:
            mean, var = mean.mean(0), var.mean(0)
        else:
            k = int(torch.randint(K, (1,), generator=g))
            mean, var = mean[k], var[k]
        next_obs = obs + mean
        if self.sample:
            next_obs = next_obs + var.sqrt() * torch.randn(
                B, model.obs_dim, generator=g, dtype=dtype
            )
        return next_obs.numpy() if is_numpy else next_obs
