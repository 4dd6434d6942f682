"""Guided policy search: local linear-Gaussian controllers teach a global neural policy.

Mirror-descent GPS (``GPS``): time-varying linear-Gaussian dynamics fitted with a Gaussian-
mixture prior (``fit_dynamics``, ``DynamicsPrior``), a KL-constrained LQR C-step on the shared
Riccati pass (``c_step``), a precision-weighted S-step (``s_step``) and step sizes adapted
from predicted against actual improvement. The trained ``GPSPolicy`` satisfies the Policy
contract, saves through ``robot_rl.checkpoint`` and exports to TorchScript.
"""

from robot_rl.agents.gps.algorithm import GPS, GPSConfig, IterationLog, Sampling, StepRule
from robot_rl.agents.gps.conditions import evaluate_on_goals, held_out_goals, spread_goals
from robot_rl.agents.gps.cost import QuadraticCost, ReachingCost, reaching_cost
from robot_rl.agents.gps.cstep import CStepResult, CStepStatus, c_step, kl_constrained_lqr
from robot_rl.agents.gps.dynamics import DynamicsPrior, FitReport, fit_dynamics
from robot_rl.agents.gps.errors import NumericalError
from robot_rl.agents.gps.features import Features, make_features
from robot_rl.agents.gps.linear_gaussian import (
    LinearGaussianController,
    LinearGaussianDynamics,
    TrajectoryDistribution,
    forward,
    kl_divergence,
)
from robot_rl.agents.gps.policy import GaussianPolicy, GPSPolicy
from robot_rl.agents.gps.sstep import SStepReport, s_step

__all__ = [
    "GPS",
    "CStepResult",
    "CStepStatus",
    "DynamicsPrior",
    "Features",
    "FitReport",
    "GPSConfig",
    "GPSPolicy",
    "GaussianPolicy",
    "IterationLog",
    "LinearGaussianController",
    "LinearGaussianDynamics",
    "NumericalError",
    "QuadraticCost",
    "ReachingCost",
    "SStepReport",
    "Sampling",
    "StepRule",
    "TrajectoryDistribution",
    "c_step",
    "evaluate_on_goals",
    "fit_dynamics",
    "forward",
    "held_out_goals",
    "kl_constrained_lqr",
    "kl_divergence",
    "make_features",
    "reaching_cost",
    "s_step",
    "spread_goals",
]
