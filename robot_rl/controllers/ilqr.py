"""iLQR and box-constrained DDP (Tassa, Mansard & Todorov, ICRA 2014).

Each iteration linearises the dynamics (``DifferentiableDynamics.jacobians``; DDP adds their
second derivatives) and expands the cost (``Cost.derivatives``) along the current
trajectory, runs the shared Riccati backward pass with a projected-Newton box QP per step
(``riccati_backward``), and accepts the largest step ``α`` of the closed-loop update
``u = clip(ū + α k + K (x - x̄))`` whose actual cost reduction is a sufficient fraction of
the reduction the quadratic model predicts. The regularisation μ follows the
Levenberg-Marquardt schedule of Tassa et al. (IROS 2012): it grows quadratically when the
backward pass fails or no step is accepted, and shrinks after every accepted step.

Controls satisfy the box ``low <= u <= high`` exactly at every iterate: the nominal controls
start clipped, the box QP keeps ``ū + k`` in the box, and the rollout clips.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from robot_rl.controllers.costs import Cost
from robot_rl.controllers.derivatives import DifferentiableDynamics
from robot_rl.controllers.lqr import BackwardStatus, Regularization, riccati_backward


class SolverStatus(enum.Enum):
    """How a trajectory optimisation ended. Only NON_FINITE and INFEASIBLE leave no usable
    plan; the others return the best trajectory found."""

    CONVERGED = "converged"  # cost change or step size below tolerance
    MAX_ITERATIONS = "max_iterations"  # iteration budget spent; the plan improved throughout
    NO_PROGRESS = "no_progress"  # regularisation hit its limit: no descent step was found
    NON_FINITE = "non_finite"  # the initial rollout, its cost or derivatives are not finite
    INFEASIBLE = "infeasible"  # the bounds are empty (low > high), or the NLP is infeasible

    @property
    def usable(self) -> bool:
        """Whether the result carries a finite plan that respects the bounds."""
        return self not in (SolverStatus.NON_FINITE, SolverStatus.INFEASIBLE)


class LineSearch(enum.Enum):
    """How step sizes are tried.

    - PARALLEL: all step sizes in one batched rollout, the largest acceptable one taken
      (best when rollouts are compiled or batched, as for CasADi and torch models).
    - BACKTRACKING: one rollout per step size, largest first, stopping at the first
      acceptable one (best when each rollout is expensive, as on the simulator).
    """

    PARALLEL = "parallel"
    BACKTRACKING = "backtracking"


@dataclass(frozen=True)
class ILQRSettings:
    """Solver settings.

    Attributes:
        max_iterations: iterations per solve.
        cost_tolerance: stop when an accepted step lowers the cost, or the quadratic model
            predicts the full step would lower it, by less than this fraction of it.
        step_tolerance: stop when max_t |k_t| / (1 + max_t |ū_t|) falls below this (the
            feedforward update is negligible).
        reg_init: initial regularisation μ (0: none until a backward pass fails).
        reg_min: μ below this is set to 0; μ restarts here when it has to grow from 0.
        reg_max: give up (``NO_PROGRESS``) when μ exceeds this.
        reg_factor: base factor of the quadratic μ schedule (> 1).
        regularization: where μ enters the backward pass.
        alphas: step sizes tried, largest first, all in (0, 1].
        line_search: parallel or backtracking.
        min_reduction_ratio: accept a step when actual / predicted reduction exceeds this.
        second_order: use the dynamics' second derivatives (DDP) when the model has them.
    """

    max_iterations: int = 100
    cost_tolerance: float = 1e-7
    step_tolerance: float = 1e-5
    reg_init: float = 1e-6
    reg_min: float = 1e-8
    reg_max: float = 1e10
    reg_factor: float = 1.6
    regularization: Regularization = Regularization.CONTROL
    alphas: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.001)
    line_search: LineSearch = LineSearch.PARALLEL
    min_reduction_ratio: float = 1e-4
    second_order: bool = False

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if not self.alphas or any(not 0.0 < a <= 1.0 for a in self.alphas):
            raise ValueError(f"alphas must be non-empty and in (0, 1], got {self.alphas}")
        if list(self.alphas) != sorted(self.alphas, reverse=True):
            raise ValueError(f"alphas must be in decreasing order, got {self.alphas}")
        if self.reg_factor <= 1.0:
            raise ValueError(f"reg_factor must be > 1, got {self.reg_factor}")
        if not (0.0 < self.reg_min <= self.reg_max and 0.0 <= self.reg_init <= self.reg_max):
            raise ValueError("need 0 < reg_min <= reg_max and 0 <= reg_init <= reg_max")


@dataclass(frozen=True)
class IterationLog:
    """One iteration: the cost after it, the predicted and actual reduction of the accepted
    step (0 when none was accepted), its step size, μ, the feedforward size, wall time (s)."""

    iteration: int
    cost: float
    predicted_reduction: float
    actual_reduction: float
    alpha: float
    reg: float
    step_size: float
    time: float


class TrajectoryResult(NamedTuple):
    """A solved trajectory; T steps, n states, m controls.

    Attributes:
        states: (T + 1, n), the first being the start state.
        controls: (T, m), within the bounds.
        K: (T, m, n), k: (T, m) feedback gains and feedforward terms of the last backward
            pass (``u = ū + k + K (x - x̄)`` around the trajectory it was computed on; at
            convergence k ≈ 0 and K is the local LQR feedback of the returned trajectory).
            Zero for solvers without gains (NMPC).
        cost: total cost.
        status: how the solve ended.
        iterations: iterations taken.
        solve_time: wall-clock seconds.
        log: per-iteration records.
    """

    states: np.ndarray
    controls: np.ndarray
    K: np.ndarray
    k: np.ndarray
    cost: float
    status: SolverStatus
    iterations: int
    solve_time: float
    log: tuple[IterationLog, ...] = ()


Callback = Callable[[IterationLog], bool | None]
"""Called after each iteration; return True to stop the solve early."""


@dataclass
class _Memory:
    k: np.ndarray | None = None
    log: list[IterationLog] = field(default_factory=list)
    # The last warm start: (x0, controls, states), so solve() need not roll it out again.
    warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class ILQR:
    """Box-constrained iLQR / DDP over a horizon of T steps.

    Args:
        dynamics: the model and its derivatives.
        cost: the trajectory cost.
        horizon: T, number of controls.
        control_low, control_high: (m,) or (T, m) bounds (±inf for none).
        settings: solver settings.
    """

    def __init__(
        self,
        dynamics: DifferentiableDynamics,
        cost: Cost,
        horizon: int,
        control_low: np.ndarray | float = -np.inf,
        control_high: np.ndarray | float = np.inf,
        settings: ILQRSettings = ILQRSettings(),
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if (cost.state_size, cost.action_size) != (dynamics.state_size, dynamics.action_size):
            raise ValueError(
                f"cost is for (n={cost.state_size}, m={cost.action_size}) but the dynamics "
                f"are (n={dynamics.state_size}, m={dynamics.action_size})"
            )
        self.dynamics, self.cost, self.horizon, self.settings = dynamics, cost, horizon, settings
        self.state_size, self.action_size = dynamics.state_size, dynamics.action_size
        self.control_low, self.control_high = self._bounds(control_low, control_high)
        if (self.control_low > self.control_high).any():
            raise ValueError("control_low must be <= control_high everywhere")
        self._alphas = np.array(settings.alphas)
        self._memory = _Memory()

    def _bounds(self, low: np.ndarray | float, high: np.ndarray | float):
        shape = (self.horizon, self.action_size)
        try:
            lo = np.broadcast_to(np.asarray(low, dtype=np.float64), shape).copy()
            hi = np.broadcast_to(np.asarray(high, dtype=np.float64), shape).copy()
        except ValueError:
            raise ValueError(
                f"control bounds must broadcast to {shape}, got {np.shape(low)} and "
                f"{np.shape(high)}"
            ) from None
        return lo, hi

    def reset(self) -> None:
        """Forget the warm-start memory of previous solves."""
        self._memory = _Memory()

    def initial_controls(self) -> np.ndarray:
        """Zero controls clipped into the bounds, (T, m)."""
        return np.clip(
            np.zeros((self.horizon, self.action_size)), self.control_low, self.control_high
        )

    def warm_start(
        self,
        previous: TrajectoryResult,
        x0: np.ndarray,
        steps: int = 1,
        parameters: np.ndarray | None = None,
    ) -> np.ndarray:
        """Initial controls (T, m) for a solve ``steps`` control steps after ``previous``.

        The previous plan is shifted (its tail repeating the last control and gain) and
        rolled out from the new ``x0`` twice: with its feedback gains,
        ``u_t = ū_{t+s} + K_{t+s} (x_t - x̄_{t+s})``, which keeps a disturbed system near the
        plan (a pendulum that starts to fall is caught, not swung round), and open loop,
        which is safer when the gains overreact to a large disturbance (and drive, say, the
        cart into the end of its rail). The cheaper of the two is returned.
        """
        X = _shift(previous.states, steps)
        U, K = _shift(previous.controls, steps), _shift(previous.K, steps)
        zeros = np.zeros_like(U)
        x0 = np.asarray(x0, dtype=np.float64)
        p = self.cost.check_parameters(parameters)
        # Both rollouts in one batch: β = 1 (with the gains) and β = 0 (open loop).
        xs, us = self.dynamics.rollout_feedback(
            x0, X, U, K, zeros, np.zeros(2), self.control_low, self.control_high,
            gain_scales=np.array([1.0, 0.0]),
        )  # fmt: skip
        finite = np.isfinite(xs).all(axis=(1, 2))
        costs = self.cost.total(np.where(finite[:, None, None], xs, 0.0), us, p)
        costs[~(finite & np.isfinite(costs))] = np.inf
        i = int(np.argmin(costs))
        best = None if not np.isfinite(costs[i]) else (costs[i], xs[i], us[i])
        if best is None:
            return np.clip(U, self.control_low, self.control_high)
        self._memory.warm = (x0.copy(), best[2], best[1])
        return best[2]

    def solve(
        self,
        x0: np.ndarray,
        controls: np.ndarray | None = None,
        parameters: np.ndarray | None = None,
        control_low: np.ndarray | float | None = None,
        control_high: np.ndarray | float | None = None,
        max_iterations: int | None = None,
        callback: Callback | None = None,
    ) -> TrajectoryResult:
        """Optimise the controls from ``x0``.

        Args:
            x0: (n,) start state.
            controls: (T, m) initial guess (e.g. the previous plan shifted); None: zeros.
            parameters: cost parameters (e.g. a goal); None: the cost's defaults.
            control_low, control_high: bounds for this solve (None: the constructor's).
            max_iterations: iteration budget for this solve (None: the settings').
            callback: called after each iteration with its log; True stops the solve.

        Returns:
            A ``TrajectoryResult``. Empty bounds, a non-finite start, cost or derivatives
            give a status (``INFEASIBLE``, ``NON_FINITE``), never an exception or a NaN plan.
        """
        start = time.perf_counter()
        s = self.settings
        T, n, m = self.horizon, self.state_size, self.action_size
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {x0.shape}")
        p = self.cost.check_parameters(parameters)
        low, high = self.control_low, self.control_high
        if control_low is not None or control_high is not None:
            low, high = self._bounds(
                low if control_low is None else control_low,
                high if control_high is None else control_high,
            )
        U = self.initial_controls() if controls is None else np.array(controls, dtype=np.float64)
        if U.shape != (T, m):
            raise ValueError(f"controls must have shape ({T}, {m}), got {U.shape}")
        zeros_K, zeros_k = np.zeros((T, m, n)), np.zeros((T, m))
        max_iterations = s.max_iterations if max_iterations is None else max_iterations

        def finish(
            X: np.ndarray, U: np.ndarray, J: float, status: SolverStatus, it: int, K=None, k=None
        ) -> TrajectoryResult:
            return TrajectoryResult(
                X, U,
                zeros_K if K is None else K, zeros_k if k is None else k,
                J, status, it, time.perf_counter() - start, tuple(memory.log),
            )  # fmt: skip

        memory = self._memory
        memory.log = []
        if np.isnan(low).any() or np.isnan(high).any() or (low > high).any():
            return finish(
                np.full((T + 1, n), np.nan), np.zeros((T, m)), np.inf, SolverStatus.INFEASIBLE, 0
            )
        if not np.isfinite(x0).all() or not np.isfinite(U).all():
            U = np.clip(np.zeros((T, m)), low, high)
            if not np.isfinite(x0).all():
                return finish(np.full((T + 1, n), np.nan), U, np.inf, SolverStatus.NON_FINITE, 0)
        warm, memory.warm = memory.warm, None
        reuse = warm is not None and controls is warm[1] and np.array_equal(x0, warm[0])
        if reuse and control_low is None and control_high is None:
            X = warm[2]  # rolled out by warm_start with exactly these controls
        else:
            U = np.clip(U, low, high)
            X = self.dynamics.rollout(x0, U)
        J = float(self.cost.total(X[None], U[None], p)[0]) if np.isfinite(X).all() else np.inf
        if not np.isfinite(J):
            return finish(X, U, J, SolverStatus.NON_FINITE, 0)

        use_ddp = s.second_order and self.dynamics.has_second_derivatives
        K, k = zeros_K, zeros_k
        status = SolverStatus.MAX_ITERATIONS
        reg = s.reg_init  # each solve adapts μ afresh: a μ inflated near a noisy optimum
        # (finite-difference Jacobians) must not cripple the next, warm-started solve.
        it = 0
        for it in range(1, max_iterations + 1):
            fx, fu = self.dynamics.jacobians(X[:-1], U)
            d = self.cost.derivatives(X, U, p)
            second = self.dynamics.second_derivatives(X[:-1], U) if use_ddp else (None,) * 3
            # Backward pass, raising μ until the Q-function is positive definite.
            while True:
                bp = riccati_backward(
                    fx, fu, d.lxx, d.lux, d.luu, d.lx, d.lu, d.vxx, d.vx,
                    reg=reg, regularization=s.regularization,
                    du_low=low - U, du_high=high - U, k_init=memory.k,
                    fxx=second[0], fux=second[1], fuu=second[2],
                )  # fmt: skip
                if bp.ok:
                    break
                if bp.status is BackwardStatus.NON_FINITE:
                    return finish(X, U, J, SolverStatus.NON_FINITE, it)
                reg = max(reg * s.reg_factor**2, s.reg_min)
                if reg > s.reg_max:
                    status = SolverStatus.NO_PROGRESS
                    break
            if not bp.ok:
                break
            K, k = bp.K, bp.k
            memory.k = bp.k
            step_size = float(np.max(np.abs(k)) / (1.0 + np.max(np.abs(U))))
            full_step_gain = -(bp.expected[0] + bp.expected[1])  # model's reduction at α = 1
            if step_size < s.step_tolerance or full_step_gain < s.cost_tolerance * abs(J):
                memory.log.append(
                    IterationLog(it, J, 0.0, 0.0, 0.0, reg, step_size, time.perf_counter() - start)
                )
                status = SolverStatus.CONVERGED
                break
            accepted = self._line_search(x0, X, U, K, k, bp.expected, J, low, high, p)
            if accepted is None:
                reg = max(reg * s.reg_factor**2, s.reg_min)
                log = IterationLog(
                    it, J, 0.0, 0.0, 0.0, reg, step_size, time.perf_counter() - start
                )
                memory.log.append(log)
                if reg > s.reg_max:
                    status = SolverStatus.NO_PROGRESS
                    break
                if callback is not None and callback(log):
                    break
                continue
            X, U, J_new, alpha, predicted = accepted
            reduction = J - J_new
            J = J_new
            reg = reg / s.reg_factor
            reg = 0.0 if reg < s.reg_min else reg
            log = IterationLog(
                it, J, predicted, reduction, alpha, reg, step_size, time.perf_counter() - start
            )
            memory.log.append(log)
            if reduction < s.cost_tolerance * abs(J):
                status = SolverStatus.CONVERGED
                break
            if callback is not None and callback(log):
                break
        return finish(X, U, J, status, it, K, k)

    def _line_search(
        self,
        x0: np.ndarray,
        X: np.ndarray,
        U: np.ndarray,
        K: np.ndarray,
        k: np.ndarray,
        expected: np.ndarray,
        J: float,
        low: np.ndarray,
        high: np.ndarray,
        p: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, float, float, float] | None:
        """The accepted (states, controls, cost, α, predicted reduction), or None."""
        s = self.settings
        alphas = self._alphas
        if s.line_search is LineSearch.PARALLEL:
            batches = [alphas]
        else:
            batches = [alphas[i : i + 1] for i in range(len(alphas))]
        for batch in batches:
            xs, us = self.dynamics.rollout_feedback(x0, X, U, K, k, batch, low, high)
            finite = np.isfinite(xs).all(axis=(1, 2))
            costs = self.cost.total(np.where(finite[:, None, None], xs, 0.0), us, p)
            costs[~finite] = np.inf
            predicted = -(batch * expected[0] + batch**2 * expected[1])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (J - costs) / predicted
            ok = np.isfinite(costs) & (predicted > 0) & (ratio > s.min_reduction_ratio)
            if ok.any():
                i = int(np.argmax(ok))  # the largest acceptable step
                return xs[i], us[i], float(costs[i]), float(batch[i]), float(predicted[i])
        return None


def _shift(a: np.ndarray, steps: int) -> np.ndarray:
    """Drop the first ``steps`` rows of ``a`` and repeat its last row to keep the length."""
    steps = min(steps, len(a))
    return np.concatenate([a[steps:], np.repeat(a[-1:], steps, axis=0)], axis=0)
