"""The MuJoCo physics backend: the URDF compiled through ``MjSpec``, native actuators, sensors.

Actuators are MuJoCo general actuators in the gain/bias form of ``ActuatorGains`` and every
measurement is a MuJoCo sensor, so ``mujoco.rollout`` and ``mujoco.mjd_transitionFD`` on this
model see exactly what the env sees. The integrator is semi-implicit Euler, as PyBullet's.
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import numpy as np

from robot_rl.envs.physics.base import (
    ActuatorGains,
    Engine,
    JointConfiguration,
    Marker,
    Physics,
)
from robot_rl.envs.randomization import DomainParams
from robot_rl.envs.robots.description import (
    RobotDescription,
    massive_links,
    with_mujoco_compiler_tag,
)

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
"""What ``get_state`` saves: everything that affects the next step (incl. warm start)."""
# Contact settings chosen to match PyBullet's stiff, elliptic-friction contacts: with them the
# A1 under random joint targets stays within about a centimetre of PyBullet over a second
# (MuJoCo's defaults, solref 0.02 and a pyramidal cone, drift several times further).
CONTACT_SOLREF = (0.005, 1.0)
CONTACT_IMPRATIO = 10.0
ROBOT_GEOM_GROUP = 0  # MuJoCo puts URDF collision shapes in group 0 and visuals in group 1
MARKER_GEOM_GROUP = 2


def build_spec(robot: RobotDescription, markers: tuple[Marker, ...] = ()) -> mujoco.MjSpec:
    """The robot's URDF as an ``MjSpec`` with actuators, sensors, ground, lights and markers."""
    spec = mujoco.MjSpec.from_string(with_mujoco_compiler_tag(robot.urdf(), robot.mesh_dir))
    spec.modelname = robot.name
    spec.option.timestep = robot.timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    spec.option.gravity = [0.0, 0.0, -robot.gravity]
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 960

    root = spec.body(robot.base_link)
    root.pos = list(robot.base_position)
    root.quat = list(robot.base_orientation)
    if robot.floating:
        root.add_freejoint(name="base")

    for geom in spec.geoms:
        if geom.group == ROBOT_GEOM_GROUP:
            geom.contype = 1 if robot.collisions else 0
            geom.conaffinity = 0  # robot shapes never touch each other, only the ground
            geom.friction = [robot.friction, 0.005, 0.0001]
            geom.solref = list(CONTACT_SOLREF)
    if robot.gravity_compensation:
        for body in spec.bodies:
            body.gravcomp = 1.0

    if robot.ground:
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = CONTACT_IMPRATIO

    spec.add_texture(
        name="sky",
        type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        width=64,
        height=64,
        rgb1=[0.85, 0.88, 0.92],
        rgb2=[0.55, 0.62, 0.7],
    )
    world = spec.worldbody
    world.add_light(
        name="sun",
        pos=[0, 0, 4],
        dir=[0, 0, -1],
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        diffuse=[0.7] * 3,
    )
    if robot.ground:
        tex = spec.add_texture(
            name="grid",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
            width=256,
            height=256,
            rgb1=[0.25, 0.3, 0.35],
            rgb2=[0.35, 0.4, 0.45],
        )
        mat = spec.add_material(name="grid", texrepeat=[8, 8])
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        ground = world.add_geom(
            name="ground",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[0, 0, 0.05],
            contype=1,
            conaffinity=1,
            friction=[robot.friction, 0.005, 0.0001],
            material="grid",
            group=ROBOT_GEOM_GROUP,
        )
        ground.solref = list(CONTACT_SOLREF)
    for marker in markers:
        body = world.add_body(name=f"marker_{marker.name}", mocap=True)
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[marker.radius, 0, 0],
            rgba=list(marker.rgba),
            contype=0,
            conaffinity=0,
            group=MARKER_GEOM_GROUP,
        )

    gains = ActuatorGains.from_robot(robot)
    for i, act in enumerate(robot.actuators):
        a = spec.add_actuator(name=act.joint, target=act.joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        a.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        a.gainprm[0] = gains.gain[i]
        a.biasprm[1] = gains.bias_q[i]
        a.biasprm[2] = gains.bias_qd[i]
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-act.force_limit, act.force_limit]
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = list(act.ctrl_range)

    for joint in robot.joints:
        spec.add_sensor(
            name=f"qpos:{joint}",
            type=mujoco.mjtSensor.mjSENS_JOINTPOS,
            objtype=mujoco.mjtObj.mjOBJ_JOINT,
            objname=joint,
        )
    for joint in robot.joints:
        spec.add_sensor(
            name=f"qvel:{joint}",
            type=mujoco.mjtSensor.mjSENS_JOINTVEL,
            objtype=mujoco.mjtObj.mjOBJ_JOINT,
            objname=joint,
        )
    for site in robot.sites:
        spec.body(site.link).add_site(name=site.name, pos=list(site.offset))
        spec.add_sensor(
            name=f"{site.name}_pos",
            type=mujoco.mjtSensor.mjSENS_FRAMEPOS,
            objtype=mujoco.mjtObj.mjOBJ_SITE,
            objname=site.name,
        )
    if robot.floating:
        for name, kind in (
            ("base_pos", mujoco.mjtSensor.mjSENS_FRAMEPOS),
            ("base_quat", mujoco.mjtSensor.mjSENS_FRAMEQUAT),
            ("base_linvel", mujoco.mjtSensor.mjSENS_FRAMELINVEL),
            ("base_angvel", mujoco.mjtSensor.mjSENS_FRAMEANGVEL),
        ):
            spec.add_sensor(
                name=name, type=kind, objtype=mujoco.mjtObj.mjOBJ_XBODY, objname=robot.base_link
            )
        for axis, kind in (
            ("x", mujoco.mjtSensor.mjSENS_FRAMEXAXIS),
            ("y", mujoco.mjtSensor.mjSENS_FRAMEYAXIS),
            ("z", mujoco.mjtSensor.mjSENS_FRAMEZAXIS),
        ):
            spec.add_sensor(
                name=f"base_axis_{axis}",
                type=kind,
                objtype=mujoco.mjtObj.mjOBJ_XBODY,
                objname=robot.base_link,
            )
    return spec


def measurement_layout(model: mujoco.MjModel, robot: RobotDescription) -> dict[str, slice]:
    """Where each measurement lives in ``sensordata``."""

    def span(first: str, last: str) -> slice:
        a, b = model.sensor(first), model.sensor(last)
        return slice(int(a.adr[0]), int(b.adr[0] + b.dim[0]))

    layout = {
        "qpos": span(f"qpos:{robot.joints[0]}", f"qpos:{robot.joints[-1]}"),
        "qvel": span(f"qvel:{robot.joints[0]}", f"qvel:{robot.joints[-1]}"),
    }
    names = [f"{s.name}_pos" for s in robot.sites]
    if robot.floating:
        names += ["base_pos", "base_quat", "base_linvel", "base_angvel"]
    for name in names:
        layout[name] = span(name, name)
    if robot.floating:
        layout["base_axes"] = span("base_axis_x", "base_axis_z")
    return layout


def split_sensordata(sensordata: np.ndarray, layout: dict[str, slice]) -> dict[str, np.ndarray]:
    """Measurements from sensor data of any leading shape: (..., nsensordata) -> {name: (..., k)}."""
    return {name: sensordata[..., sl].copy() for name, sl in layout.items()}


class MuJoCoPhysics(Physics):
    """A robot on MuJoCo. ``model`` and ``data`` are public for batched rollouts and
    derivatives; everything else goes through the ``Physics`` interface."""

    engine = Engine.MUJOCO

    def __init__(self, robot: RobotDescription, markers: tuple[Marker, ...] = ()) -> None:
        super().__init__(robot, markers)
        self.model = build_spec(robot, markers).compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.layout = measurement_layout(m, robot)
        joint_ids = [m.joint(name).id for name in robot.joints]
        self.qpos_address = m.jnt_qposadr[joint_ids]
        """Index in qpos of each measured joint, (n_joints,)."""
        self.dof_address = m.jnt_dofadr[joint_ids]
        """Index in qvel of each measured joint, (n_joints,)."""
        self._links = massive_links(robot)
        self._link_bodies = np.array([m.body(name).id for name in self._links], dtype=int)
        self._robot_geoms = np.flatnonzero(m.geom_group == ROBOT_GEOM_GROUP)
        self._push_body = m.body(robot.push_link).id if robot.push_link else 0
        self._markers = {
            mk.name: int(m.body_mocapid[m.body(f"marker_{mk.name}").id]) for mk in markers
        }
        self._base_joint = m.joint("base") if robot.floating else None
        self._default_mass = m.body_mass[self._link_bodies].copy()
        self._default_inertia = m.body_inertia[self._link_bodies].copy()
        self._default_gain = m.actuator_gainprm[:, 0].copy()
        self._default_bias = m.actuator_biasprm[:, 1:3].copy()
        self._default_forcerange = m.actuator_forcerange.copy()
        self._nominal = DomainParams(
            link_masses=self._default_mass,
            friction=robot.friction,
            joint_damping=m.dof_damping[self.dof_address].copy(),
            actuator_strength=np.ones(m.nu),
            gravity=robot.gravity,
        )
        self._state_size = mujoco.mj_stateSize(m, STATE_SPEC)
        self._renderer: mujoco.Renderer | None = None
        mujoco.mj_forward(m, self.data)

    def step(self, ctrl: np.ndarray, n_steps: int) -> None:
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=n_steps)

    def measure(self) -> dict[str, np.ndarray]:
        # mj_step evaluates sensors before integrating; bring them up to the current state.
        # Position and velocity sensors need only kinematics, not mj_forward's contact solve.
        m, d = self.model, self.data
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        mujoco.mj_sensorPos(m, d)
        mujoco.mj_sensorVel(m, d)
        return split_sensordata(d.sensordata, self.layout)

    def actuator_efforts(self) -> np.ndarray:
        return self.data.actuator_force.copy()

    def get_state(self) -> np.ndarray:
        state = np.empty(self._state_size)
        mujoco.mj_getState(self.model, self.data, state, STATE_SPEC)
        return state

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self._state_size,):
            raise ValueError(
                f"MuJoCo state must have shape ({self._state_size},), got {state.shape}"
            )
        mujoco.mj_setState(self.model, self.data, state, STATE_SPEC)
        mujoco.mj_forward(self.model, self.data)

    def set_configuration(self, config: JointConfiguration) -> None:
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[self.qpos_address] = config.qpos
        d.qvel[self.dof_address] = config.qvel
        if self._base_joint is not None:
            base = config.filled(self.robot)
            qa, va = self._base_joint.qposadr[0], self._base_joint.dofadr[0]
            d.qpos[qa : qa + 3] = base.base_pos
            d.qpos[qa + 3 : qa + 7] = base.base_quat
            # A free joint's linear velocity is in the world frame, its angular velocity in
            # the body frame.
            rot = np.empty(9)
            mujoco.mju_quat2Mat(rot, base.base_quat)
            d.qvel[va : va + 3] = base.base_linvel
            d.qvel[va + 3 : va + 6] = rot.reshape(3, 3).T @ base.base_angvel
        mujoco.mj_forward(self.model, d)

    def nominal_params(self) -> DomainParams:
        return self._nominal

    def apply_params(self, params: DomainParams) -> None:
        self._write_params(self.model, params)

    def model_with(self, params: DomainParams) -> mujoco.MjModel:
        """A copy of the model with ``params`` in force (this physics is left unchanged)."""
        model = copy.copy(self.model)
        self._write_params(model, params)
        return model

    def _write_params(self, m: mujoco.MjModel, params: DomainParams) -> None:
        scale = params.link_masses / self._default_mass
        m.body_mass[self._link_bodies] = params.link_masses
        m.body_inertia[self._link_bodies] = self._default_inertia * scale[:, None]
        m.geom_friction[self._robot_geoms, 0] = params.friction
        m.dof_damping[self.dof_address] = params.joint_damping
        s = params.actuator_strength
        m.actuator_gainprm[:, 0] = self._default_gain * s
        m.actuator_biasprm[:, 1:3] = self._default_bias * s[:, None]
        m.actuator_forcerange[:] = self._default_forcerange * s[:, None]
        m.opt.gravity[:] = (0.0, 0.0, -params.gravity)

    def set_push(self, force: np.ndarray) -> None:
        self.data.xfrc_applied[self._push_body, :3] = force

    def set_marker(self, name: str, position: np.ndarray) -> None:
        self.data.mocap_pos[self._markers[name]] = position

    def render(self, width: int, height: int) -> np.ndarray:
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (
            width,
            height,
        ):
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        spec = self.robot.camera
        cam.lookat[:] = self.camera_target()
        cam.distance, cam.azimuth, cam.elevation = spec.distance, spec.azimuth, spec.elevation
        mujoco.mj_forward(self.model, self.data)
        self._renderer.update_scene(self.data, camera=cam)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
