"""Planners and feedback controllers.

Gradient-based trajectory optimisation (iLQR / box-constrained DDP, CasADi NMPC) and LQR share
one Riccati backward pass (``riccati_backward``), which guided policy search reuses too.
"""

from robot_rl.controllers.lqr import (
    BackwardPass,
    BackwardStatus,
    LQRSolution,
    Regularization,
    finite_horizon_lqr,
    infinite_horizon_lqr,
    riccati_backward,
)

__all__ = [
    "BackwardPass",
    "BackwardStatus",
    "LQRSolution",
    "Regularization",
    "finite_horizon_lqr",
    "infinite_horizon_lqr",
    "riccati_backward",
]
