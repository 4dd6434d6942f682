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

import robot_rl
from robot_rl.agents.pets import ModelConfig, PlannerConfig
from robot_rl.agents.sac import SACConfig
from robot_rl.envs import Engine
from robot_rl.envs.randomization import table_from_dict, validate_table
from robot_rl.hardware.backends.sim import RealityGap
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


LEAN_MODEL = ModelConfig(hidden=(128, 128, 128))
LEAN_PLANNER = PlannerConfig(horizon=20, iterations=2)
"""The compute-lean PETS of the main job: planning one cart-pole action takes about 25 ms on
one core of this machine (PETS' own defaults take about 75 ms), so the learned controller
keeps the robot's 20 Hz rate, with a time budget of 40 ms, while a robot server shares the
two cores. Measured on a learned cart-pole model over 6 randomized episodes: 3x200 units with
horizon 25 and 3 iCEM iterations took 74 ms per action; 3x128 units 46 ms; 3x128 with
horizon 20 and 2 iterations 25 ms, with the same returns."""


class Agent(enum.Enum):
    """What the learn stage trains, and so what the later stages evaluate and deploy."""

    PETS = "pets"
    """The dynamics ensemble, planned on with MPC (model-based)."""
    SAC = "sac"
    """Soft Actor-Critic (model-free): a neural policy."""


@dataclass(frozen=True)
class LearnConfig:
    """Stage 2: PETS (refit the ensemble, plan with MPC) until the task succeeds, or SAC for
    a budget of env steps."""

    agent: Agent = Agent.PETS
    """The learner."""
    max_episodes: int = 15
    """PETS' budget: episodes in all (the collect stage's included)."""
    successes: int = 2
    """PETS stops after this many consecutive successful episodes."""
    model: ModelConfig = field(default_factory=lambda: LEAN_MODEL)
    planner: PlannerConfig = field(default_factory=lambda: LEAN_PLANNER)
    sac_steps: int = 30_000
    """SAC's budget: env steps (the random warm-up's included)."""
    sac_eval_every: int = 5_000
    """SAC's learning curve: evaluate the deterministic policy every this many env steps."""
    sac: SACConfig = field(default_factory=lambda: SACConfig(hidden=(128, 128)))
    """SAC's hyperparameters (128x128 networks by default: fast on 2 cores)."""

    def __post_init__(self) -> None:
        if self.max_episodes < 2:
            raise ValueError(f"learn.max_episodes must be >= 2, got {self.max_episodes}")
        if self.successes < 1:
            raise ValueError(f"learn.successes must be >= 1, got {self.successes}")
        if self.sac_steps < 1 or self.sac_eval_every < 1:
            raise ValueError("learn.sac_steps and learn.sac_eval_every must be >= 1")


@dataclass(frozen=True)
class EvaluateConfig:
    """Stage 3: the learned controller in simulation over randomized parameter draws."""

    episodes: int = 8
    """Episodes, each with its own draw of the domain parameters."""
    workers: int = 1
    """Parallel workers (more than 1 runs on Ray: a local instance or ``ray_address``)."""
    ray_address: str | None = None
    """An existing Ray cluster to run on (None: local)."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.workers < 1:
            raise ValueError("evaluate.episodes and evaluate.workers must be >= 1")


DEFAULT_GAPS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "robot_rl/CartpoleSwingup-v0": ((1.1, 1.3), (0.05, 0.005)),
}
"""Env id -> (link mass scales, added joint damping) of the stand-in robot by default: for
the cart-pole a 10 % heavier cart, a 30 % heavier pole and damping the simulator lacks."""
GENERIC_GAP = ((1.2,), (0.02,))
"""The default gap of any other env: every link 20 % heavier, 0.02 damping on every joint."""


@dataclass(frozen=True)
class RobotConfig:
    """Stage 4: the stand-in real robot, and how it differs from the simulator.

    The reality gap scales the robot's link masses one by one (in the order ``robot-rl envs``
    prints) and adds joint damping; identification then tries to recover them. With an
    ``endpoint`` the job deploys to a robot server that is already running (yours, a real
    robot's) instead: the gap settings then play no part and its true parameters are unknown.
    """

    backend: RobotBackend = RobotBackend.NETWORK
    """Networked robot server (authenticated) or an in-process simulated robot."""
    endpoint: str | None = None
    """A running robot server to deploy to (``tcp://host:port``); None: start one for the run."""
    keys: str | None = None
    """Client key folder for ``endpoint`` (None: ``$ROBOT_RL_KEYS`` or ``~/.robot_rl/keys``)."""
    engine: Engine = Engine.PYBULLET
    """Engine of the stand-in robot."""
    link_mass_scales: tuple[float, ...] | None = None
    """Each link's mass on the robot relative to the simulator's (one value: every link);
    None: the env's entry in ``DEFAULT_GAPS``."""
    damping_add: tuple[float, ...] | None = None
    """Joint damping the robot has on top of the simulator's, per joint (one value: every
    joint), N·s/m or N·m·s/rad; None: the env's entry in ``DEFAULT_GAPS``."""
    episodes: int = 2
    """Episodes per deployment."""
    watchdog_cycles: int = 5
    """Missed control cycles before the robot's watchdog stops it."""

    def __post_init__(self) -> None:
        if self.link_mass_scales is not None and any(s <= 0 for s in self.link_mass_scales):
            raise ValueError("robot.link_mass_scales must be positive")
        if self.damping_add is not None and any(d < 0 for d in self.damping_add):
            raise ValueError("robot.damping_add must be >= 0")
        if self.episodes < 1 or self.watchdog_cycles < 1:
            raise ValueError("robot.episodes and robot.watchdog_cycles must be >= 1")
        if self.endpoint is not None and self.backend is not RobotBackend.NETWORK:
            raise ValueError("robot.endpoint needs robot.backend: network")


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
        nominal = robot_rl.make(self.env).nominal_params
        if self.randomization is not None:
            table = table_from_dict(self.randomization)  # names the entry at fault
            validate_table(table, nominal)
        try:
            self.reality_gap().apply(nominal)
        except ValueError as err:
            raise ValueError(f"robot.link_mass_scales / robot.damping_add: {err}") from err

    def reality_gap(self) -> RealityGap:
        """How the stand-in robot differs from the simulator (see ``RobotConfig``)."""
        masses, damping = DEFAULT_GAPS.get(self.env, GENERIC_GAP)
        robot = self.robot
        return RealityGap(
            mass_scale=masses if robot.link_mass_scales is None else robot.link_mass_scales,
            damping_add=damping if robot.damping_add is None else robot.damping_add,
        )
