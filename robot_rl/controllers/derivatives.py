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
import copy
import enum
from collections.abc import Callable
from typing import Any

import casadi as ca
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from robot_rl.controllers.compiled import CompiledFunction, dense_function
from robot_rl.envs.randomization import DomainParams


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
        gain_scales: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed-loop rollouts ``u_t = clip(ū_t + α k_t + β K_t (x_t - x̄_t), low_t, high_t)``.

        Args:
            x0: (n,) start state. states: (T + 1, n) nominal x̄. actions: (T, m) nominal ū.
            K: (T, m, n), k: (T, m) from the backward pass. alphas: (A,) step sizes.
            low, high: (T, m) bounds.
            gain_scales: (A,) feedback scale β per candidate (None: 1, the line search's).

        Returns:
            states (A, T + 1, n) and actions (A, T, m), one trajectory per α.
        """
        A, T = alphas.shape[0], actions.shape[0]
        beta = np.ones(A) if gain_scales is None else gain_scales
        xs = np.empty((A, T + 1, self.state_size))
        us = np.empty((A, T, self.action_size))
        xs[:, 0] = x0
        for t in range(T):
            feedback = beta[:, None] * ((xs[:, t] - states[t]) @ K[t].T)
            u = actions[t] + alphas[:, None] * k[t] + feedback
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
        gain_scales: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        A, T = alphas.shape[0], actions.shape[0]
        fn = self._feedback.get((A, T))
        if fn is None:
            fn = self._feedback[(A, T)] = self._build_feedback(A, T)
        beta = np.ones(A) if gain_scales is None else gain_scales
        xs, us = fn(alphas, beta, x0, states[:-1], actions, K, k, low, high)
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
        beta = ca.SX.sym("beta")
        lo = ca.SX.sym("lo", m)
        hi = ca.SX.sym("hi", m)
        u = ca.fmin(ca.fmax(ubar + alpha * k + beta * (K.T @ (x - xbar)), lo), hi)
        step = ca.Function(
            "feedback_step", [x, xbar, ubar, K, k, alpha, beta, lo, hi], [self._step(x, u), u]
        )
        scan = step.mapaccum("feedback_rollout", T)  # accumulates x; maps the rest over t
        inputs = [
            ca.MX.sym("alpha"),
            ca.MX.sym("beta"),
            ca.MX.sym("x0", n),
            ca.MX.sym("Xbar", n, T),
            ca.MX.sym("Ubar", m, T),
            ca.MX.sym("K", n, m * T),
            ca.MX.sym("k", m, T),
            ca.MX.sym("low", m, T),
            ca.MX.sym("high", m, T),
        ]
        alpha_, beta_, x0, *rest = inputs
        xbar_, ubar_, K_, k_, low_, high_ = rest
        per_candidate = ca.Function(
            "per_candidate",
            inputs,
            scan.call(
                [
                    x0, xbar_, ubar_, K_, k_,
                    ca.repmat(alpha_, 1, T), ca.repmat(beta_, 1, T), low_, high_,
                ]
            ),
        )  # fmt: skip
        # Map over the candidates (α, β); every other input is shared (not mapped).
        fn = per_candidate.map("rollout_feedback", "serial", A, list(range(2, 9)), [])
        return CompiledFunction(
            fn,
            [(A,), (A,), (n,), (T, n), (T, m), (T, m, n), (T, m), (T, m), (T, m)],
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


_FULL_PHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


class MujocoDynamics(DifferentiableDynamics):
    """The MuJoCo simulator as a planning model: one step is one env action, ``substeps``
    physics steps with the control held.

    The planning state is (qpos, qvel), (2 nv,), and the control is MuJoCo's ``ctrl``
    (physical units). The model and data are this object's own: planning never touches an
    env's simulator state. Only robots whose qpos and qvel have the same size (hinge and
    slide joints, no free or ball joints) and without actuator activations are supported.

    Args:
        model: the MjModel to plan with; it is copied.
        substeps: physics steps per control step.
        jacobian: how a control step is differentiated (``MujocoJacobian``).
        eps: finite-difference perturbation (states and controls).
        centered: central instead of forward differences (twice the rollouts).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        substeps: int,
        jacobian: MujocoJacobian = MujocoJacobian.WHOLE_STEP,
        eps: float = 1e-6,
        centered: bool = False,
    ) -> None:
        if model.nq != model.nv or model.na != 0:
            raise ValueError(
                "MujocoDynamics needs nq == nv and no actuator activations "
                f"(got nq={model.nq}, nv={model.nv}, na={model.na})"
            )
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        if not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be finite and > 0, got {eps}")
        self.model = copy.deepcopy(model)
        self.data = mujoco.MjData(self.model)
        self.substeps, self.jacobian, self.eps, self.centered = substeps, jacobian, eps, centered
        self.nv = self.model.nv
        self.state_size, self.action_size = 2 * self.nv, self.model.nu
        self._nstate = mujoco.mj_stateSize(self.model, _FULL_PHYSICS)

    @classmethod
    def from_env(
        cls, env: Any, nominal: bool = True, params: DomainParams | None = None, **kwargs: Any
    ) -> MujocoDynamics:
        """The simulator of a ``RobotEnv``'s robot in MuJoCo: at the robot's nominal (default)
        physical parameters, at ``params`` (e.g. identified ones), or (``nominal=False``) at
        the parameters the (MuJoCo) env has now."""
        env = env.unwrapped
        if params is not None or nominal:
            from robot_rl.envs.physics.mujoco import MuJoCoPhysics

            physics = MuJoCoPhysics(env.task.robot, env.task.markers)
            model = physics.model if params is None else physics.model_with(params)
        else:
            model = env.physics.model
        return cls(model, env.substeps, **kwargs)

    # -- state <-> MuJoCo ----------------------------------------------------------------------
    def _full_states(self, states: np.ndarray) -> np.ndarray:
        """(B, 2 nv) planning states -> (B, nstate) full physics states at time 0."""
        full = np.zeros((states.shape[0], self._nstate))
        full[:, 1 : 1 + 2 * self.nv] = states
        return full

    def _load(self, state: np.ndarray, control: np.ndarray) -> None:
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[:] = state[: self.nv]
        d.qvel[:] = state[self.nv :]
        d.ctrl[:] = control

    def step(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        out = np.empty((state.shape[0], self.state_size))
        d = self.data
        for b in range(state.shape[0]):
            self._load(state[b], action[b])
            mujoco.mj_step(self.model, d, nstep=self.substeps)
            out[b, : self.nv] = d.qpos
            out[b, self.nv :] = d.qvel
        return out

    def _rollout_batch(self, full: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Physics states after every substep: full (B, nstate), controls (B, m) held ->
        (B, substeps, nstate)."""
        state, _ = mj_rollout.rollout(
            self.model, self.data, full, controls[:, None, :], nstep=self.substeps
        )
        return state

    # -- derivatives ---------------------------------------------------------------------------
    def jacobians(self, states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.jacobian is MujocoJacobian.WHOLE_STEP:
            return self._whole_step_jacobians(states, actions)
        return self._chained_jacobians(states, actions)

    def _whole_step_jacobians(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        T, n, m = states.shape[0], self.state_size, self.action_size
        eps, k = self.eps, n + m
        # Perturbations a and b per step and column; derivative = (f(+a) - f(+b)) / (a - b).
        # MuJoCo clamps controls to ctrlrange, so at a bound the difference is one-sided and
        # points inwards (a difference across the bound would see a flat function).
        limited = self.model.actuator_ctrllimited.astype(bool)
        low = np.where(limited, self.model.actuator_ctrlrange[:, 0], -np.inf)
        high = np.where(limited, self.model.actuator_ctrlrange[:, 1], np.inf)
        at_high, at_low = actions + eps > high, actions - eps < low
        a = np.full((T, k), eps)
        a[:, n:] = np.where(at_high, -eps, eps)
        if self.centered:
            b = -a
            b[:, n:] = np.where(at_high | at_low, 0.0, -eps)
        else:
            b = np.zeros((T, k))
        xu = np.concatenate([states, actions], axis=1)
        eye = np.eye(k)
        points = [xu[:, None] + a[:, :, None] * eye]
        points.append(xu[:, None] + b[:, :, None] * eye if self.centered else xu[:, None])
        batch = np.concatenate(points, axis=1)  # (T, k + k or k + 1, k)
        rows = batch.shape[1]
        final = self._rollout_batch(
            self._full_states(batch.reshape(-1, k)[:, :n]), batch.reshape(-1, k)[:, n:]
        )[:, -1]
        nxt = final[:, 1 : 1 + n].reshape(T, rows, n)
        f_b = nxt[:, k:] if self.centered else nxt[:, k : k + 1]
        diff = (nxt[:, :k] - f_b) / (a - b)[:, :, None]  # (T, k, n_out)
        jac = diff.transpose(0, 2, 1)
        return np.ascontiguousarray(jac[:, :, :n]), np.ascontiguousarray(jac[:, :, n:])

    def _chained_jacobians(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        T, n, m, S = states.shape[0], self.state_size, self.action_size, self.substeps
        full = self._full_states(states)
        after = self._rollout_batch(full, actions)  # (T, S, nstate)
        before = np.concatenate([full[:, None], after[:, :-1]], axis=1)
        A = np.empty((T, S, n, n))
        B = np.empty((T, S, n, m))
        d = self.data
        for t in range(T):
            for s in range(S):
                mujoco.mj_setState(self.model, d, before[t, s], _FULL_PHYSICS)
                d.ctrl[:] = actions[t]
                mujoco.mjd_transitionFD(
                    self.model, d, self.eps, self.centered, A[t, s], B[t, s], None, None
                )
        fx = np.broadcast_to(np.eye(n), (T, n, n)).copy()
        fu = np.zeros((T, n, m))
        for s in range(S):  # chain rule through the substeps, batched over t
            fx = A[:, s] @ fx
            fu = A[:, s] @ fu + B[:, s]
        return fx, fu


class TorchDynamics(DifferentiableDynamics):
    """A torch model ``f(state (B, n), action (B, m)) -> next_state (B, n)`` as a planning
    model, e.g. the mean prediction of a learned dynamics ensemble.

    Rows must be independent (row b of the output depends only on row b of the inputs), as
    for any dynamics model evaluated on a batch. Jacobians along a horizon take one forward
    pass and one vectorised backward pass (``torch.func.vjp`` under ``torch.func.vmap`` over
    the n output directions), whatever T.

    Args:
        fn: the model; differentiated for Jacobians, and called under ``torch.no_grad`` for
            rollouts unless ``rollout_fn`` is given.
        state_size, action_size: n and m.
        dtype: dtype the model runs in (inputs are converted; results are float64 NumPy).
        device: device the model runs on.
        rollout_fn: a faster, gradient-free equivalent of ``fn`` for rollouts (e.g.
            ``GaussianEnsemble.mean_step()`` for ``GaussianEnsemble.mean_next_obs``).
    """

    def __init__(
        self,
        fn: Callable[[Any, Any], Any],
        state_size: int,
        action_size: int,
        dtype: Any = None,
        device: Any = "cpu",
        rollout_fn: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        import torch

        self._torch = torch
        self.fn = fn
        self.rollout_fn = fn if rollout_fn is None else rollout_fn
        self.state_size, self.action_size = state_size, action_size
        self.dtype = torch.float32 if dtype is None else dtype
        self.device = torch.device(device)

    def _tensor(self, a: np.ndarray) -> Any:
        return self._torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def step(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            out = self.rollout_fn(self._tensor(state), self._tensor(action))
        return out.detach().cpu().numpy().astype(np.float64)

    def rollout(self, x0: np.ndarray, actions: np.ndarray) -> np.ndarray:
        # In torch end to end: one conversion each way instead of one per step.
        with self._torch.no_grad():
            x = self._tensor(x0)[None]
            U = self._tensor(actions)
            states = [x]
            for t in range(U.shape[0]):
                x = self.rollout_fn(x, U[t : t + 1])
                states.append(x)
            return self._torch.cat(states).cpu().numpy().astype(np.float64)

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
        gain_scales: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.no_grad():
            Xb, Ub, Kt, kt = (self._tensor(a) for a in (states, actions, K, k))
            lo, hi, al = self._tensor(low), self._tensor(high), self._tensor(alphas)[:, None]
            beta = np.ones(len(alphas)) if gain_scales is None else gain_scales
            be = self._tensor(beta)[:, None]
            x = self._tensor(x0).expand(al.shape[0], -1)
            xs, us = [x], []
            for t in range(Ub.shape[0]):
                u = Ub[t] + al * kt[t] + be * ((x - Xb[t]) @ Kt[t].T)
                u = torch.minimum(torch.maximum(u, lo[t]), hi[t])
                x = self.rollout_fn(x, u)
                xs.append(x)
                us.append(u)
            X = torch.stack(xs, dim=1).cpu().numpy().astype(np.float64)
            U = torch.stack(us, dim=1).cpu().numpy().astype(np.float64)
        return X, U

    def jacobians(self, states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        x, u = self._tensor(states), self._tensor(actions)
        out, vjp = torch.func.vjp(self.fn, x, u)
        if out.shape != x.shape:
            raise ValueError(f"model returned shape {tuple(out.shape)} for states {tuple(x.shape)}")
        n, T = self.state_size, states.shape[0]
        basis = torch.eye(n, dtype=self.dtype, device=self.device)[:, None, :].expand(n, T, n)
        gx, gu = torch.func.vmap(vjp)(basis)  # (n_out, T, n), (n_out, T, m)
        fx = gx.permute(1, 0, 2).detach().cpu().numpy().astype(np.float64)
        fu = gu.permute(1, 0, 2).detach().cpu().numpy().astype(np.float64)
        return fx, fu


__all__ = [
    "CasadiDynamics",
    "DifferentiableDynamics",
    "MujocoDynamics",
    "MujocoJacobian",
    "TorchDynamics",
]
