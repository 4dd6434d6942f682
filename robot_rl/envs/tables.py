"""The default domain-randomization table of each env.

Ranges follow common sim-to-real practice: ±20 % masses, ±30 % friction, damping between
half and double, ±20 % actuator strength, ±2 % gravity, up to one physics-step-resolution
latency of 20 ms, small observation noise and occasional pushes.
"""

from __future__ import annotations

from robot_rl.envs.env import Randomization
from robot_rl.envs.randomization import Distribution, ParamDistribution, Relation


def _table(
    *,
    damping: ParamDistribution,
    push: float,
    noise: float,
    latency: float = 0.02,
    friction: bool = False,
) -> Randomization:
    table = {
        "link_masses": ParamDistribution(0.8, 1.2),
        "joint_damping": damping,
        "actuator_strength": ParamDistribution(0.8, 1.2),
        "gravity": ParamDistribution(0.98, 1.02),
        "latency": ParamDistribution(0.0, latency, relation=Relation.OFFSET),
        "obs_noise": ParamDistribution(0.0, noise, relation=Relation.OFFSET),
        "push_force": ParamDistribution(0.0, push, relation=Relation.OFFSET),
    }
    if friction:
        table["friction"] = ParamDistribution(0.7, 1.3)
    return Randomization(table)


# A frictionless default cannot be scaled, so damping is added on top of it instead.
_ADDED_DAMPING = ParamDistribution(0.0, 0.02, relation=Relation.OFFSET)
_SCALED_DAMPING = ParamDistribution(0.5, 2.0, Distribution.LOG_UNIFORM)

PENDULUM = _table(damping=_SCALED_DAMPING, push=1.0, noise=0.01)
CARTPOLE = _table(damping=_ADDED_DAMPING, push=0.5, noise=0.01)
REACHER = _table(damping=_SCALED_DAMPING, push=0.05, noise=0.002)
ARM = _table(damping=_SCALED_DAMPING, push=5.0, noise=0.002)
QUADRUPED = _table(damping=_ADDED_DAMPING, push=20.0, noise=0.01, friction=True)
