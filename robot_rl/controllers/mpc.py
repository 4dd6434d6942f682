"""A receding-horizon controller: plan H steps ahead, apply the first action, repeat.

``MPC`` satisfies the ``Policy`` contract (``reset`` / ``act``), so the envs evaluate it and
the hardware layer deploys it like any policy. What it plans against is a
``TrajectoryEvaluator``, anything that scores candidate action sequences from an
observation:

- ``robot_rl.models.ModelEnv``: imagined rollouts on a learned ensemble (PETS);
- ``robot_rl.models.SimulatorDynamics``: the true simulator, an oracle baseline;
- ``DynamicsEvaluator`` here: any batched ``Dynamics`` on observations (an analytic model,
  a deterministic learned model) with a task's reward.

Between calls the plan is shifted one step (padded with the box centre) and used as the next
call's initial sequence: the warm start. With ``action_history`` h > 0 the controller also
passes the h actions it applied last (oldest first) as ``past_actions`` to the evaluator, for
models of envs whose actions act with a delay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from robot_rl.controllers.optimizers import Optimizer, Solution
from robot_rl.types import Array, Dynamics, RewardFn


@runtime_checkable
class TrajectoryEvaluator(Protocol):
    """Scores candidate action sequences from an observation.

    ``evaluate(obs, actions)``: obs (obs_dim,) NumPy, actions (C, H, A) torch ->
    (C,) torch values to maximise (the expected return), -inf or NaN for failures. An
    evaluator used with ``MPC(action_history=h > 0)`` also takes ``past_actions`` (h, A).
    """

    def evaluate(self, obs: Array, actions: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class PlanStats:
    """What the last ``act`` did.

    Attributes:
        seconds: wall time of the planning call, s.
        value: predicted value of the best candidate (-inf when none was finite).
        evaluations: candidate sequences scored.
        fallback: the plan was not finite and the box centre was applied instead.
    """

    seconds: float
    value: float
    evaluations: int
    fallback: bool


class MPC:
    """Receding-horizon control with a sampling-based optimiser.

    Args:
        evaluator: what candidate sequences are scored with.
        optimizer: the optimiser (its horizon and bounds are the plan's).
        replan_every: plan every this many steps, applying the plan's next actions in
            between (1: replan every step).
        action_history: applied actions passed to the evaluator as ``past_actions``.
    """

    def __init__(
        self,
        evaluator: TrajectoryEvaluator,
        optimizer: Optimizer,
        replan_every: int = 1,
        action_history: int = 0,
    ) -> None:
        if not 1 <= replan_every <= optimizer.horizon:
            raise ValueError(f"replan_every must be in [1, horizon={optimizer.horizon}]")
        if action_history < 0:
            raise ValueError(f"action_history must be >= 0, got {action_history}")
        self.evaluator, self.optimizer = evaluator, optimizer
        self.replan_every, self.action_history = replan_every, action_history
        self._applied = torch.zeros(action_history, optimizer.action_dim)
        self.last: PlanStats | None = None
        self._plan = self._centre_plan()
        self._since_plan = replan_every

    def _centre_plan(self) -> torch.Tensor:
        opt = self.optimizer
        return opt.centre.expand(opt.horizon, -1).clone()

    def reset(self) -> None:
        """Start a new episode: forget the warm start."""
        self.optimizer.reset()
        self._plan = self._centre_plan()
        self._since_plan = self.replan_every
        self._applied = torch.zeros(self.action_history, self.optimizer.action_dim)
        self.last = None

    @property
    def plan(self) -> torch.Tensor:
        """(H, A) the current plan (after the shift, the warm start of the next call)."""
        return self._plan.clone()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Plan from ``obs`` (obs_dim,) and return the first action (A,), float32, finite."""
        obs = np.asarray(obs, dtype=np.float32)
        if not np.isfinite(obs).all():
            raise ValueError(f"observation must be finite, got {obs.tolist()}")
        if self._since_plan >= self.replan_every:
            start = time.perf_counter()
            history = {"past_actions": self._applied.clone()} if self.action_history else {}

            def objective(actions: torch.Tensor) -> torch.Tensor:
                return self.evaluator.evaluate(obs, actions, **history)

            with torch.inference_mode():
                solution = self.optimizer.optimize(objective, self._plan)
            self._plan, fallback = self._checked(solution)
            self._since_plan = 0
            self.last = PlanStats(
                time.perf_counter() - start, solution.value, solution.evaluations, fallback
            )
        action = self._plan[0].numpy().astype(np.float32)
        if self.action_history:
            self._applied = torch.cat([self._applied[1:], self._plan[:1]])
        self._shift()
        self._since_plan += 1
        return action

    def _checked(self, solution: Solution) -> tuple[torch.Tensor, bool]:
        plan = torch.as_tensor(solution.actions, dtype=torch.float32)
        opt = self.optimizer
        if plan.shape != (opt.horizon, opt.action_dim) or not torch.isfinite(plan).all():
            return self._centre_plan(), True
        return torch.maximum(torch.minimum(plan, opt.upper), opt.lower), False

    def _shift(self) -> None:
        self._plan = torch.cat([self._plan[1:], self.optimizer.centre[None]])
        self.optimizer.advance(1)


class DynamicsEvaluator:
    """Scores action sequences by rolling out a deterministic ``Dynamics`` on observations.

    Args:
        dynamics: batched ``step(obs (B, obs_dim), action (B, A)) -> (B, obs_dim)`` on torch.
        reward_fn: batched task reward.
        termination_fn: batched termination (rewards after it count as 0), or None.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        reward_fn: RewardFn,
        termination_fn: Callable[[Array, Array, Array], Array] | None = None,
    ) -> None:
        self.dynamics, self.reward_fn, self.termination_fn = dynamics, reward_fn, termination_fn

    def evaluate(self, obs: Array, actions: torch.Tensor) -> torch.Tensor:
        C, H, _ = actions.shape
        s = torch.as_tensor(np.asarray(obs), dtype=actions.dtype).expand(C, -1)
        total = torch.zeros(C, dtype=actions.dtype)
        alive = torch.ones(C, dtype=torch.bool)
        for t in range(H):
            a = actions[:, t]
            nxt = torch.as_tensor(self.dynamics.step(s, a), dtype=actions.dtype)
            r = self.reward_fn(s, a, nxt)
            total += torch.where(alive, r, torch.zeros_like(r))
            if self.termination_fn is not None:
                alive = alive & ~self.termination_fn(s, a, nxt)
            s = nxt
        return torch.where(torch.isfinite(total), total, torch.full_like(total, -math.inf))
