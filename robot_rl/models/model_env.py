"""Imagined rollouts through a learned ensemble, scored with a task's reward and termination.

A planner hands ``ModelEnv.evaluate`` C candidate action sequences (C, H, A); each is rolled
out from the current observation by P particles, C·P rows in all, and scored by the mean
over its particles of the summed task reward, less ``cost_weight`` times the task's safety
cost when one is given (steps after a predicted termination count as 0). How a particle picks its ensemble member is the ``Propagation`` mode (Chua et al.,
2018):

- ``TS1``: a fresh random elite for every particle at every step;
- ``TS_INF``: one random elite per particle for the whole rollout;
- ``EXPECTATION``: every elite on every particle, their means averaged;
- ``RANDOM_MODEL``: one random elite per step for the whole batch.

In the trajectory-sampling modes the C·P rows are put in a random order and cut into one
equal block per elite, so every member runs one batched matmul per layer on exactly its own
rows: the work is C·P forward passes, none wasted. TS1 draws a new order every step (a
particle's member at each step is uniform over the elites); TS∞ draws it once. With
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
        if past.ndim == 3:  # one history per candidate, plus the padding row
            past = torch.cat([past, past.new_zeros(1, h, A)])

        elites = model.elite_index
        K = len(elites)
        grouped = mode in (Propagation.TS1, Propagation.TS_INF)
        n_rows = C * P
        block = math.ceil(n_rows / K) if grouped else n_rows
        rows = block * K if grouped else n_rows  # padded to equal blocks; extra rows are ignored
        forward = model.grouped_forward(elites, block)

        cand = torch.div(torch.arange(rows), P, rounding_mode="floor").clamp_(max=C)
        s = start.expand(rows, o).clone() if start.ndim == 1 else start[cand.clamp(max=C - 1)]
        padded = torch.cat([actions, actions.new_zeros(1, H, A)])  # row C: padding
        # Action inputs with their history: window t of ``inputs`` is [a_{t-h}, ..., a_t].
        inputs = torch.cat([past.expand(C + 1, h, A), padded], dim=1) if h else padded
        ret = torch.zeros(rows, dtype=dtype)
        alive = torch.ones(rows, dtype=torch.bool) if self.termination_fn is not None else None
        row_id = torch.arange(rows)
        trajectories = None
        if record:
            trajectories = torch.empty(rows, H + 1, o, dtype=dtype)
            trajectories[:, 0] = s
        if mode is Propagation.TS_INF:
            perm = torch.randperm(rows, generator=g)
            s, cand, row_id = s[perm], cand[perm], row_id[perm]

        for t in range(H):
            if mode is Propagation.TS1:
                perm = torch.randperm(rows, generator=g)
                s, cand, ret, row_id = s[perm], cand[perm], ret[perm], row_id[perm]
                if alive is not None:
                    alive = alive[perm]
            if h:
                a_in = inputs[:, t : t + h + 1].reshape(C + 1, -1).index_select(0, cand)
                a = a_in[:, h * A :]
            else:
                a_in = a = padded[:, t].index_select(0, cand)
            if grouped:
                mean, std = forward(s.view(K, block, o), a_in.view(K, block, -1))
                mean, std = mean.reshape(rows, -1), std.reshape(rows, -1)
            elif mode is Propagation.EXPECTATION:
                mean, std = forward(s.expand(K, -1, -1), a_in.expand(K, -1, -1))
                mean, std = mean.mean(0), std.square().mean(0).sqrt()
            else:
                k = int(torch.randint(K, (1,), generator=g))
                mean, std = forward(s[None], a_in[None], group=k)
                mean, std = mean[0], std[0]
            next_s = s + mean[:, :o]
            if self.sample:
                next_s += std[:, :o] * torch.randn(rows, o, generator=g, dtype=dtype)
            r = self.reward_fn(s, a, next_s) if self.reward_fn else mean[:, o].clone()
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
                trajectories[row_id, t + 1] = s

        returns = torch.zeros(C + 1, dtype=dtype).index_add_(0, cand, ret)[:C] / P
        returns = torch.where(torch.isfinite(returns), returns, torch.full_like(returns, -math.inf))
        if trajectories is not None:
            trajectories = trajectories[:n_rows].view(C, P, H + 1, o)
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
