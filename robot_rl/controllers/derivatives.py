"""Differentiable dynamics for gradient-based planners, from three sources behind one interface.

``DifferentiableDynamics`` is a discrete-time model ``x_{t+1} = f(x_t, u_t)`` (batched
``step``, so it is also a ``robot_rl.types.Dynamics``) that gives the Jacobians ``fx, fu``
along a trajectory in one call, and rolls out the closed-loop line-search candidates
``u_t = clip(ū_t + α k_t + K_t (x_t - x̄_t))`` of iLQR for several step sizes α at once.

- ``CasadiDynamics``: an analytic model (``robot_rl.controllers.models``); exact Jacobians
  (and second derivatives, for DDP) compiled once and evaluated for the whole horizon in one
  call through ``map``; the closed-loop rollout is one compiled ``mapaccum``.
- ``MujocoDynamics``: the simulator itself, on its own model and data (the env's simulator
  state is never touched); Jacobians by ``mujoco.mjd_transitionFD``.
- ``TorchDynamics``: any torch callable ``(B, n), (B, m) -> (B, n)``, e.g. a learned
  ensemble's mean prediction; batched Jacobians with ``torch.func`` over the horizon.
"""

from __future__ import annotations

import abc
import enum

import casadi as ca
import numpy as np

from robot_rl.controllers.compiled import CompiledFunction, dense_function


class DifferentiableDynamics(abc.ABC):
    """A batched discrete-time model with Jacobians, in the planner's units.

    Subclasses set ``state_size`` and ``action_size`` and implement ``step`` and
    ``jacobians``; ``rollout_feedback`` has a generic implementation over ``step`` that
    subclasses may replace with a faster one.
    """

    state_size: int
    action_size: int

    @abc.abstractmethod
    def step(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Next states: state (B, n), action (B, m) -> (B, n)."""

    @abc.abstractmethod
    def jacobians(self, states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``fx`` (T, n, n) and ``fu`` (T, n, m) at states (T, n) and actions (T, m)."""

    def second_derivatives(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``fxx`` (T, n, n, n), ``fux`` (T, n, m, n), ``fuu`` (T, n, m, m), the first index
        being the output state (for DDP). Only exact models provide them."""
        raise NotImplementedError(f"{type(self).__name__} has no second derivatives")

    @property
    def has_second_derivatives(self) -> bool:
        return False

    def rollout(self, x0: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Open-loop rollout: x0 (n,), actions (T, m) -> states (T + 1, n)."""
        states = np.empty((actions.shape[0] + 1, self.state_size))
        states[0] = x0
        for t in range(actions.shape[0]):
            states[t + 1] = self.step(states[t : t + 1], actions[t : t + 1])[0]
        return states

    def rollout_feedback(
        self,
        x0: np.ndarray,
        states: np.ndarray,
        actions: np.ndarray,
        K: np.ndarray,
        k: np.ndarray,
        alphas: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed-loop rollouts ``u_t = clip(ū_t + α k_t + K_t (x_t - x̄_t), low_t, high_t)``.

        Args:
            x0: (n,) start state. states: (T + 1, n) nominal x̄. actions: (T, m) nominal ū.
            K: (T, m, n), k: (T, m) from the backward pass. alphas: (A,) step sizes.
            low, high: (T, m) bounds.

        Returns:
            states (A, T + 1, n) and actions (A, T, m), one trajectory per α.
        """
        A, T = alphas.shape[0], actions.shape[0]
        xs = np.empty((A, T + 1, self.state_size))
        us = np.empty((A, T, self.action_size))
        xs[:, 0] = x0
        for t in range(T):
            u = actions[t] + alphas[:, None] * k[t] + (xs[:, t] - states[t]) @ K[t].T
            us[:, t] = np.clip(u, low[t], high[t])
            xs[:, t + 1] = self.step(xs[:, t], us[:, t])
        return xs, us


# -- CasADi -------------------------------------------------------------------------------------
class CasadiDynamics(DifferentiableDynamics):
    """A discrete CasADi model ``F(x, u) -> x_next`` with exact compiled derivatives.

    Args:
        step_function: CasADi Function of (x (n,), u (m,)) returning x_next (n,), e.g.
            ``models.rk4(model, dt)`` or ``models.semi_implicit_euler(model, dt, substeps)``.
    """

    def __init__(self, step_function: ca.Function) -> None:
        if step_function.n_in() != 2 or step_function.n_out() != 1:
            raise ValueError("step_function must map (x, u) to x_next")
        self.state_size = step_function.size1_in(0)
        self.action_size = step_function.size1_in(1)
        if step_function.size1_out(0) != self.state_size:
            raise ValueError("step_function must return a state of the input state's size")
        self.function = step_function
        x = ca.SX.sym("x", self.state_size)
        u = ca.SX.sym("u", self.action_size)
        x_next = step_function(x, u)
        fx, fu = ca.jacobian(x_next, x), ca.jacobian(x_next, u)
        self._step = ca.Function("step", [x, u], [x_next])
        self._jac = dense_function("jacobians", [x, u], [fx.T, fu.T])
        # Second derivatives per output state p: ∂²x_p/∂x², ∂²x_p/∂u∂x, ∂²x_p/∂u².
        n, m = self.state_size, self.action_size
        fxx = [ca.jacobian(fx[p, :].T, x) for p in range(n)]
        fux = [ca.jacobian(fu[p, :].T, x) for p in range(n)]
        fuu = [ca.jacobian(fu[p, :].T, u) for p in range(n)]
        self._hess = dense_function(
            "second_derivatives",
            [x, u],
            [
                ca.horzcat(*[h.T for h in fxx]),
                ca.horzcat(*[h.T for h in fux]),
                ca.horzcat(*[h.T for h in fuu]),
            ],
        )
        self._hess_shapes = ((n, n, n), (n, m, n), (n, m, m))
        self._steps: dict[int, CompiledFunction] = {}
        self._jacobians: dict[int, CompiledFunction] = {}
        self._hessians: dict[int, CompiledFunction] = {}
        self._feedback: dict[tuple[int, int], CompiledFunction] = {}

    @property
    def has_second_derivatives(self) -> bool:
        return True

    def step(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        B = state.shape[0]
        fn = self._steps.get(B)
        if fn is None:
            fn = self._steps[B] = self._mapped(self._step, B, [(B, self.state_size)])
        return fn(state, action)[0].copy()

    def jacobians(self, states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = states.shape[0]
        fn = self._jacobians.get(T)
        if fn is None:
            n, m = self.state_size, self.action_size
            fn = self._jacobians[T] = self._mapped(self._jac, T, [(T, n, n), (T, n, m)])
        fx, fu = fn(states, actions)
        return fx.copy(), fu.copy()

    def second_derivatives(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        T = states.shape[0]
        fn = self._hessians.get(T)
        if fn is None:
            shapes = [(T, *s) for s in self._hess_shapes]
            fn = self._hessians[T] = self._mapped(self._hess, T, shapes)
        fxx, fux, fuu = fn(states, actions)
        return fxx.copy(), fux.copy(), fuu.copy()

    def _mapped(
        self, fn: ca.Function, T: int, out_shapes: list[tuple[int, ...]]
    ) -> CompiledFunction:
        mapped = fn.map(T, "serial")
        return CompiledFunction(mapped, [(T, self.state_size), (T, self.action_size)], out_shapes)

    def rollout_feedback(
        self,
        x0: np.ndarray,
        states: np.ndarray,
        actions: np.ndarray,
        K: np.ndarray,
        k: np.ndarray,
        alphas: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        A, T = alphas.shape[0], actions.shape[0]
        fn = self._feedback.get((A, T))
        if fn is None:
            fn = self._feedback[(A, T)] = self._build_feedback(A, T)
        xs, us = fn(alphas, x0, states[:-1], actions, K, k, low, high)
        out = np.empty((A, T + 1, self.state_size))
        out[:, 0] = x0
        out[:, 1:] = xs
        return out, us.copy()

    def _build_feedback(self, A: int, T: int) -> CompiledFunction:
        n, m = self.state_size, self.action_size
        x = ca.SX.sym("x", n)
        xbar = ca.SX.sym("xbar", n)
        ubar = ca.SX.sym("ubar", m)
        K = ca.SX.sym("K", n, m)  # Kᵀ in CasADi = K row-major in NumPy
        k = ca.SX.sym("k", m)
        alpha = ca.SX.sym("alpha")
        lo = ca.SX.sym("lo", m)
        hi = ca.SX.sym("hi", m)
        u = ca.fmin(ca.fmax(ubar + alpha * k + K.T @ (x - xbar), lo), hi)
        step = ca.Function(
            "feedback_step", [x, xbar, ubar, K, k, alpha, lo, hi], [self._step(x, u), u]
        )
        scan = step.mapaccum("feedback_rollout", T)  # accumulates x; maps the rest over t
        inputs = [
            ca.MX.sym("alpha"),
            ca.MX.sym("x0", n),
            ca.MX.sym("Xbar", n, T),
            ca.MX.sym("Ubar", m, T),
            ca.MX.sym("K", n, m * T),
            ca.MX.sym("k", m, T),
            ca.MX.sym("low", m, T),
            ca.MX.sym("high", m, T),
        ]
        alpha_, x0, *rest = inputs
        xbar_, ubar_, K_, k_, low_, high_ = rest
        per_alpha = ca.Function(
            "per_alpha",
            inputs,
            scan.call([x0, xbar_, ubar_, K_, k_, ca.repmat(alpha_, 1, T), low_, high_]),
        )
        # Map over the step sizes; every other input is shared (not mapped).
        fn = per_alpha.map("rollout_feedback", "serial", A, list(range(1, 8)), [])
        return CompiledFunction(
            fn,
            [(A,), (n,), (T, n), (T, m), (T, m, n), (T, m), (T, m), (T, m)],
            [(A, T, n), (A, T, m)],
        )


class MujocoJacobian(enum.Enum):
    """How ``MujocoDynamics`` differentiates one control step of ``substeps`` physics steps.

    - CHAIN: ``mjd_transitionFD`` at every physics step along the rollout, multiplied
      together (chain rule through the substeps).
    - WHOLE_STEP: finite differences of the whole control step, all perturbed rollouts at
      once with ``mujoco.rollout``.
    """

    CHAIN = "chain"
    WHOLE_STEP = "whole_step"


__all__ = [
    "CasadiDynamics",
    "DifferentiableDynamics",
    "MujocoJacobian",
]
