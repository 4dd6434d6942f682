"""Forward kinematics of a robot's URDF as a CasADi expression, for task-space costs.

A reaching cost on the end-effector position needs that position and its derivatives as a
function of the joint angles. ``site_position`` follows the kinematic chain of the robot's
URDF from the base to a measured site (fixed transforms from each joint's ``origin``,
rotations about each joint's ``axis``), the same tree MuJoCo and PyBullet build, so the cost
differentiates exactly what the simulator measures.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import casadi as ca
import numpy as np

from robot_rl.envs.robots.description import RobotDescription


def _rotation_rpy(rpy: np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _quaternion_matrix(quat: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = quat
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _axis_rotation(axis: np.ndarray, angle: ca.SX) -> ca.SX:
    """Rodrigues' rotation about a unit ``axis`` by a symbolic ``angle``."""
    K = ca.DM([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return ca.DM.eye(3) + ca.sin(angle) * K + (1 - ca.cos(angle)) * (K @ K)


def site_position(robot: RobotDescription, site_name: str) -> ca.Function:
    """World position of a measured site as a CasADi Function of the joint positions.

    Args:
        robot: the description (its URDF, base pose, measured joints and sites).
        site_name: a ``Site`` of the robot (e.g. ``"ee"``).

    Returns:
        ``fk(q (n_joints,)) -> (3,)`` in metres, joints in ``robot.joints`` order.

    Raises:
        ValueError: for an unknown site, or a chain through a joint type other than fixed,
            revolute, continuous or prismatic.
    """
    sites = {s.name: s for s in robot.sites}
    if site_name not in sites:
        raise ValueError(f"{robot.name} has no site {site_name!r}; sites: {sorted(sites)}")
    site = sites[site_name]
    root = ET.fromstring(robot.urdf())
    joints_by_child = {j.find("child").get("link"): j for j in root.iter("joint")}
    chain = []
    link = site.link
    while link != robot.base_link:
        if link not in joints_by_child:
            raise ValueError(f"link {link!r} is not connected to the base {robot.base_link!r}")
        joint = joints_by_child[link]
        chain.append(joint)
        link = joint.find("parent").get("link")
    chain.reverse()

    q = ca.SX.sym("q", len(robot.joints))
    R = ca.DM(_quaternion_matrix(robot.base_orientation))
    p = ca.DM(np.asarray(robot.base_position, dtype=np.float64))
    R, p = ca.SX(R), ca.SX(p)
    for joint in chain:
        origin = joint.find("origin")
        xyz = (
            np.fromstring(origin.get("xyz", "0 0 0"), sep=" ")
            if origin is not None
            else np.zeros(3)
        )
        rpy = (
            np.fromstring(origin.get("rpy", "0 0 0"), sep=" ")
            if origin is not None
            else np.zeros(3)
        )
        p = p + R @ ca.DM(xyz)
        R = R @ ca.DM(_rotation_rpy(rpy))
        kind = joint.get("type")
        if kind == "fixed":
            continue
        axis_el = joint.find("axis")
        axis = (
            np.fromstring(axis_el.get("xyz"), sep=" ")
            if axis_el is not None
            else np.array([1.0, 0, 0])
        )
        axis = axis / np.linalg.norm(axis)
        name = joint.get("name")
        if name not in robot.joints:
            raise ValueError(f"joint {name!r} on the chain to {site_name!r} is not measured")
        angle = q[robot.joints.index(name)]
        if kind in ("revolute", "continuous"):
            R = R @ _axis_rotation(axis, angle)
        elif kind == "prismatic":
            p = p + R @ (ca.DM(axis) * angle)
        else:
            raise ValueError(f"joint {name!r} has unsupported type {kind!r}")
    position = p + R @ ca.DM(np.asarray(site.offset, dtype=np.float64))
    return ca.Function(f"{robot.name}_{site_name}_position", [q], [position])
