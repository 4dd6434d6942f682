"""Ready-to-run MPC planners for the envs: model, cost, observer and settings in one call.

``make_mpc(env, ...)`` builds a ``TrajOptMPC`` for the swing-up and arm-reaching envs with
derivatives from an analytic CasADi model (``PlanningModel.ANALYTIC``, pendulum and
cart-pole) or from the simulator itself (``PlanningModel.SIMULATOR``, MuJoCo envs), solved by
iLQR or, on analytic models, by NMPC. Planners observe the env like any policy: the state is
read from the observation (pole angles unwrapped, the arm's joint positions and velocities),
never from the env's simulator; the simulator planner runs on its own copy of the robot at
its nominal physical parameters.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from robot_rl.controllers.derivatives import CasadiDynamics, MujocoDynamics
from robot_rl.controllers.ilqr import ILQR, ILQRSettings, LineSearch
from robot_rl.controllers.models import (
    Cartpole,
    MechanicalModel,
    Pendulum,
    cartpole_params,
    pendulum_params,
    rk4,
)
from robot_rl.controllers.nmpc import NMPC, NLPSolver
from robot_rl.controllers.problems import (
    SwingupObserver,
    cartpole_swingup_cost,
    pendulum_swingup_cost,
    reach_cost,
)
from robot_rl.controllers.receding_horizon import ActionScaling, TrajOptMPC
from robot_rl.envs import ArmReach, CartpoleSwingup, DomainParams, Engine, PendulumSwingup


class PlanningModel(enum.Enum):
    """Where the planner's dynamics and derivatives come from."""

    ANALYTIC = "analytic"  # CasADi model (RK4 at the control step), exact derivatives
    SIMULATOR = "simulator"  # the MuJoCo simulator at nominal parameters, finite differences


class PlannerKind(enum.Enum):
    """The trajectory optimiser run in the receding horizon."""

    ILQR = "ilqr"
    NMPC = "nmpc"


SUPPORTED_ENVS = (
    "robot_rl/PendulumSwingup-v0",
    "robot_rl/CartpoleSwingup-v0",
    "robot_rl/ArmReach-v0",
)
ANALYTIC_ENVS = ("robot_rl/PendulumSwingup-v0", "robot_rl/CartpoleSwingup-v0")
"""The envs with an analytic CasADi model (``PlanningModel.ANALYTIC``)."""
_DEFAULT_HORIZON = {PendulumSwingup: 60, CartpoleSwingup: 40, ArmReach: 30}


def _arm_state(obs: np.ndarray) -> np.ndarray:
    """``robot_rl/ArmReach-v0`` observation -> (q, q̇), (14,)."""
    return np.asarray(obs[:14], dtype=np.float64)


def _arm_target(obs: np.ndarray) -> np.ndarray:
    """``robot_rl/ArmReach-v0`` observation -> target position (3,), m."""
    return np.asarray(obs[17:20], dtype=np.float64)


def make_mpc(
    env: Any,
    model: PlanningModel = PlanningModel.ANALYTIC,
    planner: PlannerKind = PlannerKind.ILQR,
    horizon: int | None = None,
    first_iterations: int = 100,
    warm_iterations: int = 10,
    nlp_solver: NLPSolver = NLPSolver.FATROP,
    params: DomainParams | None = None,
) -> TrajOptMPC:
    """An MPC controller for ``env`` (one of ``SUPPORTED_ENVS``).

    Args:
        env: the env the controller will act in (read for its id, robot, engine and control
            step; never stepped or reset here).
        model: analytic model or simulator derivatives.
        planner: iLQR or NMPC (NMPC needs an analytic model).
        horizon: planning steps (default per env: pendulum 60, cart-pole 40, arm 30).
        first_iterations: iteration budget of the first, cold solve of an episode.
        warm_iterations: iteration budget of each warm-started re-solve.
        nlp_solver: NMPC's NLP solver.
        params: the physical parameters the planner's model assumes, e.g. identified ones
            (default: the robot's nominal parameters).

    Raises:
        ValueError: for an unsupported env or combination.
    """
    base = env.unwrapped
    task = getattr(base, "task", None)
    kind = type(task)
    if kind not in _DEFAULT_HORIZON:
        raise ValueError(
            f"no MPC preset for a {kind.__name__} env; supported: {', '.join(SUPPORTED_ENVS)}"
        )
    model, planner = PlanningModel(model), PlannerKind(planner)
    horizon = _DEFAULT_HORIZON[kind] if horizon is None else horizon
    robot = base.task.robot
    scaling = ActionScaling.from_env(base)
    if model is PlanningModel.SIMULATOR and base.engine is not Engine.MUJOCO:
        raise ValueError("simulator derivatives need a MuJoCo env (engine='mujoco')")
    if planner is PlannerKind.NMPC and model is not PlanningModel.ANALYTIC:
        raise ValueError("NMPC needs an analytic model")

    if kind is ArmReach:
        if model is PlanningModel.ANALYTIC:
            raise ValueError("the arm has no analytic model here; use the simulator")
        cost = reach_cost(robot, "ee")
        state_fn, parameters_fn = _arm_state, _arm_target
        analytic: MechanicalModel | None = None
    elif kind is CartpoleSwingup:
        analytic = Cartpole() if params is None else Cartpole(cartpole_params(params))
        cost = cartpole_swingup_cost(analytic)
        state_fn, parameters_fn = SwingupObserver.cartpole(), None
    else:
        analytic = Pendulum() if params is None else Pendulum(pendulum_params(params))
        cost = pendulum_swingup_cost(analytic)
        state_fn, parameters_fn = SwingupObserver.pendulum(), None

    low, high = robot.ctrl_low, robot.ctrl_high
    if planner is PlannerKind.NMPC:
        optimizer: Any = NMPC(
            rk4(analytic, base.task.control_dt), cost, horizon, low, high, solver=nlp_solver
        )
    elif model is PlanningModel.ANALYTIC:
        dynamics = CasadiDynamics(rk4(analytic, base.task.control_dt))
        optimizer = ILQR(dynamics, cost, horizon, low, high, ILQRSettings())
    else:
        settings = ILQRSettings(line_search=LineSearch.BACKTRACKING)
        dynamics = MujocoDynamics.from_env(base, params=params)
        optimizer = ILQR(dynamics, cost, horizon, low, high, settings)
    return TrajOptMPC(
        optimizer,
        state_fn,
        scaling,
        parameters_fn=parameters_fn,
        first_iterations=first_iterations,
        warm_iterations=warm_iterations,
    )
