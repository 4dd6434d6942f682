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
from robot_rl.controllers.models import REFERENCE_CARTPOLE, Cartpole, rk4, rk4_quadrature

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
