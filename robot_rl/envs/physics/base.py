"""The interface both physics engines implement.

A ``Physics`` owns one simulated robot built from a ``RobotDescription``. It advances time
with a given actuator control, exposes named measurements (joint positions and velocities,
site positions, base pose and velocity), gets and sets its full state, applies domain
parameters and external pushes, and renders offscreen. Tasks read measurements; they never
talk to an engine.

Measurement names and units (world frame, quaternions as (w, x, y, z)):

- ``qpos`` (n_joints,) rad or m; ``qvel`` (n_joints,) rad/s or m/s
- ``{site}_pos`` (3,) m
- floating base only: ``base_pos`` (3,) m, ``base_quat`` (4,), ``base_linvel`` (3,) m/s of the
  root link frame's origin, ``base_angvel`` (3,) rad/s, ``base_axes`` (9,) the root link's
  x, y and z axes in world coordinates (the rows of Rᵀ, so ``axes.reshape(3, 3) @ v`` expresses
  a world vector v in the body frame)
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

import numpy as np

from robot_rl.envs.randomization import DomainParams
from robot_rl.envs.robots.description import ControlMode, RobotDescription


class Engine(enum.Enum):
    """The physics engines robot_rl runs on."""

    MUJOCO = "mujoco"
    PYBULLET = "pybullet"


@dataclass(frozen=True)
class Marker:
    """A visual-only sphere (a goal or target) that tasks move around; it never collides."""

    name: str
    radius: float = 0.02
    rgba: tuple[float, float, float, float] = (0.2, 0.8, 0.2, 0.8)


@dataclass(frozen=True)
class JointConfiguration:
    """A robot configuration in engine-independent terms (the measurement conventions above).

    ``base_*`` are ignored for fixed-base robots and default to the description's base pose
    at rest.
    """

    qpos: np.ndarray
    qvel: np.ndarray
    base_pos: np.ndarray | None = None
    base_quat: np.ndarray | None = None
    base_linvel: np.ndarray | None = None
    base_angvel: np.ndarray | None = None

    def filled(self, robot: RobotDescription) -> JointConfiguration:
        """This configuration with missing base fields from the description, at rest."""

        def pick(value: np.ndarray | None, default: tuple[float, ...]) -> np.ndarray:
            return np.asarray(default if value is None else value, dtype=np.float64)

        return JointConfiguration(
            qpos=np.asarray(self.qpos, dtype=np.float64),
            qvel=np.asarray(self.qvel, dtype=np.float64),
            base_pos=pick(self.base_pos, robot.base_position),
            base_quat=pick(self.base_quat, robot.base_orientation),
            base_linvel=pick(self.base_linvel, (0.0, 0.0, 0.0)),
            base_angvel=pick(self.base_angvel, (0.0, 0.0, 0.0)),
        )


@dataclass(frozen=True)
class ActuatorGains:
    """Every ``ControlMode`` as one affine law, as MuJoCo's general actuator writes it:

        force = clip(gain * ctrl + bias_q * q + bias_qd * qd, -limit, limit)

    TORQUE is (1, 0, 0), VELOCITY (kv, 0, -kv), POSITION (kp, -kp, -kv). All arrays (n_act,).
    """

    gain: np.ndarray
    bias_q: np.ndarray
    bias_qd: np.ndarray
    limit: np.ndarray

    @classmethod
    def from_robot(cls, robot: RobotDescription) -> ActuatorGains:
        rows = []
        for act in robot.actuators:
            if act.mode is ControlMode.TORQUE:
                rows.append((1.0, 0.0, 0.0))
            elif act.mode is ControlMode.VELOCITY:
                rows.append((act.kv, 0.0, -act.kv))
            else:
                rows.append((act.kp, -act.kp, -act.kv))
        gain, bias_q, bias_qd = (np.array(col) for col in zip(*rows, strict=True))
        return cls(gain, bias_q, bias_qd, np.array([a.force_limit for a in robot.actuators]))

    def forces(
        self, strength: np.ndarray, ctrl: np.ndarray, q: np.ndarray, qd: np.ndarray
    ) -> np.ndarray:
        """Forces (n_act,) N or N·m for ``ctrl`` at the actuated joints' (q, qd), each
        actuator's force and limit scaled by ``strength``."""
        raw = self.gain * ctrl + self.bias_q * q + self.bias_qd * qd
        return np.clip(raw, -self.limit, self.limit) * strength


class Physics(abc.ABC):
    """One simulated robot on one engine.

    Subclasses build the robot from ``robot`` in ``__init__`` and implement every abstract
    method; the nominal domain parameters are those of the description.
    """

    engine: Engine

    def __init__(self, robot: RobotDescription, markers: tuple[Marker, ...] = ()) -> None:
        self.robot = robot
        self.markers = markers

    @property
    def timestep(self) -> float:
        """Physics time step, s."""
        return self.robot.timestep

    @abc.abstractmethod
    def step(self, ctrl: np.ndarray, n_steps: int) -> None:
        """Hold actuator control ``ctrl`` (n_act,) in physical units for ``n_steps`` steps."""

    @abc.abstractmethod
    def measure(self) -> dict[str, np.ndarray]:
        """Measurements of the current state (fresh arrays, see the module docstring)."""

    @abc.abstractmethod
    def actuator_efforts(self) -> np.ndarray:
        """(n_act,) force each actuator applied in the last physics step, N or N·m."""

    @abc.abstractmethod
    def get_state(self) -> np.ndarray:
        """The full physical state as a flat float64 array (engine-specific layout)."""

    @abc.abstractmethod
    def set_state(self, state: np.ndarray) -> None:
        """Restore a state returned by ``get_state``."""

    @abc.abstractmethod
    def set_configuration(self, config: JointConfiguration) -> None:
        """Place the robot at ``config`` (engine-independent), clearing pushes."""

    @abc.abstractmethod
    def nominal_params(self) -> DomainParams:
        """The description's parameters (the defaults randomization is relative to)."""

    @abc.abstractmethod
    def apply_params(self, params: DomainParams) -> None:
        """Set masses, friction, damping, actuator strength and gravity."""

    @abc.abstractmethod
    def set_push(self, force: np.ndarray) -> None:
        """Apply world-frame ``force`` (3,) N at the push link's centre of mass until changed."""

    @abc.abstractmethod
    def set_marker(self, name: str, position: np.ndarray) -> None:
        """Move a visual marker to ``position`` (3,) m."""

    def camera_target(self) -> np.ndarray:
        """Where the camera looks, m: the description's point, following a floating base."""
        target = np.array(self.robot.camera.lookat, dtype=np.float64)
        if self.robot.floating:
            target[:2] += self.measure()["base_pos"][:2]
        return target

    @abc.abstractmethod
    def render(self, width: int, height: int) -> np.ndarray:
        """An RGB image (height, width, 3) uint8 from the description's camera."""

    def close(self) -> None:
        """Release engine resources."""
