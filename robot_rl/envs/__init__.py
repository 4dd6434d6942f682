"""Simulated robots and tasks on MuJoCo and PyBullet behind the gymnasium API.

``make(id, engine=..., randomization=...)`` builds any registered env; ``registered_envs()``
lists them.
"""

from robot_rl.envs import tables
from robot_rl.envs.env import EnvState, Randomization, RobotEnv, make_physics, parse_engine
from robot_rl.envs.physics.base import Engine, JointConfiguration, Physics
from robot_rl.envs.randomization import (
    PARAMETER_NAMES,
    Distribution,
    DomainParams,
    ParamDistribution,
    Relation,
    sample_domain_params,
    table_from_dict,
    table_to_dict,
)
from robot_rl.envs.registry import EnvEntry, env_entry, make, register, registered_envs
from robot_rl.envs.tasks.base import Task
from robot_rl.envs.tasks.locomotion import QuadrupedWalk
from robot_rl.envs.tasks.reaching import ArmReach, ReacherTwoLink
from robot_rl.envs.tasks.swingup import CartpoleSwingup, PendulumSwingup

register(EnvEntry("robot_rl/PendulumSwingup-v0", PendulumSwingup, tables.PENDULUM))
register(EnvEntry("robot_rl/CartpoleSwingup-v0", CartpoleSwingup, tables.CARTPOLE))
register(EnvEntry("robot_rl/ReacherTwoLink-v0", ReacherTwoLink, tables.REACHER))
register(EnvEntry("robot_rl/ArmReach-v0", ArmReach, tables.ARM))
register(EnvEntry("robot_rl/QuadrupedWalk-v0", QuadrupedWalk, tables.QUADRUPED))

__all__ = [
    "PARAMETER_NAMES",
    "ArmReach",
    "CartpoleSwingup",
    "Distribution",
    "DomainParams",
    "Engine",
    "EnvEntry",
    "EnvState",
    "JointConfiguration",
    "ParamDistribution",
    "PendulumSwingup",
    "Physics",
    "QuadrupedWalk",
    "Randomization",
    "ReacherTwoLink",
    "Relation",
    "RobotEnv",
    "Task",
    "env_entry",
    "make",
    "make_physics",
    "parse_engine",
    "register",
    "registered_envs",
    "sample_domain_params",
    "table_from_dict",
    "table_to_dict",
]
