"""The robots robot_rl simulates, each one URDF that both engines load.

``pendulum``, ``cartpole`` and ``reacher`` ship with robot_rl; ``iiwa`` (KUKA LBR iiwa 7-DoF
arm) and ``a1`` (Unitree A1 quadruped) are the descriptions shipped with ``pybullet_data``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_rl.envs.robots.description import (
    ActuatorSpec,
    BaseType,
    CameraSpec,
    ControlMode,
    RobotDescription,
    Site,
    massive_links,
    package_urdf,
    pybullet_data_urdf,
)

_HERE = Path(__file__).resolve().parent

PENDULUM = RobotDescription(
    name="pendulum",
    urdf=package_urdf("pendulum.urdf"),
    mesh_dir=_HERE,
    base=BaseType.FIXED,
    base_link="base",
    joints=("hinge",),
    actuators=(ActuatorSpec("hinge", ControlMode.TORQUE, (-2.0, 2.0), force_limit=2.0),),
    sites=(Site("tip", "pole", (0.0, 0.0, -0.5)),),
    push_link="pole",
    camera=CameraSpec(lookat=(0.0, 0.0, 1.0), distance=2.2, azimuth=90.0, elevation=0.0),
)

CARTPOLE = RobotDescription(
    name="cartpole",
    urdf=package_urdf("cartpole.urdf"),
    mesh_dir=_HERE,
    base=BaseType.FIXED,
    base_link="rail",
    joints=("slider", "hinge"),
    actuators=(ActuatorSpec("slider", ControlMode.TORQUE, (-10.0, 10.0), force_limit=10.0),),
    sites=(Site("tip", "pole", (0.0, 0.0, -0.5)),),
    base_position=(0.0, 0.0, 1.0),
    push_link="pole",
    camera=CameraSpec(lookat=(0.0, 0.0, 0.9), distance=3.0, azimuth=90.0, elevation=0.0),
)

REACHER = RobotDescription(
    name="reacher",
    urdf=package_urdf("reacher.urdf"),
    mesh_dir=_HERE,
    base=BaseType.FIXED,
    base_link="base",
    joints=("shoulder", "elbow"),
    actuators=(
        ActuatorSpec("shoulder", ControlMode.TORQUE, (-0.05, 0.05), force_limit=0.05),
        ActuatorSpec("elbow", ControlMode.TORQUE, (-0.05, 0.05), force_limit=0.05),
    ),
    sites=(Site("fingertip", "forearm", (0.11, 0.0, 0.0)),),
    push_link="forearm",
    camera=CameraSpec(lookat=(0.0, 0.0, 0.0), distance=0.7, azimuth=90.0, elevation=-89.0),
)

_IIWA_URDF, _IIWA_MESHES = pybullet_data_urdf("kuka_iiwa/model.urdf")
IIWA_JOINTS = tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))
# Velocity servo per joint: gains sized to each joint's reflected inertia so the explicit
# servo is stable at the 1 ms step on both engines; effort limits are the LBR iiwa 14's.
_IIWA_KV = (40.0, 40.0, 20.0, 20.0, 5.0, 2.0, 0.5)
_IIWA_EFFORT = (176.0, 176.0, 110.0, 110.0, 110.0, 40.0, 40.0)
IIWA_MAX_JOINT_SPEED = 1.0
"""Largest commanded joint speed in velocity mode, rad/s."""

IIWA = RobotDescription(
    name="iiwa",
    urdf=_IIWA_URDF,
    mesh_dir=_IIWA_MESHES,
    base=BaseType.FIXED,
    base_link="lbr_iiwa_link_0",
    joints=IIWA_JOINTS,
    actuators=tuple(
        ActuatorSpec(
            j,
            ControlMode.VELOCITY,
            (-IIWA_MAX_JOINT_SPEED, IIWA_MAX_JOINT_SPEED),
            force_limit=effort,
            kv=kv,
        )
        for j, kv, effort in zip(IIWA_JOINTS, _IIWA_KV, _IIWA_EFFORT, strict=True)
    ),
    sites=(Site("ee", "lbr_iiwa_link_7", (0.0, 0.0, 0.045)),),
    gravity_compensation=True,
    push_link="lbr_iiwa_link_7",
    camera=CameraSpec(lookat=(0.3, 0.0, 0.5), distance=2.2, azimuth=135.0, elevation=-25.0),
)


def iiwa_torque_control(robot: RobotDescription = IIWA) -> RobotDescription:
    """The iiwa driven by joint torques on top of gravity compensation (limits as above)."""
    import dataclasses

    return dataclasses.replace(
        robot,
        actuators=tuple(
            ActuatorSpec(
                a.joint, ControlMode.TORQUE, (-a.force_limit, a.force_limit), a.force_limit
            )
            for a in robot.actuators
        ),
    )


_A1_URDF, _A1_MESHES = pybullet_data_urdf("a1/a1.urdf")
A1_LEGS = ("FR", "FL", "RR", "RL")
A1_JOINTS = tuple(f"{leg}_{part}_joint" for leg in A1_LEGS for part in ("hip", "upper", "lower"))
A1_STANCE = np.tile([0.0, 0.9, -1.8], 4)
"""Standing joint angles (hip, thigh, calf per leg), rad."""
_A1_SWING = np.tile([0.5, 0.9, 0.9], 4)  # reach of the position targets around the stance
_A1_LIMITS = {"hip": (-0.8, 0.8), "upper": (-1.0, 4.2), "lower": (-2.7, -0.92)}
_A1_EFFORT = {"hip": 20.0, "upper": 55.0, "lower": 55.0}


def _a1_actuator(joint: str, stance: float, swing: float) -> ActuatorSpec:
    part = joint.split("_")[1]
    low, high = _A1_LIMITS[part]
    return ActuatorSpec(
        joint,
        ControlMode.POSITION,
        (max(stance - swing, low), min(stance + swing, high)),
        force_limit=_A1_EFFORT[part],
        kp=40.0,
        kv=1.0,
    )


A1 = RobotDescription(
    name="a1",
    urdf=_A1_URDF,
    mesh_dir=_A1_MESHES,
    base=BaseType.FLOATING,
    base_link="trunk",
    joints=A1_JOINTS,
    actuators=tuple(
        _a1_actuator(j, s, w) for j, s, w in zip(A1_JOINTS, A1_STANCE, _A1_SWING, strict=True)
    ),
    base_position=(0.0, 0.0, 0.29),
    ground=True,
    collisions=True,
    friction=0.8,
    push_link="trunk",
    camera=CameraSpec(lookat=(0.0, 0.0, 0.2), distance=1.5, azimuth=135.0, elevation=-20.0),
)

ROBOTS: dict[str, RobotDescription] = {r.name: r for r in (PENDULUM, CARTPOLE, REACHER, IIWA, A1)}

__all__ = [
    "A1",
    "A1_STANCE",
    "CARTPOLE",
    "IIWA",
    "PENDULUM",
    "REACHER",
    "ROBOTS",
    "ActuatorSpec",
    "BaseType",
    "CameraSpec",
    "ControlMode",
    "RobotDescription",
    "Site",
    "iiwa_torque_control",
    "massive_links",
]
