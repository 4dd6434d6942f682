"""Trajectory costs as named CasADi terms, with exact derivatives compiled over the horizon.

A ``Cost`` is a sum of named running terms ``ℓ_i(x, u, p)`` and terminal terms ``φ_j(x, p)``
written as CasADi expressions (``p`` is a parameter vector such as a goal, the same at every
step). It compiles, once per horizon length, one Function for the batched totals of many
candidate trajectories (the line search) and one for the gradients and Hessians along a
trajectory (the backward pass), and reads each term back per step (``term_values``).

Costs are independent of where the dynamics come from (CasADi model, MuJoCo, learned model),
so every planner here scores trajectories the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import casadi as ca
import numpy as np

from robot_rl.controllers.compiled import CompiledFunction, dense_function

RunningTerm = Callable[[ca.SX, ca.SX, ca.SX], ca.SX]
"""ℓ(x, u, p) -> scalar CasADi expression."""
TerminalTerm = Callable[[ca.SX, ca.SX], ca.SX]
"""φ(x, p) -> scalar CasADi expression."""


class CostDerivatives(NamedTuple):
    """Gradients and Hessians of a cost along a trajectory of T steps.

    Attributes:
        lx: (T, n), lu: (T, m), lxx: (T, n, n), lux: (T, m, n) (∂²ℓ/∂u∂x), luu: (T, m, m).
        vx: (n,), vxx: (n, n) of the terminal cost.
    """

    lx: np.ndarray
    lu: np.ndarray
    lxx: np.ndarray
    lux: np.ndarray
    luu: np.ndarray
    vx: np.ndarray
    vxx: np.ndarray


class Cost:
    """Σ_t Σ_i ℓ_i(x_t, u_t, p) + Σ_j φ_j(x_T, p).

    Args:
        state_size: n. action_size: m. parameter_size: length of ``p`` (0: none).
        running: name -> ℓ(x, u, p) builder, called once with CasADi symbols.
        terminal: name -> φ(x, p) builder.
        default_parameters: (parameter_size,) used when a call passes none.
    """

    def __init__(
        self,
        state_size: int,
        action_size: int,
        running: Mapping[str, RunningTerm],
        terminal: Mapping[str, TerminalTerm] | None = None,
        parameter_size: int = 0,
        default_parameters: np.ndarray | None = None,
    ) -> None:
        if state_size < 1 or action_size < 1 or parameter_size < 0:
            raise ValueError("state and action sizes must be >= 1, parameter size >= 0")
        if not running:
            raise ValueError("a cost needs at least one running term")
        self.state_size, self.action_size = state_size, action_size
        self.parameter_size = parameter_size
        self.default_parameters = self.check_parameters(
            np.zeros(parameter_size) if default_parameters is None else default_parameters
        )
        x = ca.SX.sym("x", state_size)
        u = ca.SX.sym("u", action_size)
        # Compiled functions take at least one parameter (C compilers dislike empty buffers).
        self._padded_size = max(parameter_size, 1)
        p = ca.SX.sym("p", self._padded_size)
        user_p = p[:parameter_size]
        running_terms = {name: ca.SX(build(x, u, user_p)) for name, build in running.items()}
        terminal_terms = {name: ca.SX(build(x, user_p)) for name, build in (terminal or {}).items()}
        for name, expr in (*running_terms.items(), *terminal_terms.items()):
            if expr.shape != (1, 1):
                raise ValueError(f"cost term {name!r} must be a scalar, got shape {expr.shape}")
        self.running_names = tuple(running_terms)
        self.terminal_names = tuple(terminal_terms)
        ell = ca.sum1(ca.vertcat(*running_terms.values()))
        phi = ca.sum1(ca.vertcat(*terminal_terms.values())) if terminal_terms else ca.SX(0)
        self._x, self._u, self._p = x, u, p
        self._running = ca.Function("running", [x, u, p], [ell])
        self._terminal = ca.Function("terminal", [x, p], [phi])
        self._running_terms = ca.Function(
            "running_terms", [x, u, p], [ca.vertcat(*running_terms.values())]
        )
        terminal_vector = ca.vertcat(*terminal_terms.values()) if terminal_terms else ca.SX(0, 1)
        self._terminal_terms = ca.Function("terminal_terms", [x, p], [terminal_vector])
        # Per-step derivative blocks, transposed for the NumPy layout (see ``compiled``).
        lxx, lx = ca.hessian(ell, x)
        luu, lu = ca.hessian(ell, u)
        lux = ca.jacobian(ca.jacobian(ell, u).T, x)  # (m, n)
        vxx, vx = ca.hessian(phi, x)
        self._running_derivatives = dense_function(
            "running_derivatives", [x, u, p], [lx, lu, lxx.T, lux.T, luu.T]
        )
        self._terminal_derivatives = dense_function("terminal_derivatives", [x, p], [vx, vxx.T])
        self._totals: dict[tuple[int, int], CompiledFunction] = {}
        self._derivatives: dict[int, CompiledFunction] = {}

    @property
    def running_function(self) -> ca.Function:
        """Σ_i ℓ_i as a CasADi Function of (x (n,), u (m,), p (max(parameter_size, 1),))."""
        return self._running

    @property
    def terminal_function(self) -> ca.Function:
        """Σ_j φ_j as a CasADi Function of (x (n,), p (max(parameter_size, 1),))."""
        return self._terminal

    # -- parameters -----------------------------------------------------------------------------
    def check_parameters(self, parameters: np.ndarray | None) -> np.ndarray:
        """``parameters`` (or the defaults) as a finite (parameter_size,) float array."""
        if parameters is None:
            return self.default_parameters
        p = np.asarray(parameters, dtype=np.float64).reshape(-1)
        if p.shape != (self.parameter_size,):
            raise ValueError(
                f"cost parameters must have shape ({self.parameter_size},), got {p.shape}"
            )
        if not np.isfinite(p).all():
            raise ValueError(f"cost parameters must be finite, got {p}")
        return p

    def _padded(self, parameters: np.ndarray | None) -> np.ndarray:
        p = self.check_parameters(parameters)
        return p if self.parameter_size else np.zeros(1)

    # -- evaluation ---------------------------------------------------------------------------------
    def total(
        self, states: np.ndarray, controls: np.ndarray, parameters: np.ndarray | None = None
    ) -> np.ndarray:
        """Total cost of A trajectories: states (A, T + 1, n), controls (A, T, m) -> (A,)."""
        A, T = controls.shape[:2]
        fn = self._totals.get((A, T))
        if fn is None:
            fn = self._totals[(A, T)] = self._build_total(A, T)
        running, terminal = fn(
            states[:, :-1].reshape(A * T, -1), controls.reshape(A * T, -1), states[:, -1],
            self._padded(parameters),
        )  # fmt: skip
        return running.reshape(A, T).sum(axis=1) + terminal

    def derivatives(
        self, states: np.ndarray, controls: np.ndarray, parameters: np.ndarray | None = None
    ) -> CostDerivatives:
        """Gradients and Hessians along one trajectory: states (T + 1, n), controls (T, m)."""
        T = controls.shape[0]
        fn = self._derivatives.get(T)
        if fn is None:
            fn = self._derivatives[T] = self._build_derivatives(T)
        out = fn(states[:-1], controls, states[-1], self._padded(parameters))
        return CostDerivatives(*(a.copy() for a in out))

    def term_values(
        self, states: np.ndarray, controls: np.ndarray, parameters: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each named term along one trajectory: running terms (T,), terminal terms (1,)."""
        p = self._padded(parameters)
        T = controls.shape[0]
        running = np.asarray(self._running_terms.map(T)(states[:-1].T, controls.T, p))
        out = {name: running[i] for i, name in enumerate(self.running_names)}
        terminal = np.asarray(self._terminal_terms(states[-1], p)).reshape(-1)
        out.update({name: terminal[i : i + 1] for i, name in enumerate(self.terminal_names)})
        return out

    # -- compiled functions ------------------------------------------------------------------------
    def _build_total(self, A: int, T: int) -> CompiledFunction:
        n, m, q = self.state_size, self.action_size, self._padded_size
        X = ca.MX.sym("X", n, A * T)
        U = ca.MX.sym("U", m, A * T)
        XT = ca.MX.sym("XT", n, A)
        p = ca.MX.sym("p", q)
        running = self._running.map(A * T, "serial")(X, U, ca.repmat(p, 1, A * T))
        terminal = self._terminal.map(A, "serial")(XT, ca.repmat(p, 1, A))
        fn = ca.Function("cost_total", [X, U, XT, p], [running, terminal])
        return CompiledFunction(fn, [(A * T, n), (A * T, m), (A, n), (q,)], [(A * T,), (A,)])

    def _build_derivatives(self, T: int) -> CompiledFunction:
        n, m, q = self.state_size, self.action_size, self._padded_size
        X = ca.MX.sym("X", n, T)
        U = ca.MX.sym("U", m, T)
        XT = ca.MX.sym("XT", n)
        p = ca.MX.sym("p", q)
        running = self._running_derivatives.map(T, "serial")(X, U, ca.repmat(p, 1, T))
        terminal = self._terminal_derivatives(XT, p)
        fn = ca.Function("cost_derivatives", [X, U, XT, p], [*running, *terminal])
        return CompiledFunction(
            fn,
            [(T, n), (T, m), (n,), (q,)],
            [(T, n), (T, m), (T, n, n), (T, m, n), (T, m, m), (n,), (n, n)],
        )


# -- common terms -------------------------------------------------------------------------------
def quadratic(weights: np.ndarray, target: np.ndarray | None = None) -> Callable[[ca.SX], ca.SX]:
    """z -> ½ (z - target)ᵀ diag(weights) (z - target)."""
    w = ca.DM(np.asarray(weights, dtype=np.float64))

    def term(z: ca.SX) -> ca.SX:
        e = z if target is None else z - ca.DM(np.asarray(target, dtype=np.float64))
        return 0.5 * ca.dot(w * e, e)

    return term
