"""The main job's configuration: one frozen dataclass per stage, with an embedded default.

``robot-rl run`` with no arguments runs ``RunConfig()``: PETS on the MuJoCo cart-pole with
domain randomization, evaluated over randomized draws, deployed to a PyBullet robot server
with a reality gap, identified, re-planned and reported. ``robot-rl run --config FILE`` reads
YAML or TOML into the same classes (``robot_rl.config.build``), so a bad key, type or value is
rejected before anything runs, naming the field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from robot_rl.agents.pets import ModelConfig, PlannerConfig

import robot_rl
from robot_rl.envs import Engine
from robot_rl.envs.randomization import PARAMETER_NAMES
from robot_rl.models.sysid import FITTABLE


class RobotBackend(enum.Enum):
    """What stands in for the real robot in the deploy stage."""

    NETWORK = "network"  # a robot server in its own process, over authenticated ZeroMQ
    SIM = "sim"  # a simulated robot in this process (no network)


@dataclass(frozen=True)
class CollectConfig:
    """Stage 1: data from random actions in simulation."""

    episodes: int = 1
    """Episodes of uniform random actions."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"collect.episodes must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class LearnConfig:
    """Stage 2: PETS (refit the ensemble, plan with MPC) until the task succeeds."""

    max_episodes: int = 10
    """Budget: episodes in all (the collect stage's included)."""
    successes: int = 1
    """Stop after this many consecutive successful episodes."""
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        if self.max_episodes < 2:
            raise ValueError(f"learn.max_episodes must be >= 2, got {self.max_episodes}")
        if self.successes < 1:
            raise ValueError(f"learn.successes must be >= 1, got {self.successes}")


@dataclass(frozen=True)
class EvaluateConfig:
    """Stage 3: the learned controller in simulation over randomized parameter draws."""

    episodes: int = 6
    """Episodes, each with its own draw of the domain parameters."""
    workers: int = 1
    """Parallel workers (more than 1 runs on Ray: a local instance or ``ray_address``)."""
    ray_address: str | None = None
    """An existing Ray cluster to run on (None: local)."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.workers < 1:
            raise ValueError("evaluate.episodes and evaluate.workers must be >= 1")


@dataclass(frozen=True)
class RobotConfig:
    """Stage 4: the stand-in real robot, and how it differs from the simulator.

    The reality gap scales the robot's link masses one by one (in the order ``robot-rl envs``
    prints) and adds joint damping; identification then tries to recover them.
    """

    backend: RobotBackend = RobotBackend.NETWORK
    """Networked robot server (authenticated) or an in-process simulated robot."""
    engine: Engine = Engine.PYBULLET
    """Engine of the stand-in robot."""
    link_mass_scales: tuple[float, ...] = (1.1, 1.3)
    """Each link's mass on the robot relative to the simulator's."""
    damping_add: tuple[float, ...] = (0.05, 0.005)
    """Joint damping the robot has on top of the simulator's, per joint (N·s/m or N·m·s/rad)."""
    episodes: int = 1
    """Episodes per deployment."""
    watchdog_cycles: int = 5
    """Missed control cycles before the robot's watchdog stops it."""

    def __post_init__(self) -> None:
        if any(s <= 0 for s in self.link_mass_scales):
            raise ValueError("robot.link_mass_scales must be positive")
        if any(d < 0 for d in self.damping_add):
            raise ValueError("robot.damping_add must be >= 0")
        if self.episodes < 1 or self.watchdog_cycles < 1:
            raise ValueError("robot.episodes and robot.watchdog_cycles must be >= 1")


@dataclass(frozen=True)
class IdentifyConfig:
    """Stage 5: fit the simulator's parameters to the deployment record, re-plan with them."""

    fit: tuple[str, ...] = ("link_masses", "joint_damping")
    """Domain parameters to fit (a subset of link_masses, joint_damping, actuator_strength)."""
    segment_steps: int = 10
    """Control steps per multiple-shooting segment."""

    def __post_init__(self) -> None:
        unknown = set(self.fit) - set(FITTABLE)
        if unknown or not self.fit:
            raise ValueError(f"identify.fit must be a non-empty subset of {list(FITTABLE)}")
        if self.segment_steps < 1:
            raise ValueError("identify.segment_steps must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """The whole sim-to-real loop."""

    env: str = "robot_rl/CartpoleSwingup-v0"
    """Env id (``robot-rl envs``)."""
    engine: Engine = Engine.MUJOCO
    """Simulation engine for collecting, learning and evaluating."""
    seed: int = 0
    """Seed of every stage."""
    randomize: bool = True
    """Domain randomization while learning and evaluating."""
    randomization: dict[str, dict[str, float | str]] | None = None
    """A custom randomization table (parameter -> {low, high, distribution, relation});
    None: the env's default table."""
    threads: int = 1
    """Torch threads for learning and planning."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    learn: LearnConfig = field(default_factory=LearnConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    identify: IdentifyConfig = field(default_factory=IdentifyConfig)

    def __post_init__(self) -> None:
        robot_rl.envs.env_entry(self.env)  # an unknown id fails here, naming the known ones
        if self.threads < 1:
            raise ValueError("threads must be >= 1")
        if self.collect.episodes >= self.learn.max_episodes:
            raise ValueError("learn.max_episodes must exceed collect.episodes")
        if self.randomization is not None:
            unknown = set(self.randomization) - set(PARAMETER_NAMES)
            if unknown:
                raise ValueError(
                    f"randomization.{sorted(unknown)[0]}: unknown parameter; known: {PARAMETER_NAMES}"
                )
