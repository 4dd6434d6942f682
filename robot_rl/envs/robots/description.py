"""Robot descriptions: one URDF per robot plus what both engines need to build it the same way.

A ``RobotDescription`` names the URDF (which MuJoCo compiles through ``MjSpec`` and PyBullet
loads directly), which joints are measured, how each actuated joint is driven, which points
are measured (sites), the physics time step, and the defaults that domain randomization
scales. Both physics backends build their model from the same description, so the same
action means the same thing on both engines.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class ControlMode(enum.Enum):
    """How an actuator turns its control value into a joint force.

    With ``u`` the control in physical units, ``q`` and ``qd`` the joint position and
    velocity, and the result clamped to ``±force_limit``:

    - TORQUE:   f = u                          (u in N or N·m)
    - VELOCITY: f = kv (u - qd)                (u in m/s or rad/s)
    - POSITION: f = kp (u - q) - kv qd         (u in m or rad)
    """

    TORQUE = "torque"
    VELOCITY = "velocity"
    POSITION = "position"


class BaseType(enum.Enum):
    """Whether the robot's root link is welded to the world or floats (6 free DoF)."""

    FIXED = "fixed"
    FLOATING = "floating"


@dataclass(frozen=True)
class ActuatorSpec:
    """One actuated joint.

    Attributes:
        joint: URDF joint name.
        mode: how the control becomes a force.
        ctrl_range: (low, high) control in physical units; the env maps the normalised action
            [-1, 1] affinely onto it.
        force_limit: symmetric force/torque limit, N or N·m.
        kp: position gain (POSITION), N/m or N·m/rad.
        kv: velocity gain (VELOCITY, POSITION), N·s/m or N·m·s/rad.
    """

    joint: str
    mode: ControlMode
    ctrl_range: tuple[float, float]
    force_limit: float
    kp: float = 0.0
    kv: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.ctrl_range
        if not low < high:
            raise ValueError(f"actuator {self.joint}: ctrl_range {self.ctrl_range} is empty")
        if self.force_limit <= 0:
            raise ValueError(f"actuator {self.joint}: force_limit must be positive")


@dataclass(frozen=True)
class Site:
    """A point rigidly attached to a link whose world position is measured.

    Attributes:
        name: measurement name; its position appears as ``f"{name}_pos"``.
        link: URDF link the point is attached to.
        offset: position in the link frame, m.
    """

    name: str
    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class CameraSpec:
    """A free camera for offscreen rendering: look at ``lookat`` from ``distance`` m away,
    at ``azimuth`` degrees around +z (0 looks along +x) and ``elevation`` degrees (negative
    looks down)."""

    lookat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 2.0
    azimuth: float = 90.0
    elevation: float = -20.0


@dataclass(frozen=True)
class RobotDescription:
    """Everything both engines need to build the same robot.

    Attributes:
        name: short robot name (``cartpole``).
        urdf: function returning the URDF text; mesh paths are resolved against
            ``mesh_dir``.
        mesh_dir: folder that relative mesh paths in the URDF are relative to.
        base: fixed or floating root link.
        base_link: URDF name of the root link.
        joints: names of the measured joints, in observation order.
        actuators: actuated joints and their drives, in action order.
        sites: measured points.
        timestep: physics time step, s.
        base_position: initial root position, m.
        base_orientation: initial root orientation, quaternion (w, x, y, z).
        gravity: magnitude of gravity along -z, m/s².
        gravity_compensation: cancel gravity on every link (as the controllers of torque-
            controlled arms do); commands are then torques on top of gravity compensation.
        ground: add a ground plane at z = 0 that the robot collides with.
        collisions: whether the robot's collision shapes touch the ground (self-collisions
            are always off, as in PyBullet's default).
        friction: sliding friction coefficient of robot-ground contacts.
        push_link: link that random pushes act on (at its centre of mass).
        camera: default render camera.
    """

    name: str
    urdf: Callable[[], str]
    mesh_dir: Path
    base: BaseType
    base_link: str
    joints: tuple[str, ...]
    actuators: tuple[ActuatorSpec, ...]
    sites: tuple[Site, ...] = ()
    timestep: float = 0.001
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    gravity: float = 9.81
    gravity_compensation: bool = False
    ground: bool = False
    collisions: bool = False
    friction: float = 0.8
    push_link: str | None = None
    camera: CameraSpec = field(default_factory=CameraSpec)

    @property
    def floating(self) -> bool:
        return self.base is BaseType.FLOATING

    @property
    def action_size(self) -> int:
        return len(self.actuators)

    @property
    def ctrl_low(self) -> np.ndarray:
        return np.array([a.ctrl_range[0] for a in self.actuators])

    @property
    def ctrl_high(self) -> np.ndarray:
        return np.array([a.ctrl_range[1] for a in self.actuators])

    def actuator_joint_index(self) -> np.ndarray:
        """Index into ``joints`` of each actuator's joint, (n_actuators,)."""
        return np.array([self.joints.index(a.joint) for a in self.actuators])


def package_urdf(filename: str) -> Callable[[], str]:
    """A URDF that ships with robot_rl (in ``robot_rl/envs/robots``)."""
    path = Path(__file__).resolve().parent / filename
    return path.read_text


def pybullet_data_urdf(relative_path: str) -> tuple[Callable[[], str], Path]:
    """A URDF from ``pybullet_data`` and the folder its meshes are relative to."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / relative_path
    return path.read_text, path.parent


MUJOCO_COMPILER_TAG = '<mujoco><compiler discardvisual="false" fusestatic="false" meshdir="{mesh_dir}" balanceinertia="false"/></mujoco>'


def with_mujoco_compiler_tag(urdf_text: str, mesh_dir: Path) -> str:
    """Insert MuJoCo's URDF extension (keep visuals, keep every link a body, mesh folder).

    PyBullet ignores the ``<mujoco>`` element; MuJoCo reads it before compiling.
    """
    urdf_text = re.sub(r"<mujoco>.*?</mujoco>", "", urdf_text, flags=re.DOTALL)
    tag = MUJOCO_COMPILER_TAG.format(mesh_dir=mesh_dir)
    out, count = re.subn(r"(<robot\b[^>]*>)", lambda m: m.group(1) + tag, urdf_text, count=1)
    if count != 1:
        raise ValueError("URDF has no <robot> element")
    return out


def massive_links(robot: RobotDescription) -> tuple[str, ...]:
    """Names of the links whose mass is randomized: every link with positive mass in the URDF,
    in document order, except a fixed base (which does not move)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(robot.urdf())
    names = []
    for link in root.iter("link"):
        mass = link.find("inertial/mass")
        if mass is None or float(mass.get("value", "0")) <= 0:
            continue
        if link.get("name") == robot.base_link and not robot.floating:
            continue
        names.append(link.get("name"))
    return tuple(names)
