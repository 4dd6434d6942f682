"""Planners and feedback controllers.

Gradient-based trajectory optimisation (iLQR / box-constrained DDP, CasADi NMPC) and LQR share
one Riccati backward pass (``riccati_backward``), which guided policy search reuses too.
Dynamics and their derivatives come from analytic CasADi models, the MuJoCo simulator or
torch models behind one interface (``DifferentiableDynamics``); costs are named CasADi terms
(``Cost``); ``TrajOptMPC`` runs any of the optimisers as a receding-horizon ``Policy``, and
``make_mpc`` builds one for the swing-up and arm-reaching envs.

Sampling-based optimisers (CEM, iCEM, MPPI, random shooting) search over (batch, horizon,
action) tensors; ``MPC`` runs one as a receding-horizon ``Policy`` against anything that
scores action sequences: a learned ensemble (``robot_rl.models.ModelEnv``), the true
simulator (``robot_rl.models.SimulatorDynamics``) or any batched ``Dynamics``
(``DynamicsEvaluator``).
"""

from robot_rl.controllers.costs import Cost, CostDerivatives, quadratic
from robot_rl.controllers.derivatives import (
    CasadiDynamics,
    DifferentiableDynamics,
    MujocoDynamics,
    MujocoJacobian,
    TorchDynamics,
)
from robot_rl.controllers.ilqr import (
    ILQR,
    ILQRSettings,
    IterationLog,
    LineSearch,
    SolverStatus,
    TrajectoryResult,
)
from robot_rl.controllers.kinematics import site_position
from robot_rl.controllers.lqr import (
    BackwardPass,
    BackwardStatus,
    LQRSolution,
    Regularization,
    finite_horizon_lqr,
    infinite_horizon_lqr,
    riccati_backward,
)
from robot_rl.controllers.models import (
    REFERENCE_CARTPOLE,
    Cartpole,
    CartpoleParams,
    MechanicalModel,
    Pendulum,
    PendulumParams,
    rk4,
    rk4_quadrature,
    semi_implicit_euler,
)
from robot_rl.controllers.mpc import MPC, DynamicsEvaluator, PlanStats, TrajectoryEvaluator
from robot_rl.controllers.nmpc import NMPC, NLPSolver, PathConstraint
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
from robot_rl.controllers.presets import PlannerKind, PlanningModel, make_mpc
from robot_rl.controllers.problems import (
    REFERENCE_OPTIMUM,
    Problem,
    SwingupObserver,
    cartpole_reference,
    cartpole_swingup_cost,
    pendulum_swingup_cost,
    reach_cost,
    swingup_cost,
)
from robot_rl.controllers.receding_horizon import (
    ActionScaling,
    MPCStep,
    TrajectoryOptimizer,
    TrajOptMPC,
)
from robot_rl.controllers.stabilizer import LQRController

__all__ = [
    "CEM",
    "ICEM",
    "ILQR",
    "MPC",
    "MPPI",
    "NMPC",
    "REFERENCE_CARTPOLE",
    "REFERENCE_OPTIMUM",
    "ActionScaling",
    "BackwardPass",
    "BackwardStatus",
    "Cartpole",
    "CartpoleParams",
    "CasadiDynamics",
    "Cost",
    "CostDerivatives",
    "DifferentiableDynamics",
    "DynamicsEvaluator",
    "ILQRSettings",
    "IterationLog",
    "LQRController",
    "LQRSolution",
    "LineSearch",
    "MPCStep",
    "MechanicalModel",
    "MujocoDynamics",
    "MujocoJacobian",
    "NLPSolver",
    "Objective",
    "Optimizer",
    "PathConstraint",
    "Pendulum",
    "PendulumParams",
    "PlanStats",
    "PlannerKind",
    "PlanningModel",
    "Problem",
    "RandomShooting",
    "Regularization",
    "Solution",
    "SolverStatus",
    "SwingupObserver",
    "TorchDynamics",
    "TrajOptMPC",
    "TrajectoryEvaluator",
    "TrajectoryOptimizer",
    "TrajectoryResult",
    "cartpole_reference",
    "cartpole_swingup_cost",
    "colored_noise",
    "finite_horizon_lqr",
    "infinite_horizon_lqr",
    "make_mpc",
    "pendulum_swingup_cost",
    "quadratic",
    "reach_cost",
    "riccati_backward",
    "rk4",
    "rk4_quadrature",
    "semi_implicit_euler",
    "site_position",
    "swingup_cost",
]
