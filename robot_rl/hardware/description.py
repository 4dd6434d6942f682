"""What the hardware layer knows about a robot: its joints, command interface, limits and rates.

``RobotSpec`` is the contract between a robot and everything that commands it. It is built
from a simulated robot's ``RobotDescription`` (``spec_from_robot``), sent by a robot server to
its clients (``to_dict`` / ``from_dict``), and stored in every run record.

Units: positions rad or m, velocities rad/s or m/s, efforts N·m or N, rates Hz; a command is in
the robot's command mode (``ControlMode``) and physical units. Policies act in normalised units
[-1, 1]; ``command_from_action`` and ``action_from_command`` map between the two with the same
affine map the simulated envs use (``ctrl = mid + half · action``).
"""

from __future__ import annotations

import enum
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl.envs.robots.description import ControlMode, RobotDescription

DAMPING_SPEED = 2.0
"""Joint speed (rad/s or m/s) at which the safe-stop damper of a torque-controlled robot
saturates at its effort limit: the damper's gain is at most ``effort_limit / DAMPING_SPEED``."""
DAMPING_DECAY = 0.5
"""Largest fraction of a joint's speed the safe-stop damper removes per control period. A
damper updated every ``dt`` on a joint of inertia ``I`` with gain ``D`` scales the speed by
``1 - D dt / I`` per period, which oscillates above 1 and diverges above 2; so
``D <= DAMPING_DECAY · I / dt``."""


class SafeBehaviour(enum.Enum):
    """What a robot does when it stops: at the end of every run, on a watchdog trip, an e-stop.

    - HOLD: keep still. A position-controlled robot holds the position measured when it
      stopped; a velocity-controlled robot is commanded zero velocity.
    - DAMP: a torque-controlled robot is commanded ``-damping · q̇`` (within the effort limit),
      which brakes it and fades to zero torque at rest.
    """

    HOLD = "hold"
    DAMP = "damp"


_ARRAY_FIELDS = (
    "command_low",
    "command_high",
    "position_low",
    "position_high",
    "velocity_limit",
    "effort_limit",
    "damping",
)


def _readonly(values: Any) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class RobotSpec:
    """A robot's joints, command interface and limits.

    Attributes:
        name: robot name (``cartpole``, ``iiwa``).
        joint_names: measured joints, in the order of ``RobotState.position``.
        actuated: index into ``joint_names`` of each command element, (n_act,).
        mode: the command mode of every actuator.
        command_low: (n_act,) lowest command, physical units.
        command_high: (n_act,) highest command, physical units.
        position_low: (n_joints,) lower joint limit, rad or m (-inf where unlimited).
        position_high: (n_joints,) upper joint limit, rad or m (+inf where unlimited).
        velocity_limit: (n_joints,) largest joint speed, rad/s or m/s (inf where unknown).
        effort_limit: (n_act,) largest actuator effort, N·m or N.
        rate: the robot's control rate: it takes one command per cycle of 1/rate s, Hz.
        max_rate: the fastest control rate the robot can be configured to, Hz.
        safe_behaviour: what the robot does when it stops.
        damping: (n_act,) safe-stop damping gain for ``DAMP``, N·m·s/rad or N·s/m.
        observation_size: length of the task observation the robot reports (0: none).
        task: env id whose task observation the robot reports ('' if none).
        floating_base: whether the robot reports a base pose and velocities (IMU).
    """

    name: str
    joint_names: tuple[str, ...]
    actuated: tuple[int, ...]
    mode: ControlMode
    command_low: np.ndarray
    command_high: np.ndarray
    position_low: np.ndarray
    position_high: np.ndarray
    velocity_limit: np.ndarray
    effort_limit: np.ndarray
    rate: float
    max_rate: float
    safe_behaviour: SafeBehaviour
    damping: np.ndarray
    observation_size: int = 0
    task: str = ""
    floating_base: bool = False

    def __post_init__(self) -> None:
        for name in _ARRAY_FIELDS:
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "mode", ControlMode(self.mode))
        object.__setattr__(self, "safe_behaviour", SafeBehaviour(self.safe_behaviour))
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "actuated", tuple(int(i) for i in self.actuated))
        n_joints, n_act = len(self.joint_names), len(self.actuated)
        for name in ("position_low", "position_high", "velocity_limit"):
            if getattr(self, name).shape != (n_joints,):
                raise ValueError(f"{name} must have shape ({n_joints},)")
        for name in ("command_low", "command_high", "effort_limit", "damping"):
            if getattr(self, name).shape != (n_act,):
                raise ValueError(f"{name} must have shape ({n_act},)")
        if not all(0 <= i < n_joints for i in self.actuated):
            raise ValueError(f"actuated indices {self.actuated} out of range for {n_joints} joints")
        if not (self.command_low < self.command_high).all():
            raise ValueError("every command range must be non-empty")
        if not (self.position_low < self.position_high).all():
            raise ValueError("every joint position range must be non-empty")
        if not ((self.velocity_limit > 0).all() and (self.effort_limit > 0).all()):
            raise ValueError("velocity and effort limits must be positive")
        if not 0 < self.rate <= self.max_rate:
            raise ValueError(f"need 0 < rate <= max_rate, got {self.rate} and {self.max_rate}")

    # -- sizes and maps ----------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_act(self) -> int:
        return len(self.actuated)

    @property
    def period(self) -> float:
        """Control period, s."""
        return 1.0 / self.rate

    @property
    def actuated_names(self) -> tuple[str, ...]:
        return tuple(self.joint_names[i] for i in self.actuated)

    def command_from_action(self, action: np.ndarray) -> np.ndarray:
        """Normalised action (n_act,) in [-1, 1] -> command in physical units (no clipping)."""
        mid = 0.5 * (self.command_low + self.command_high)
        half = 0.5 * (self.command_high - self.command_low)
        return mid + half * np.asarray(action, dtype=np.float64)

    def action_from_command(self, command: np.ndarray) -> np.ndarray:
        """Command in physical units (n_act,) -> normalised action (no clipping)."""
        mid = 0.5 * (self.command_low + self.command_high)
        half = 0.5 * (self.command_high - self.command_low)
        return (np.asarray(command, dtype=np.float64) - mid) / half

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (infinite limits as the strings 'inf' / '-inf')."""
        out: dict[str, Any] = {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "actuated": list(self.actuated),
            "mode": self.mode.value,
            "rate": self.rate,
            "max_rate": self.max_rate,
            "safe_behaviour": self.safe_behaviour.value,
            "observation_size": self.observation_size,
            "task": self.task,
            "floating_base": self.floating_base,
        }
        for name in _ARRAY_FIELDS:
            out[name] = [v if math.isfinite(v) else str(v) for v in getattr(self, name).tolist()]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobotSpec:
        """Inverse of ``to_dict``; raises ``ValueError`` naming a missing or bad field."""
        try:
            arrays = {name: [float(v) for v in data[name]] for name in _ARRAY_FIELDS}
            return cls(
                name=str(data["name"]),
                joint_names=tuple(data["joint_names"]),
                actuated=tuple(data["actuated"]),
                mode=ControlMode(data["mode"]),
                rate=float(data["rate"]),
                max_rate=float(data["max_rate"]),
                safe_behaviour=SafeBehaviour(data["safe_behaviour"]),
                observation_size=int(data.get("observation_size", 0)),
                task=str(data.get("task", "")),
                floating_base=bool(data.get("floating_base", False)),
                **arrays,
            )
        except KeyError as err:
            raise ValueError(f"robot spec is missing the field {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad robot spec: {err}") from None


def urdf_joint_limits(urdf_text: str) -> dict[str, tuple[float, float, float]]:
    """(lower, upper, velocity) of every joint in a URDF.

    Continuous joints have no position limits (±inf); a missing velocity limit is inf.
    """
    limits = {}
    for joint in ET.fromstring(urdf_text).iter("joint"):
        kind, limit = joint.get("type"), joint.find("limit")
        lower, upper, velocity = -math.inf, math.inf, math.inf
        if limit is not None:
            if kind in ("revolute", "prismatic"):
                lower = float(limit.get("lower", "-inf"))
                upper = float(limit.get("upper", "inf"))
            if float(limit.get("velocity", "0")) > 0:
                velocity = float(limit.get("velocity"))
        limits[joint.get("name")] = (lower, upper, velocity)
    return limits


def spec_from_robot(
    robot: RobotDescription,
    control_dt: float,
    observation_size: int = 0,
    task: str = "",
    inertia: np.ndarray | None = None,
) -> RobotSpec:
    """The hardware view of a simulated robot.

    Joint limits come from the URDF, command ranges and effort limits from the actuators; a
    robot is stopped by holding (position and velocity control) or damping (torque control).

    Args:
        robot: the robot's description.
        control_dt: the control period the robot runs at, s.
        observation_size: length of the task observation the robot reports.
        task: env id of that task.
        inertia: (n_act,) inertia each actuator drives, kg or kg·m², which bounds the
            safe-stop damping of torque-controlled robots (see ``DAMPING_DECAY``).

    Raises:
        ValueError: when the actuators do not share one control mode.
    """
    modes = {a.mode for a in robot.actuators}
    if len(modes) != 1:
        raise ValueError(f"robot {robot.name} mixes control modes {sorted(m.value for m in modes)}")
    (mode,) = modes
    urdf = urdf_joint_limits(robot.urdf())
    missing = [j for j in robot.joints if j not in urdf]
    if missing:
        raise ValueError(f"joints {missing} of robot {robot.name} are not in its URDF")
    low, high, velocity = (np.array([urdf[j][k] for j in robot.joints]) for k in range(3))
    effort = np.array([a.force_limit for a in robot.actuators])
    damping = effort / DAMPING_SPEED
    if inertia is not None:
        damping = np.minimum(damping, DAMPING_DECAY * np.asarray(inertia) / control_dt)
    return RobotSpec(
        name=robot.name,
        joint_names=robot.joints,
        actuated=tuple(robot.actuator_joint_index()),
        mode=mode,
        command_low=robot.ctrl_low,
        command_high=robot.ctrl_high,
        position_low=low,
        position_high=high,
        velocity_limit=velocity,
        effort_limit=effort,
        rate=1.0 / control_dt,
        max_rate=1.0 / robot.timestep,
        safe_behaviour=SafeBehaviour.DAMP if mode is ControlMode.TORQUE else SafeBehaviour.HOLD,
        damping=damping,
        observation_size=observation_size,
        task=task,
        floating_base=robot.floating,
    )
