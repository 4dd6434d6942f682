"""Ready-made optimal-control problems: the benchmark reference and the env swing-up costs.

``cartpole_reference`` is the reference problem of the trajectory-optimisation benchmark
(cart-pole swing-up, RK4 with zero-order hold, dt = 0.05 s, N = 100, |u| <= 5 N, running
cost integrated with the RK4 stage weights; box-constrained optimum ≈ 11.786).

The swing-up costs are written on the state (q, v) with the pole angle entering through
cos θ and sin θ, so they are periodic in θ and an MPC that re-plans from a wrapped angle sees
the same problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from robot_rl.controllers.costs import Cost, quadratic
from robot_rl.controllers.derivatives import CasadiDynamics
from robot_rl.controllers.kinematics import site_position
from robot_rl.controllers.models import (
    REFERENCE_CARTPOLE,
    Cartpole,
    MechanicalModel,
    Pendulum,
    rk4,
    rk4_quadrature,
)
from robot_rl.envs.robots.description import RobotDescription

REFERENCE_OPTIMUM = 11.786
"""Box-constrained optimum of the reference problem (IPOPT and fatrop agree: 11.78640)."""


@dataclass(frozen=True)
class Problem:
    """A finite-horizon optimal-control problem.

    Attributes:
        dynamics: the discrete model. cost: the trajectory cost. horizon: N controls.
        x0: (n,) start state. control_low, control_high: (m,) bounds.
        goal: (n,) the state the problem drives to (for reporting).
    """

    dynamics: CasadiDynamics
    cost: Cost
    horizon: int
    x0: np.ndarray
    control_low: np.ndarray
    control_high: np.ndarray
    goal: np.ndarray


def cartpole_reference(horizon: int = 100, dt: float = 0.05) -> Problem:
    """The benchmark's cart-pole swing-up (see the module docstring)."""
    model = Cartpole(REFERENCE_CARTPOLE)
    goal = np.array([0.0, np.pi, 0.0, 0.0])
    state_cost = quadratic([1.0, 1.0, 0.1, 0.1], goal)

    def rate(x: ca.SX, u: ca.SX) -> ca.SX:
        return state_cost(x) + 0.5 * 0.01 * ca.sumsqr(u)

    running = rk4_quadrature(model, rate, dt)
    cost = Cost(
        4,
        1,
        running={"stage": lambda x, u, p: running(x, u)},
        terminal={"final": lambda x, p: quadratic([100.0, 100.0, 10.0, 10.0], goal)(x)},
    )
    limit = model.control_limit
    return Problem(CasadiDynamics(rk4(model, dt)), cost, horizon, np.zeros(4), -limit, limit, goal)


# -- the envs' swing-up tasks ---------------------------------------------------------------------
class SwingupObserver:
    """Observation of a swing-up env -> planner state, with the pole angle unwrapped.

    The envs observe (cos θ, sin θ); ``atan2`` gives θ in (-π, π], which jumps by 2π as the
    pole passes upright. A receding-horizon planner compares the new state with its previous
    plan (warm start with feedback), so the angle is kept continuous across an episode:
    each new angle is the one nearest the previous. ``reset()`` starts a new episode.

    Args:
        cos_index, sin_index: where cos θ and sin θ are in the observation.
        layout: observation index of each state entry, with ``-1`` for θ; e.g. the
            cart-pole's (x, θ, ẋ, θ̇) is ``(0, -1, 3, 4)``.
    """

    def __init__(self, cos_index: int, sin_index: int, layout: tuple[int, ...]) -> None:
        if layout.count(-1) != 1:
            raise ValueError(f"layout must mark the angle with exactly one -1, got {layout}")
        self.cos_index, self.sin_index, self.layout = cos_index, sin_index, layout
        self._angle: float | None = None

    @classmethod
    def cartpole(cls) -> SwingupObserver:
        """``robot_rl/CartpoleSwingup-v0``: (x, cos θ, sin θ, ẋ, θ̇) -> (x, θ, ẋ, θ̇)."""
        return cls(1, 2, (0, -1, 3, 4))

    @classmethod
    def pendulum(cls) -> SwingupObserver:
        """``robot_rl/PendulumSwingup-v0``: (cos θ, sin θ, θ̇) -> (θ, θ̇)."""
        return cls(0, 1, (-1, 2))

    def reset(self) -> None:
        self._angle = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        angle = float(np.arctan2(obs[self.sin_index], obs[self.cos_index]))
        if self._angle is not None:
            angle = self._angle + float(
                np.remainder(angle - self._angle + np.pi, 2 * np.pi) - np.pi
            )
        self._angle = angle
        return np.array([angle if i < 0 else obs[i] for i in self.layout], dtype=np.float64)


def swingup_cost(
    model: MechanicalModel,
    angle_index: int,
    upright_weight: float,
    state_weights: np.ndarray,
    control_weight: float,
    terminal_scale: float,
    soft_limits: tuple[tuple[int, float, float], ...] = (),
) -> Cost:
    """Swing a pole up and hold it: ``w (1 + cos θ)`` (0 upright, 2w hanging) plus
    ½ Σ w_i x_i² over the other coordinates and ½ w_u u², with the terminal cost
    ``terminal_scale`` times the state part. Periodic in θ.

    ``soft_limits`` are (state index, limit, weight): a ``limit`` running term
    ``weight · max(|x_i| - limit, 0)²`` keeps a coordinate inside a band (iLQR has no state
    constraints; this is the penalty form).
    """
    n = model.state_size
    weights = np.asarray(state_weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"state_weights must have shape ({n},), got {weights.shape}")

    def state_part(x: ca.SX) -> ca.SX:
        rest = ca.vertcat(*(x[i] for i in range(n) if i != angle_index))
        w_rest = [weights[i] for i in range(n) if i != angle_index]
        return upright_weight * (1 + ca.cos(x[angle_index])) + quadratic(w_rest)(rest)

    def limit_part(x: ca.SX) -> ca.SX:
        return sum(w * ca.fmax(ca.fabs(x[i]) - lim, 0) ** 2 for i, lim, w in soft_limits)

    return Cost(
        n,
        model.n_u,
        running={
            "state": lambda x, u, p: state_part(x),
            "effort": lambda x, u, p: 0.5 * control_weight * ca.sumsqr(u),
            **({"limit": lambda x, u, p: limit_part(x)} if soft_limits else {}),
        },
        terminal={"final": lambda x, p: terminal_scale * state_part(x)},
    )


def cartpole_swingup_cost(model: MechanicalModel | None = None) -> Cost:
    """MPC cost for ``robot_rl/CartpoleSwingup-v0`` on the state (x, θ, ẋ, θ̇), u in N."""
    return swingup_cost(
        model or Cartpole(),
        angle_index=1,
        upright_weight=1.0,
        state_weights=np.array([0.2, 0.0, 0.05, 0.001]),
        control_weight=1e-3,
        terminal_scale=10.0,
        soft_limits=((0, 0.8, 100.0),),  # the env's safety band is |x| <= 1 m
    )


def pendulum_swingup_cost(model: MechanicalModel | None = None) -> Cost:
    """MPC cost for ``robot_rl/PendulumSwingup-v0`` on the state (θ, θ̇), u in N·m."""
    return swingup_cost(
        model or Pendulum(),
        angle_index=0,
        upright_weight=1.0,
        state_weights=np.array([0.0, 0.01]),
        control_weight=1e-3,
        terminal_scale=10.0,
    )


def reach_cost(
    robot: RobotDescription,
    site: str,
    position_weight: float = 10.0,
    velocity_weight: float = 0.01,
    control_weight: float = 0.01,
    terminal_scale: float = 10.0,
) -> Cost:
    """Bring ``site`` to a target: on the state (q, q̇) of a fixed-base arm, with the target
    position (3,) as the cost parameter. ``½ w_p |fk(q) - target|² + ½ w_v |q̇|² + ½ w_u |u|²``
    per step, ``terminal_scale`` times the state part at the end."""
    fk = site_position(robot, site)
    nq = len(robot.joints)

    def state_part(x: ca.SX, target: ca.SX) -> ca.SX:
        error = fk(x[:nq]) - target
        return 0.5 * position_weight * ca.sumsqr(error) + 0.5 * velocity_weight * ca.sumsqr(x[nq:])

    return Cost(
        2 * nq,
        robot.action_size,
        running={
            "state": lambda x, u, p: state_part(x, p),
            "effort": lambda x, u, p: 0.5 * control_weight * ca.sumsqr(u),
        },
        terminal={"final": lambda x, p: terminal_scale * state_part(x, p)},
        parameter_size=3,
    )
