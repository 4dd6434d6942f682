"""The PyBullet physics backend: the same URDF loaded directly, actuators computed per step.

PyBullet's defaults are switched off where they would make it disagree with MuJoCo: link
velocity damping (0.04 by default), the default velocity motors on every joint, the joint
velocity clamp, and inertias recomputed from collision shapes (``URDF_USE_INERTIA_FROM_FILE``
keeps the URDF's). Actuator forces follow ``ActuatorGains`` every physics step, in torque
control. PyBullet reports a base's pose at its centre of mass; measurements are converted to
the root link's frame so they match MuJoCo's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

from robot_rl.envs.physics.base import ActuatorGains, Engine, JointConfiguration, Marker, Physics
from robot_rl.envs.randomization import DomainParams
from robot_rl.envs.robots.description import RobotDescription, massive_links


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Silence what PyBullet's C code prints straight to the process's stdout and stderr (its
    build banner, ``argv[0]=``, URDF warnings); Python-level output outside is unaffected."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


with _quiet_native_output():
    import pybullet
import pybullet_data  # noqa: E402
from pybullet_utils import bullet_client  # noqa: E402

GROUND_FRICTION = 1.0  # PyBullet multiplies the two frictions; the robot's value then rules.


def _xyzw(quat_wxyz: np.ndarray) -> list[float]:
    w, x, y, z = quat_wxyz
    return [x, y, z, w]


def _wxyz(quat_xyzw: tuple[float, ...]) -> np.ndarray:
    x, y, z, w = quat_xyzw
    return np.array([w, x, y, z])


def _absolute_mesh_paths(urdf: str, mesh_dir: str) -> str:
    def fix(match: re.Match[str]) -> str:
        path = match.group(1)
        if os.path.isabs(path) or "://" in path:
            return match.group(0)
        return f'filename="{os.path.join(mesh_dir, path)}"'

    return re.sub(r'filename="([^"]+)"', fix, urdf)


class PyBulletPhysics(Physics):
    """A robot on PyBullet, in its own physics client (``DIRECT`` mode, no GUI)."""

    engine = Engine.PYBULLET

    def __init__(self, robot: RobotDescription, markers: tuple[Marker, ...] = ()) -> None:
        super().__init__(robot, markers)
        with _quiet_native_output():
            self.client = c = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        c.setPhysicsEngineParameter(
            fixedTimeStep=robot.timestep, numSubSteps=0, deterministicOverlappingPairs=1
        )
        c.setGravity(0.0, 0.0, -robot.gravity)
        if robot.ground:
            c.setAdditionalSearchPath(pybullet_data.getDataPath())
            self._ground = c.loadURDF("plane.urdf")
            c.changeDynamics(self._ground, -1, lateralFriction=GROUND_FRICTION)
        self.body = self._load(robot)
        self._index_joints_and_links()
        self._gains = ActuatorGains.from_robot(robot)
        self._strength = np.ones(len(robot.actuators))
        self._push = np.zeros(3)
        self._efforts = np.zeros(len(robot.actuators))
        self._markers = {mk.name: self._add_marker(mk) for mk in markers}
        n_links = c.getNumJoints(self.body)
        for link in range(-1, n_links):
            c.changeDynamics(
                self.body,
                link,
                linearDamping=0.0,
                angularDamping=0.0,
                lateralFriction=robot.friction,
                maxJointVelocity=1e4,
            )
            if not robot.collisions:
                c.setCollisionFilterGroupMask(self.body, link, 0, 0)
        c.setJointMotorControlArray(
            self.body, list(range(n_links)), pybullet.VELOCITY_CONTROL, forces=[0.0] * n_links
        )
        self._default_inertia = np.array(
            [c.getDynamicsInfo(self.body, link)[2] for link in self._mass_links]
        )
        self._nominal = DomainParams(
            link_masses=np.array(
                [c.getDynamicsInfo(self.body, link)[0] for link in self._mass_links]
            ),
            friction=robot.friction,
            joint_damping=np.array([c.getJointInfo(self.body, j)[6] for j in self._joints]),
            actuator_strength=self._strength.copy(),
            gravity=robot.gravity,
        )

    # -- construction -----------------------------------------------------------------------
    def _load(self, robot: RobotDescription) -> int:
        text = _absolute_mesh_paths(robot.urdf(), str(robot.mesh_dir))
        fd, path = tempfile.mkstemp(suffix=".urdf", prefix=f"{robot.name}_")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            with _quiet_native_output():
                return self.client.loadURDF(
                    path,
                    basePosition=list(robot.base_position),
                    baseOrientation=_xyzw(np.asarray(robot.base_orientation)),
                    useFixedBase=not robot.floating,
                    flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
                )
        finally:
            os.unlink(path)

    def _index_joints_and_links(self) -> None:
        c, robot = self.client, self.robot
        joint_index, link_index = {}, {c.getBodyInfo(self.body)[0].decode(): -1}
        for j in range(c.getNumJoints(self.body)):
            info = c.getJointInfo(self.body, j)
            joint_index[info[1].decode()] = j
            link_index[info[12].decode()] = j
        self._joints = [joint_index[name] for name in robot.joints]
        self._act_joints = [joint_index[a.joint] for a in robot.actuators]
        self._act_in_joints = robot.actuator_joint_index()
        self._mass_links = [link_index[name] for name in massive_links(robot)]
        self._sites = [(s.name, link_index[s.link], np.asarray(s.offset)) for s in robot.sites]
        self._push_link = link_index[robot.push_link] if robot.push_link else -1
        info = c.getDynamicsInfo(self.body, -1)
        self._base_inertial_pos = np.asarray(info[3])
        self._base_inertial_orn = info[4]
        self._gravcomp = robot.gravity_compensation

    def _add_marker(self, marker: Marker) -> int:
        c = self.client
        shape = c.createVisualShape(
            pybullet.GEOM_SPHERE, radius=marker.radius, rgbaColor=list(marker.rgba)
        )
        return c.createMultiBody(baseMass=0.0, baseVisualShapeIndex=shape)

    # -- stepping and measuring --------------------------------------------------------------
    def step(self, ctrl: np.ndarray, n_steps: int) -> None:
        c, body = self.client, self.body
        for _ in range(n_steps):
            states = c.getJointStates(body, self._joints)
            q = np.array([s[0] for s in states])
            qd = np.array([s[1] for s in states])
            idx = self._act_in_joints
            tau = self._gains.forces(self._strength, ctrl, q[idx], qd[idx])
            self._efforts = tau
            if self._gravcomp:
                zeros = [0.0] * len(q)
                tau = (
                    tau
                    + np.asarray(c.calculateInverseDynamics(body, q.tolist(), zeros, zeros))[idx]
                )
            c.setJointMotorControlArray(
                body, self._act_joints, pybullet.TORQUE_CONTROL, forces=tau.tolist()
            )
            if self._push.any():
                com = self._link_com(self._push_link)
                c.applyExternalForce(
                    body, self._push_link, self._push.tolist(), com.tolist(), pybullet.WORLD_FRAME
                )
            c.stepSimulation()

    def _link_com(self, link: int) -> np.ndarray:
        if link == -1:
            return np.asarray(self.client.getBasePositionAndOrientation(self.body)[0])
        return np.asarray(self.client.getLinkState(self.body, link)[0])

    def _base_frame(self) -> tuple[np.ndarray, tuple[float, ...], np.ndarray, np.ndarray]:
        """Root link frame pose (pos, xyzw quat) and the velocity of its origin (lin, ang)."""
        c = self.client
        com_pos, com_orn = c.getBasePositionAndOrientation(self.body)
        inv_pos, inv_orn = c.invertTransform(
            self._base_inertial_pos.tolist(), self._base_inertial_orn
        )
        pos, orn = c.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn)
        lin, ang = (np.asarray(v) for v in c.getBaseVelocity(self.body))
        pos = np.asarray(pos)
        lin = lin + np.cross(ang, pos - np.asarray(com_pos))
        return pos, orn, lin, ang

    def measure(self) -> dict[str, np.ndarray]:
        c = self.client
        states = c.getJointStates(self.body, self._joints)
        out = {"qpos": np.array([s[0] for s in states]), "qvel": np.array([s[1] for s in states])}
        for name, link, offset in self._sites:
            if link == -1:
                pos, orn = self._base_frame()[:2]
            else:
                ls = c.getLinkState(self.body, link, computeForwardKinematics=1)
                pos, orn = ls[4], ls[5]
            rot = np.asarray(c.getMatrixFromQuaternion(orn)).reshape(3, 3)
            out[f"{name}_pos"] = np.asarray(pos) + rot @ offset
        if self.robot.floating:
            pos, orn, lin, ang = self._base_frame()
            axes = np.asarray(c.getMatrixFromQuaternion(orn)).reshape(3, 3).T.reshape(9)
            out.update(
                base_pos=pos, base_quat=_wxyz(orn), base_linvel=lin, base_angvel=ang, base_axes=axes
            )
        return out

    def actuator_efforts(self) -> np.ndarray:
        return self._efforts.copy()

    # -- state ------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        c = self.client
        com_pos, com_orn = c.getBasePositionAndOrientation(self.body)
        lin, ang = c.getBaseVelocity(self.body)
        states = c.getJointStates(self.body, self._joints)
        return np.concatenate(
            [com_pos, com_orn, lin, ang, [s[0] for s in states], [s[1] for s in states]]
        )

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, dtype=np.float64)
        n = len(self._joints)
        if state.shape != (13 + 2 * n,):
            raise ValueError(f"PyBullet state must have shape ({13 + 2 * n},), got {state.shape}")
        c = self.client
        if self.robot.floating:
            c.resetBasePositionAndOrientation(self.body, state[:3].tolist(), state[3:7].tolist())
            c.resetBaseVelocity(self.body, state[7:10].tolist(), state[10:13].tolist())
        for j, q, qd in zip(self._joints, state[13 : 13 + n], state[13 + n :], strict=True):
            c.resetJointState(self.body, j, q, qd)

    def set_configuration(self, config: JointConfiguration) -> None:
        c = self.client
        config = config.filled(self.robot)
        if self.robot.floating:
            # The root link frame's pose and origin velocity -> PyBullet's centre-of-mass terms.
            com_pos, com_orn = c.multiplyTransforms(
                config.base_pos.tolist(),
                _xyzw(config.base_quat),
                self._base_inertial_pos.tolist(),
                self._base_inertial_orn,
            )
            lin = config.base_linvel + np.cross(
                config.base_angvel, np.asarray(com_pos) - config.base_pos
            )
            c.resetBasePositionAndOrientation(self.body, com_pos, com_orn)
            c.resetBaseVelocity(self.body, lin.tolist(), config.base_angvel.tolist())
        for j, q, qd in zip(self._joints, config.qpos, config.qvel, strict=True):
            c.resetJointState(self.body, j, float(q), float(qd))
        self._push = np.zeros(3)

    # -- parameters, pushes, markers, rendering ---------------------------------------------------
    def nominal_params(self) -> DomainParams:
        return self._nominal

    def apply_params(self, params: DomainParams) -> None:
        c = self.client
        scale = params.link_masses / self._nominal.link_masses
        for link, mass, inertia in zip(
            self._mass_links,
            params.link_masses,
            self._default_inertia * scale[:, None],
            strict=True,
        ):
            c.changeDynamics(
                self.body, link, mass=float(mass), localInertiaDiagonal=inertia.tolist()
            )
        for link in range(-1, c.getNumJoints(self.body)):
            c.changeDynamics(self.body, link, lateralFriction=params.friction)
        for j, damping in zip(self._joints, params.joint_damping, strict=True):
            c.changeDynamics(self.body, j, jointDamping=float(damping))
        self._strength = params.actuator_strength.copy()
        c.setGravity(0.0, 0.0, -params.gravity)

    def set_push(self, force: np.ndarray) -> None:
        self._push = np.asarray(force, dtype=np.float64).copy()

    def set_marker(self, name: str, position: np.ndarray) -> None:
        self.client.resetBasePositionAndOrientation(
            self._markers[name], list(position), [0, 0, 0, 1]
        )

    def render(self, width: int, height: int) -> np.ndarray:
        c, cam = self.client, self.robot.camera
        view = c.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=self.camera_target().tolist(),
            distance=cam.distance,
            yaw=cam.azimuth - 90.0,
            pitch=cam.elevation,
            roll=0.0,
            upAxisIndex=2,
        )
        proj = c.computeProjectionMatrixFOV(
            fov=45.0, aspect=width / height, nearVal=0.01, farVal=100.0
        )
        _, _, rgba, _, _ = c.getCameraImage(
            width, height, view, proj, renderer=pybullet.ER_TINY_RENDERER
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def close(self) -> None:
        with contextlib.suppress(pybullet.error):
            self.client.disconnect()
