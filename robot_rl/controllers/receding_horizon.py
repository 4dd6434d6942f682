"""Receding-horizon control with a trajectory optimiser, as a ``Policy``.

``TrajOptMPC`` turns any ``TrajectoryOptimizer`` (``ILQR``, ``NMPC``) into a controller with
``reset()`` / ``act(obs)``: it maps the observation to the planner's state, warm-starts the
solve from the previous plan shifted by one step, applies the first control, and maps it to
the env's normalised action. A solve that fails (non-finite, infeasible) or returns a plan
with non-finite controls is never applied: the controller falls back to the last good plan,
advanced by the steps since it was made, and reports it in ``steps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robot_rl.controllers.ilqr import SolverStatus, TrajectoryResult


class TrajectoryOptimizer(Protocol):
    """What ``TrajOptMPC`` needs of a planner (``ILQR`` and ``NMPC`` satisfy it)."""

    horizon: int
    action_size: int

    def reset(self) -> None: ...

    def initial_controls(self) -> np.ndarray: ...

    def warm_start(
        self, previous: TrajectoryResult, x0: np.ndarray, steps: int = 1
    ) -> np.ndarray: ...

    def solve(
        self,
        x0: np.ndarray,
        controls: np.ndarray | None = None,
        parameters: np.ndarray | None = None,
        *,
        max_iterations: int | None = None,
    ) -> TrajectoryResult: ...


@dataclass(frozen=True)
class ActionScaling:
    """Affine map between the planner's controls (physical units) and normalised actions.

    ``action = (control - mid) / half``, clipped to [-1, 1].

    Attributes:
        low, high: (m,) controls that map to actions -1 and +1.
    """

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        low, high = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
        if low.shape != high.shape or not (high > low).all():
            raise ValueError(f"need low < high of one shape, got {low} and {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def from_env(cls, env) -> ActionScaling:
        """The env's control range (``robot.ctrl_low/ctrl_high``, physical units)."""
        robot = env.unwrapped.task.robot
        return cls(robot.ctrl_low, robot.ctrl_high)

    @classmethod
    def identity(cls, size: int) -> ActionScaling:
        """For planners that already work in normalised actions (e.g. on a learned model)."""
        return cls(-np.ones(size), np.ones(size))

    def to_action(self, control: np.ndarray) -> np.ndarray:
        mid, half = 0.5 * (self.high + self.low), 0.5 * (self.high - self.low)
        return np.clip((control - mid) / half, -1.0, 1.0)


@dataclass(frozen=True)
class MPCStep:
    """One control step: the solve's status, iterations, cost and wall time (s), and whether
    the action came from the last good plan instead of this solve."""

    status: SolverStatus
    iterations: int
    cost: float
    solve_time: float
    fallback: bool


class TrajOptMPC:
    """A trajectory optimiser run in a receding horizon.

    Args:
        optimizer: the planner (its controls in physical units, or whatever ``scaling``
            maps from).
        state_fn: observation (obs_dim,) -> planner state (n,).
        scaling: planner control -> normalised env action.
        parameters_fn: observation -> cost parameters (e.g. the goal in the observation);
            None: the cost's defaults.
        first_iterations: iteration budget of the first solve of an episode (cold start).
        warm_iterations: iteration budget of each later, warm-started solve.
    """

    def __init__(
        self,
        optimizer: TrajectoryOptimizer,
        state_fn: Callable[[np.ndarray], np.ndarray],
        scaling: ActionScaling,
        parameters_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        first_iterations: int | None = None,
        warm_iterations: int | None = None,
    ) -> None:
        if scaling.low.shape != (optimizer.action_size,):
            raise ValueError(
                f"scaling is for {scaling.low.shape[0]} controls, the planner has "
                f"{optimizer.action_size}"
            )
        self.optimizer = optimizer
        self.state_fn = state_fn
        self.scaling = scaling
        self.parameters_fn = parameters_fn
        self.first_iterations = first_iterations
        self.warm_iterations = warm_iterations
        self.steps: list[MPCStep] = []
        self.plan: TrajectoryResult | None = None
        self._good_plan: TrajectoryResult | None = None
        self._since_good = 0  # control steps since the last good plan was made

    def reset(self) -> None:
        """Forget the warm start, the fallback plan and the step log (and reset a stateful
        ``state_fn``, one with a ``reset`` method)."""
        self.optimizer.reset()
        if hasattr(self.state_fn, "reset"):
            self.state_fn.reset()
        self.steps = []
        self.plan = None
        self._good_plan = None
        self._since_good = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        control = self.control(np.asarray(obs, dtype=np.float64))
        return self.scaling.to_action(control).astype(np.float32)

    def control(self, obs: np.ndarray) -> np.ndarray:
        """The planner control (m,) for ``obs``, in the planner's units."""
        x = np.asarray(self.state_fn(obs), dtype=np.float64)
        params = None if self.parameters_fn is None else self.parameters_fn(obs)
        start = time.perf_counter()
        previous = self._good_plan
        finite = np.isfinite(x).all() and (params is None or np.isfinite(params).all())
        if finite:  # a NaN observation (a sensor fault) is not planned from
            guess = None
            if previous is not None:
                guess = self.optimizer.warm_start(previous, x, self._since_good + 1, params)
            budget = self.first_iterations if previous is None else self.warm_iterations
            result = self.optimizer.solve(x, guess, params, max_iterations=budget)
            status, iterations, cost = result.status, result.iterations, result.cost
        else:
            status, iterations, cost = SolverStatus.NON_FINITE, 0, np.inf
        elapsed = time.perf_counter() - start
        good = finite and status.usable and np.isfinite(result.controls).all()
        if good:
            self.plan, self._good_plan, self._since_good = result, result, 0
            control = result.controls[0]
        elif previous is not None:
            self._since_good += 1
            control = previous.controls[min(self._since_good, len(previous.controls) - 1)]
        else:  # nothing good yet: the planner's neutral control
            control = self.optimizer.initial_controls()[0]
        self.steps.append(MPCStep(status, iterations, cost, elapsed, not good))
        return np.asarray(control, dtype=np.float64)

    def solve_times(self) -> np.ndarray:
        """Wall time of every solve so far, s."""
        return np.array([s.solve_time for s in self.steps])
