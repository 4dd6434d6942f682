"""Infinite-horizon LQR around an equilibrium, as a ``Policy``: the balance controller.

``LQRController.around(dynamics, x_eq, u_eq, Q, R, ...)`` linearises any
``DifferentiableDynamics`` at the equilibrium (its Jacobians there), solves the discrete
algebraic Riccati equation and acts ``u = clip(u_eq + K (x - x_eq))``. Angle coordinates can
be wrapped so that a pole at θ = π and θ = -π is the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from robot_rl.arrays import wrap_angle
from robot_rl.controllers.derivatives import DifferentiableDynamics
from robot_rl.controllers.lqr import infinite_horizon_lqr
from robot_rl.controllers.receding_horizon import ActionScaling


class LQRController:
    """``u = clip(u_eq + K (x - x_eq), low, high)``, mapped to normalised env actions.

    Args:
        K: (m, n) gain.
        x_eq: (n,) and u_eq: (m,) the equilibrium, planner units.
        state_fn: observation -> state (n,).
        scaling: planner control -> normalised action (its range also clips u).
        wrap: state indices whose error is wrapped to [-π, π).
    """

    def __init__(
        self,
        K: np.ndarray,
        x_eq: np.ndarray,
        u_eq: np.ndarray,
        state_fn: Callable[[np.ndarray], np.ndarray],
        scaling: ActionScaling,
        wrap: Sequence[int] = (),
    ) -> None:
        self.K = np.asarray(K, dtype=np.float64)
        self.x_eq = np.asarray(x_eq, dtype=np.float64)
        self.u_eq = np.asarray(u_eq, dtype=np.float64)
        m, n = self.K.shape
        if self.x_eq.shape != (n,) or self.u_eq.shape != (m,):
            raise ValueError(f"K is {self.K.shape}: need x_eq ({n},) and u_eq ({m},)")
        self.state_fn, self.scaling, self.wrap = state_fn, scaling, tuple(wrap)

    @classmethod
    def around(
        cls,
        dynamics: DifferentiableDynamics,
        x_eq: np.ndarray,
        u_eq: np.ndarray,
        Q: np.ndarray,
        R: np.ndarray,
        state_fn: Callable[[np.ndarray], np.ndarray],
        scaling: ActionScaling,
        wrap: Sequence[int] = (),
    ) -> LQRController:
        """The DARE gain of ``dynamics`` linearised at ``(x_eq, u_eq)``.

        Raises:
            ValueError: when ``x_eq`` is not an equilibrium (``f(x_eq, u_eq) != x_eq``) or
                the linearisation is not stabilisable.
        """
        x_eq, u_eq = np.asarray(x_eq, dtype=np.float64), np.asarray(u_eq, dtype=np.float64)
        drift = dynamics.step(x_eq[None], u_eq[None])[0] - x_eq
        if np.abs(drift).max() > 1e-6 * (1 + np.abs(x_eq).max()):
            raise ValueError(f"({x_eq}, {u_eq}) is not an equilibrium: f(x, u) - x = {drift}")
        fx, fu = dynamics.jacobians(x_eq[None], u_eq[None])
        gain = infinite_horizon_lqr(fx[0], fu[0], Q, R).K
        return cls(gain, x_eq, u_eq, state_fn, scaling, wrap)

    def reset(self) -> None:
        if hasattr(self.state_fn, "reset"):
            self.state_fn.reset()

    def control(self, obs: np.ndarray) -> np.ndarray:
        """The control (m,) for ``obs``, planner units, within the scaling's range."""
        error = np.asarray(self.state_fn(obs), dtype=np.float64) - self.x_eq
        for i in self.wrap:
            error[i] = wrap_angle(np, error[i])
        return np.clip(self.u_eq + self.K @ error, self.scaling.low, self.scaling.high)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.scaling.to_action(self.control(obs)).astype(np.float32)
