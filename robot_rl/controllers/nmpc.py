"""Nonlinear MPC by direct multiple shooting in CasADi, solved with IPOPT or fatrop.

The decision variables are interleaved stage by stage, ``(x_0, u_0, x_1, u_1, ..., x_N)``,
and every stage's constraints follow its continuity constraint ``x_{k+1} - F(x_k, u_k) = 0``,
the layout fatrop's structure detection needs (IPOPT does not care). ``F`` is any discrete
CasADi model, e.g. ``models.rk4(model, dt)`` (RK4 with zero-order hold). Supported
constraints: input bounds, state bounds (on x_1..x_N), and general path constraints
``lower <= g(x_k, u_k, p) <= upper``. The start state is fixed through the bounds of x_0.

Between MPC steps the primal and dual solution is shifted by one stage and passed back as
the initial guess (``warm_start``); the solver then starts from it with a small barrier
parameter (IPOPT also takes the multipliers; fatrop's interface takes the primal guess).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import casadi as ca
import numpy as np

from robot_rl.controllers.costs import Cost
from robot_rl.controllers.ilqr import SolverStatus, TrajectoryResult


class NLPSolver(enum.Enum):
    """The NLP solver behind ``NMPC``: IPOPT (general) or fatrop (structure-exploiting)."""

    IPOPT = "ipopt"
    FATROP = "fatrop"


@dataclass(frozen=True)
class PathConstraint:
    """``lower <= g(x, u, p) <= upper`` at every stage k = 0..N-1.

    Attributes:
        name: for error messages.
        fn: builds g from CasADi symbols x (n,), u (m,), p -> (k,) expression.
        lower, upper: (k,) bounds (±inf for one-sided).
    """

    name: str
    fn: Callable[[ca.SX, ca.SX, ca.SX], ca.SX]
    lower: np.ndarray
    upper: np.ndarray


class NMPC:
    """Direct multiple shooting over a horizon of N stages.

    Args:
        step_function: discrete model F(x, u) -> x_next as a CasADi Function.
        cost: the trajectory cost (running terms at stages 0..N-1, terminal at x_N).
        horizon: N.
        control_low, control_high: (m,) input bounds.
        state_low, state_high: (n,) state bounds on x_1..x_N (None: unbounded).
        path_constraints: general constraints per stage.
        solver: IPOPT or fatrop.
        max_iterations: NLP iterations per solve (overridable per solve).
        tolerance: NLP convergence tolerance.
    """

    def __init__(
        self,
        step_function: ca.Function,
        cost: Cost,
        horizon: int,
        control_low: np.ndarray,
        control_high: np.ndarray,
        state_low: np.ndarray | None = None,
        state_high: np.ndarray | None = None,
        path_constraints: Sequence[PathConstraint] = (),
        solver: NLPSolver = NLPSolver.FATROP,
        max_iterations: int = 500,
        tolerance: float = 1e-8,
    ) -> None:
        n, m = step_function.size1_in(0), step_function.size1_in(1)
        if (cost.state_size, cost.action_size) != (n, m):
            raise ValueError(
                f"cost is for (n={cost.state_size}, m={cost.action_size}), model for ({n}, {m})"
            )
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.state_size, self.action_size, self.horizon = n, m, horizon
        self.cost, self.solver_kind = cost, NLPSolver(solver)
        self.max_iterations, self.tolerance = max_iterations, tolerance
        self.control_low = np.broadcast_to(np.asarray(control_low, dtype=np.float64), (m,)).copy()
        self.control_high = np.broadcast_to(np.asarray(control_high, dtype=np.float64), (m,)).copy()
        self.state_low = (
            np.full(n, -np.inf) if state_low is None else np.asarray(state_low, dtype=np.float64)
        )
        self.state_high = (
            np.full(n, np.inf) if state_high is None else np.asarray(state_high, dtype=np.float64)
        )

        N = horizon
        p = ca.SX.sym("p", cost.parameter_size)
        p_padded = ca.vertcat(p, ca.SX(max(cost.parameter_size, 1) - cost.parameter_size, 1))
        X = [ca.SX.sym(f"x{k}", n) for k in range(N + 1)]
        U = [ca.SX.sym(f"u{k}", m) for k in range(N)]
        w, g, equality = [], [], []
        g_low, g_high = [], []
        total = ca.SX(0)
        path = []
        for c in path_constraints:
            lower, upper = (
                np.atleast_1d(c.lower).astype(float),
                np.atleast_1d(c.upper).astype(float),
            )
            x_, u_ = ca.SX.sym("x", n), ca.SX.sym("u", m)
            expr = ca.SX(c.fn(x_, u_, p))
            if expr.shape != (lower.size, 1) or lower.shape != upper.shape:
                raise ValueError(
                    f"path constraint {c.name!r}: g is {expr.shape}, bounds {lower.shape}/{upper.shape}"
                )
            if (lower > upper).any():
                raise ValueError(f"path constraint {c.name!r} has lower > upper")
            path.append((ca.Function(c.name, [x_, u_, p], [expr]), lower, upper))
        running, terminal = cost.running_function, cost.terminal_function
        for k in range(N):
            w += [X[k], U[k]]
            total += running(X[k], U[k], p_padded)
            g.append(X[k + 1] - step_function(X[k], U[k]))  # fatrop: x_{k+1} - F(x_k, u_k)
            equality += [True] * n
            g_low.append(np.zeros(n))
            g_high.append(np.zeros(n))
            for fn, lower, upper in path:
                g.append(fn(X[k], U[k], p))
                equality += [False] * lower.size
                g_low.append(lower)
                g_high.append(upper)
        w.append(X[N])
        total += terminal(X[N], p_padded)
        self._nlp = {"x": ca.vertcat(*w), "f": total, "g": ca.vertcat(*g), "p": p}
        self._equality = equality
        self._lbg, self._ubg = np.concatenate(g_low), np.concatenate(g_high)
        stage = n + m
        self._x_index = np.array([[k * stage + i for i in range(n)] for k in range(N + 1)])
        self._u_index = np.array([[k * stage + n + i for i in range(m)] for k in range(N)])
        self._n_w = N * stage + n
        self._solvers: dict[tuple[bool, int], ca.Function] = {}
        self._dual: tuple[np.ndarray, np.ndarray] | None = None
        self.step_function = step_function

    # -- solver construction ---------------------------------------------------------------------
    def _solver(self, warm: bool, max_iterations: int) -> ca.Function:
        """The solver for a cold or warm start and an iteration budget (options are fixed
        at construction, so each combination is built once)."""
        key = (warm, max_iterations)
        if key not in self._solvers:
            common = {"print_time": False, "expand": True}
            if self.solver_kind is NLPSolver.IPOPT:
                opts = {
                    **common,
                    "ipopt": {
                        "print_level": 0,
                        "sb": "yes",
                        "tol": self.tolerance,
                        "max_iter": max_iterations,
                        **({"warm_start_init_point": "yes", "mu_init": 1e-4} if warm else {}),
                    },
                }
            else:
                opts = {
                    **common,
                    "structure_detection": "auto",
                    "equality": self._equality,
                    "fatrop": {
                        "print_level": 0,
                        "tol": self.tolerance,
                        "max_iter": max_iterations,
                        **({"mu_init": 1e-4} if warm else {}),
                    },
                }
            self._solvers[key] = ca.nlpsol("nmpc", self.solver_kind.value, self._nlp, opts)
        return self._solvers[key]

    def build(self, max_iterations: int | None = None) -> None:
        """Construct the cold- and warm-start solvers for an iteration budget now (otherwise
        on the first solve that needs them)."""
        budget = self.max_iterations if max_iterations is None else max_iterations
        self._solver(False, budget)
        self._solver(True, budget)

    # -- the TrajectoryOptimizer interface ---------------------------------------------------------
    def reset(self) -> None:
        """Forget the dual warm start."""
        self._dual = None

    def initial_controls(self) -> np.ndarray:
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
        """The previous controls shifted by ``steps`` (the last repeated); the duals are
        shifted the same way and used by the next solve."""
        return _shift(previous.controls, steps)

    def solve(
        self,
        x0: np.ndarray,
        controls: np.ndarray | None = None,
        parameters: np.ndarray | None = None,
        *,
        max_iterations: int | None = None,
    ) -> TrajectoryResult:
        """Solve from ``x0``; ``controls`` (N, m) seeds the primal guess (states by rollout).

        Returns a ``TrajectoryResult`` (K, k zero). Infeasible bounds or start, a failing
        solver, or a non-finite solution give a status, never an exception.
        """
        start = time.perf_counter()
        N, n, m = self.horizon, self.state_size, self.action_size
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {x0.shape}")
        p = self.cost.check_parameters(parameters)
        zeros = (np.zeros((N, m, n)), np.zeros((N, m)))

        def result(X, U, J, status, iterations) -> TrajectoryResult:
            return TrajectoryResult(
                X, U, *zeros, J, status, iterations, time.perf_counter() - start
            )

        U0 = (
            self.initial_controls()
            if controls is None
            else np.clip(
                np.asarray(controls, dtype=np.float64), self.control_low, self.control_high
            )
        )
        if not np.isfinite(x0).all():
            return result(
                np.full((N + 1, n), np.nan),
                self.initial_controls(),
                np.inf,
                SolverStatus.NON_FINITE,
                0,
            )
        if (self.control_low > self.control_high).any() or (self.state_low > self.state_high).any():
            return result(
                np.full((N + 1, n), np.nan),
                self.initial_controls(),
                np.inf,
                SolverStatus.INFEASIBLE,
                0,
            )
        if not np.isfinite(U0).all():
            U0 = self.initial_controls()
        X0 = np.empty((N + 1, n))
        X0[0] = x0
        for k in range(N):
            X0[k + 1] = np.asarray(self.step_function(X0[k], U0[k])).ravel()
        if not np.isfinite(X0).all():
            X0[:] = x0
        w0 = np.empty(self._n_w)
        w0[self._x_index] = X0
        w0[self._u_index] = U0
        lbw, ubw = np.empty(self._n_w), np.empty(self._n_w)
        lbw[self._x_index] = self.state_low
        ubw[self._x_index] = self.state_high
        lbw[self._x_index[0]] = ubw[self._x_index[0]] = x0
        lbw[self._u_index] = self.control_low
        ubw[self._u_index] = self.control_high
        warm = self._dual is not None and controls is not None
        args = {"x0": w0, "lbx": lbw, "ubx": ubw, "lbg": self._lbg, "ubg": self._ubg, "p": p}
        if warm:
            args["lam_x0"], args["lam_g0"] = self._dual
        solver = self._solver(
            warm, self.max_iterations if max_iterations is None else max_iterations
        )
        try:
            sol = solver(**args)
            stats = solver.stats()
        except RuntimeError:
            return result(X0, U0, np.inf, SolverStatus.NO_PROGRESS, 0)
        w = np.asarray(sol["x"]).ravel()
        X, U = w[self._x_index], w[self._u_index]
        J = float(sol["f"])
        iterations = int(stats.get("iter_count", 0))
        status = _status(stats)
        if not (np.isfinite(w).all() and np.isfinite(J)):
            return result(X0, U0, np.inf, SolverStatus.NON_FINITE, iterations)
        if status.usable:
            lam_x, lam_g = np.asarray(sol["lam_x"]).ravel(), np.asarray(sol["lam_g"]).ravel()
            self._dual = (self._shift_dual(lam_x, self._n_w), self._shift_dual(lam_g, lam_g.size))
        U = np.clip(U, self.control_low, self.control_high)  # remove solver round-off
        return result(X, U, J, status, iterations)

    def _shift_dual(self, lam: np.ndarray, size: int) -> np.ndarray:
        """Shift multipliers one stage ahead, repeating the last stage's."""
        per_stage = (lam.size - (self.state_size if size == self._n_w else 0)) // self.horizon
        shifted = lam.copy()
        shifted[:-per_stage] = lam[per_stage:]
        return shifted


def _status(stats: dict) -> SolverStatus:
    unified = str(stats.get("unified_return_status", ""))
    if stats.get("success", False):
        return SolverStatus.CONVERGED
    if unified == "SOLVER_RET_LIMITED":
        return SolverStatus.MAX_ITERATIONS
    if unified == "SOLVER_RET_INFEASIBLE" or "Infeasible" in str(stats.get("return_status", "")):
        return SolverStatus.INFEASIBLE
    if unified == "SOLVER_RET_NAN":
        return SolverStatus.NON_FINITE
    return SolverStatus.NO_PROGRESS


def _shift(a: np.ndarray, steps: int) -> np.ndarray:
    steps = min(steps, len(a))
    return np.concatenate([a[steps:], np.repeat(a[-1:], steps, axis=0)], axis=0)
