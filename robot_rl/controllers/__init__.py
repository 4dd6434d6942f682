"""Planners and feedback controllers: sampling-based optimisers and receding-horizon MPC."""

from robot_rl.controllers.mpc import MPC, DynamicsEvaluator, PlanStats, TrajectoryEvaluator
from robot_rl.controllers.optimizers import (
    CEM,
    ICEM,
    MPPI,
    Objective,
    Optimizer,
    RandomShooting,
    Solution,
    colored_noise,
)

__all__ = [
    "CEM",
    "ICEM",
    "MPC",
    "MPPI",
    "DynamicsEvaluator",
    "Objective",
    "Optimizer",
    "PlanStats",
    "RandomShooting",
    "Solution",
    "TrajectoryEvaluator",
    "colored_noise",
]
