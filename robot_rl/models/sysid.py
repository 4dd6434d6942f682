"""System identification: fit a robot's simulator parameters to logged runs.

The fit uses ``mujoco.sysid`` (Levenberg-Marquardt on simulated-minus-measured joint
trajectories, rolled out in parallel with ``mujoco.rollout``). The parameters are fields of
``DomainParams`` (link masses, joint damping, actuator strength, ...) written into the model
by the same code that domain randomization uses, so an identified set can be handed straight
to ``env.set_domain_params``. Runs are cut into short segments that each start from the
measured state (multiple shooting): a swinging pole is chaotic over seconds, and
single-shooting fits of whole runs stall in local minima.

Not everything is identifiable from kinematics alone: scaling every mass and the actuator
strength together leaves the motion unchanged, so fit strength or the masses, not both.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_rl.envs.physics.mujoco import MuJoCoPhysics, build_spec
from robot_rl.envs.randomization import DomainParams
from robot_rl.envs.robots.description import RobotDescription

FITTABLE = ("link_masses", "joint_damping", "actuator_strength")
"""DomainParams fields ``identify`` can fit."""


@dataclass(frozen=True)
class RecordedRun:
    """A logged run of a fixed-base robot, sampled once per control period.

    Attributes:
        qpos: (T + 1, n_joints) joint positions at the start and after each command, rad or m.
        qvel: (T + 1, n_joints) joint velocities, rad/s or m/s.
        ctrl: (T, n_act) actuator controls in physical units, each held for one period.
        control_dt: control period, s.
    """

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    control_dt: float

    def check(self, robot: RobotDescription) -> None:
        """Raise ``ValueError`` naming what does not fit ``robot``."""
        n_joints, n_act = len(robot.joints), robot.action_size
        steps = len(self.ctrl)
        if steps < 1:
            raise ValueError("a recorded run needs at least one command")
        expected = {
            "qpos": (steps + 1, n_joints),
            "qvel": (steps + 1, n_joints),
            "ctrl": (steps, n_act),
        }
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(f"recorded {name} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"recorded {name} contains NaN or inf")
        if self.control_dt <= 0:
            raise ValueError(f"control_dt must be positive, got {self.control_dt}")


@dataclass(frozen=True)
class SysIdResult:
    """What the fit found.

    Attributes:
        estimate: the identified parameters (unfitted fields as in ``initial``).
        initial: where the fit started.
        fitted: the fields that were fitted.
        initial_rms: RMS of the normalised residual before the fit.
        final_rms: ... and after it.
        segments: shooting segments fitted.
        skipped_segments: segments left out because a joint touched its limit.
    """

    estimate: DomainParams
    initial: DomainParams
    fitted: tuple[str, ...]
    initial_rms: float
    final_rms: float
    segments: int
    skipped_segments: int


def identify(
    robot: RobotDescription,
    runs: Sequence[RecordedRun],
    initial: DomainParams,
    fit: Sequence[str] = ("link_masses", "joint_damping"),
    segment_steps: int = 10,
    scale_bounds: tuple[float, float] = (0.25, 4.0),
    max_damping: float = 1.0,
    max_iterations: int = 50,
) -> SysIdResult:
    """Fit ``fit`` fields of the robot's parameters to ``runs``.

    Args:
        robot: the robot the runs come from (fixed base).
        runs: logged runs.
        initial: starting point (usually the nominal parameters); unfitted fields stay.
        fit: which ``DomainParams`` fields to fit (see ``FITTABLE``).
        segment_steps: control periods per shooting segment.
        scale_bounds: bounds on masses and strength as factors of ``initial``.
        max_damping: upper bound on joint damping, N·m·s/rad or N·s/m.
        max_iterations: optimiser iteration limit.
    """
    from mujoco import sysid

    if robot.floating:
        raise ValueError("identify supports fixed-base robots (their state is qpos, qvel)")
    unknown = set(fit) - set(FITTABLE)
    if unknown or not fit:
        raise ValueError(f"can fit a non-empty subset of {FITTABLE}, got {list(fit)}")
    if not runs:
        raise ValueError("identify needs at least one recorded run")
    if segment_steps < 1:
        raise ValueError(f"segment_steps must be >= 1, got {segment_steps}")
    for run in runs:
        run.check(robot)

    physics = MuJoCoPhysics(robot)
    model = physics.model
    substeps = round(runs[0].control_dt / model.opt.timestep)
    if not np.isclose(substeps * model.opt.timestep, runs[0].control_dt):
        raise ValueError(
            f"control_dt {runs[0].control_dt} s is not a multiple of {model.opt.timestep} s"
        )

    params = sysid.ParameterDict()
    low, high = scale_bounds
    for name in fit:
        value = np.asarray(getattr(initial, name), dtype=np.float64)
        if name == "joint_damping":
            bounds = (np.zeros_like(value), np.full_like(value, max_damping))
        else:
            bounds = (value * low, value * high)
        params.add(sysid.Parameter(name, nominal=value, min_value=bounds[0], max_value=bounds[1]))

    def build_model(candidate: sysid.ParameterDict, _spec: mujoco.MjSpec) -> mujoco.MjModel:
        return physics.model_with(initial.replace(**{n: candidate[n].value.copy() for n in fit}))

    # Compare against the rollout's states (timed after each step), not its sensors (which
    # MuJoCo evaluates before integrating, one physics step earlier).
    state_signals = [(j, sysid.SignalType.MjStateQPos) for j in robot.joints] + [
        (j, sysid.SignalType.MjStateQVel) for j in robot.joints
    ]
    dt = model.opt.timestep
    control_times = np.arange(segment_steps * substeps) * dt
    measured_times = np.arange(segment_steps + 1) * substeps * dt
    lower, upper = _joint_limits(physics)
    inits, controls, measured = [], [], []
    skipped = 0
    for run in runs:
        for start in range(0, len(run.ctrl) - segment_steps + 1, segment_steps):
            stop = start + segment_steps
            q = run.qpos[start : stop + 1]
            if np.any((q <= lower) | (q >= upper)):
                skipped += 1  # limit contacts are modelled differently by every engine
                continue
            inits.append(sysid.create_initial_state(model, *_model_order(physics, run, start)))
            controls.append(
                sysid.TimeSeries(control_times, np.repeat(run.ctrl[start:stop], substeps, axis=0))
            )
            states = np.hstack([run.qpos[start : stop + 1], run.qvel[start : stop + 1]])
            measured.append(
                sysid.TimeSeries.from_names(measured_times, states, model, names=state_signals)
            )
    if not inits:
        raise ValueError(
            f"no segment of {segment_steps} steps away from the joint limits in the runs "
            f"({skipped} touched a limit)"
        )

    with _quiet_absl():  # it warns that we compare joint states, not every sensor
        sequences = sysid.ModelSequences(
            robot.name, build_spec(robot), [f"segment{i}" for i in range(len(inits))], inits, controls,
            measured, allow_missing_sensors=True,
        )  # fmt: skip
    residual_fn = sysid.build_residual_fn(models_sequences=[sequences], build_model=build_model)

    def rms(candidate: sysid.ParameterDict) -> float:
        residuals, _, _ = residual_fn(candidate.as_vector(), candidate)
        return float(np.sqrt(np.mean(np.concatenate(residuals) ** 2)))

    params.move_off_bounds()  # damping's default, 0, is its lower bound
    start_rms = rms(params)
    with _quiet_absl():
        best, _ = sysid.optimize(
            initial_params=params, residual_fn=residual_fn, optimizer="mujoco",
            max_iters=max_iterations, verbose=False, output=io.StringIO(),
        )  # fmt: skip
    estimate = initial.replace(**{n: best[n].value.copy() for n in fit})
    return SysIdResult(
        estimate=estimate, initial=initial, fitted=tuple(fit), initial_rms=start_rms,
        final_rms=rms(best), segments=len(inits), skipped_segments=skipped,
    )  # fmt: skip


def _model_order(
    physics: MuJoCoPhysics, run: RecordedRun, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """The run's joint state at ``step`` in MuJoCo's qpos / qvel order."""
    qpos = np.zeros(physics.model.nq)
    qvel = np.zeros(physics.model.nv)
    qpos[physics.qpos_address] = run.qpos[step]
    qvel[physics.dof_address] = run.qvel[step]
    return qpos, qvel


def _joint_limits(physics: MuJoCoPhysics, margin: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of each measured joint, shrunk by ``margin`` of the range; ±inf where
    a joint is unlimited."""
    model = physics.model
    joints = model.dof_jntid[physics.dof_address]
    limited = model.jnt_limited[joints].astype(bool)
    low, high = model.jnt_range[joints].T
    inset = margin * (high - low)
    return np.where(limited, low + inset, -np.inf), np.where(limited, high - inset, np.inf)


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Hold mujoco.sysid's absl logging to errors (it logs progress and benign warnings)."""
    logger = logging.getLogger("absl")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)
