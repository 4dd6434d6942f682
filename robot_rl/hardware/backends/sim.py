"""A simulated robot: any robot_rl env, on either engine, behind the ``RobotInterface``.

The same deployment code then runs against MuJoCo, PyBullet, or (through the robot server)
a simulated robot in another process. Each ``write`` is one robot cycle: the command, in the
robot's command mode and physical units, becomes the env's normalised action
(``(command - mid) / half``) and the env steps once. A ``RealityGap`` makes the simulated
robot differ from its nominal model -- masses, actuator strength, damping, actuation latency,
observation noise -- through the env's own domain parameters (``DomainParams``), as a
stand-in for the gap between a model and the real robot. Observation noise is on the task
observation (what the policy sees); joint readings are the simulator's.

Time is simulated: a ``SimRobot`` runs as fast as it is written to. The robot server paces
one in real time.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import mujoco
import numpy as np

import robot_rl
from robot_rl.envs.env import RobotEnv
from robot_rl.envs.physics.base import Engine
from robot_rl.envs.physics.mujoco import build_spec
from robot_rl.envs.randomization import DomainParams
from robot_rl.envs.robots.description import RobotDescription
from robot_rl.hardware.description import RobotSpec, spec_from_robot
from robot_rl.hardware.interface import BaseState, RobotInterface, RobotState
from robot_rl.hardware.safety import safe_command


@dataclass(frozen=True)
class RealityGap:
    """How a simulated robot differs from its nominal model (fixed for every episode).

    The scale and damping fields take one value for every link, actuator or joint, or one
    per element (in ``DomainParams`` order: ``robot-rl envs`` lists the links), so a gap can
    make one link heavier than the model believes and not another.
    """

    mass_scale: tuple[float, ...] = (1.0,)
    """Link masses (and inertias) times this: one factor, or one per link."""
    strength_scale: tuple[float, ...] = (1.0,)
    """Actuator forces (and force limits) times this: one factor, or one per actuator."""
    damping_scale: tuple[float, ...] = (1.0,)
    """Joint damping times this: one factor, or one per joint."""
    damping_add: tuple[float, ...] = (0.0,)
    """Added joint damping, N·m·s/rad or N·s/m: one value, or one per joint."""
    latency: float = 0.0
    """Actuation latency, s (applied at physics-step resolution)."""
    obs_noise: float = 0.0
    """Standard deviation of the Gaussian noise on observations (observation units)."""

    def __post_init__(self) -> None:
        for name in ("mass_scale", "strength_scale", "damping_scale", "damping_add"):
            value = getattr(self, name)
            if isinstance(value, int | float):  # a single number for every element
                object.__setattr__(self, name, (float(value),))
            value = getattr(self, name)
            if not value:
                raise ValueError(f"{name} needs at least one value")
            if name == "damping_add":
                if any(v < 0 for v in value):
                    raise ValueError(f"damping_add must be >= 0, got {value}")
            elif not all(v > 0 for v in value):
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("latency", "obs_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def apply(self, nominal: DomainParams) -> DomainParams:
        """The domain parameters of the gapped robot.

        Raises:
            ValueError: a per-element field has the wrong length for this robot.
        """

        def per(name: str, size: int) -> np.ndarray:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.size not in (1, size):
                raise ValueError(
                    f"reality gap {name} has {value.size} values; this robot needs 1 or {size}"
                )
            return value

        return nominal.replace(
            link_masses=nominal.link_masses * per("mass_scale", nominal.link_masses.size),
            actuator_strength=nominal.actuator_strength
            * per("strength_scale", nominal.actuator_strength.size),
            joint_damping=nominal.joint_damping * per("damping_scale", nominal.joint_damping.size)
            + per("damping_add", nominal.joint_damping.size),
            latency=self.latency,
            obs_noise=self.obs_noise,
        )


REST_SPEED = 1e-3
"""Actuated joints slower than this (rad/s or m/s) count as at rest after a safe stop."""


def actuated_inertia(robot: RobotDescription) -> np.ndarray:
    """(n_act,) inertia each actuator drives at the robot's rest configuration, kg or kg·m²:
    the diagonal of MuJoCo's joint-space mass matrix (the same for either engine, which load
    the same URDF)."""
    model = build_spec(robot).compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    mass = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, mass)
    dofs = [model.joint(a.joint).dofadr[0] for a in robot.actuators]
    return np.diag(mass)[dofs].copy()


class SimRobot(RobotInterface):
    """A robot_rl env as a robot.

    Args:
        env: the env (the robot owns it from now on and closes it at shutdown).
        task: the env id, reported in the spec so clients can score the task.
        period: the robot's control period, s, a multiple of the physics step (default: the
            task's control period, the rate its policies are trained at).
        gap: fixed differences from the nominal robot (None: the env's own domain
            parameters, randomized or nominal).
        stop_time: longest a safe stop runs the safe behaviour for, s of simulated time.
        seed: seed of the first reset (at configure).
    """

    def __init__(
        self,
        env: RobotEnv,
        task: str = "",
        period: float | None = None,
        gap: RealityGap | None = None,
        stop_time: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.env = env
        self.task_id = task
        robot = env.task.robot
        self.period = env.task.control_dt if period is None else float(period)
        substeps = round(self.period / robot.timestep)
        if substeps < 1 or not math.isclose(substeps * robot.timestep, self.period, rel_tol=1e-9):
            raise ValueError(
                f"period {self.period} s is not a positive multiple of the physics step "
                f"{robot.timestep} s"
            )
        # One write is one robot cycle of `period` seconds: the env holds each action for
        # `substeps` physics steps (its own latency pipeline included).
        env.substeps = substeps
        self.gap = gap
        if gap is not None:
            env.set_domain_params(gap.apply(env.nominal_params))
        if stop_time <= 0:
            raise ValueError(f"stop_time must be positive, got {stop_time}")
        self.stop_time = stop_time
        self.seed = seed
        self._obs = np.zeros(env.task.observation_size, dtype=np.float32)
        self._steps = 0
        self._applied = np.zeros(robot.action_size)
        self._act_index = robot.actuator_joint_index()

    @classmethod
    def make(
        cls,
        env_id: str,
        engine: Engine | str = Engine.MUJOCO,
        randomization: bool | None = None,
        **kwargs: Any,
    ) -> SimRobot:
        """``SimRobot(robot_rl.make(env_id, engine, randomization), task=env_id, **kwargs)``."""
        env = robot_rl.make(env_id, engine=engine, randomization=randomization)
        return cls(env, task=env_id, **kwargs)

    # -- lifecycle hooks ----------------------------------------------------------------------------
    def _on_configure(self) -> RobotSpec:
        self._reset(self.seed, None)
        return spec_from_robot(
            self.env.task.robot,
            self.period,
            observation_size=self.env.task.observation_size,
            task=self.task_id,
            inertia=actuated_inertia(self.env.task.robot),
        )

    def _start_episode(self, seed: int | None, task_state: np.ndarray | None) -> RobotState:
        self._reset(seed, task_state)
        return self._read()

    def _on_shutdown(self) -> None:
        self.env.close()

    def describe(self) -> dict[str, str | float | int]:
        facts: dict[str, Any] = {
            "engine": self.env.engine.value,
            "task": self.task_id,
            "period": self.period,
        }
        if self.gap is not None:
            facts["reality_gap"] = json.dumps(asdict(self.gap))
        return facts

    # -- I/O ------------------------------------------------------------------------------------------
    def _reset(self, seed: int | None, task_state: np.ndarray | None) -> None:
        options = None if task_state is None else {"task_state": task_state}
        self._obs, _ = self.env.reset(seed=seed, options=options)
        self._steps = 0
        robot = self.env.task.robot
        self._applied = 0.5 * (robot.ctrl_low + robot.ctrl_high)  # the env's neutral action

    def _read(self) -> RobotState:
        physics = self.env.physics
        m = physics.measure()
        effort = np.zeros(len(m["qpos"]))
        effort[self._act_index] = physics.actuator_efforts()
        base = None
        if "base_pos" in m:
            base = BaseState(m["base_pos"], m["base_quat"], m["base_linvel"], m["base_angvel"])
        return RobotState(
            time=self._steps * self.period,
            seq=self._steps,
            position=m["qpos"],
            velocity=m["qvel"],
            effort=effort,
            observation=self._obs.copy(),
            base=base,
            applied=self._applied.copy(),
        )

    def _write(self, command: np.ndarray) -> None:
        action = np.clip(self.spec.action_from_command(command), -1.0, 1.0)
        self._obs, *_ = self.env.step(action)
        self._applied = command.copy()
        self._steps += 1

    def _safe_stop(self) -> None:
        hold = None
        for _ in range(max(1, round(self.stop_time / self.period))):
            state = self._read()
            if hold is None:
                hold = state.position[self._act_index]
            elif np.all(np.abs(state.velocity[self._act_index]) < REST_SPEED):
                break
            self._write(safe_command(self.spec, state, hold))
