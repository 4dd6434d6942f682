"""``RobotEnv``: a task on a physics engine behind the gymnasium API.

The environment owns what happens between two actions: the action -> actuator control map,
the physics substeps, action latency (a real delay of the control, applied at physics-step
resolution), random pushes, observation noise, the time limit and domain randomization.
The task owns observations and scoring; the physics owns the engine.
"""

from __future__ import annotations

import collections
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.envs.physics.base import Engine, Physics
from robot_rl.envs.randomization import (
    DomainParams,
    ParamDistribution,
    sample_domain_params,
    validate_table,
)
from robot_rl.envs.tasks.base import Task

PUSH_INTERVAL = 2.0
"""Mean time between random pushes (when ``push_force`` > 0), s."""


def make_physics(engine: Engine | str, task: Task) -> Physics:
    """Build the task's robot on ``engine``."""
    engine = parse_engine(engine)
    if engine is Engine.MUJOCO:
        from robot_rl.envs.physics.mujoco import MuJoCoPhysics

        return MuJoCoPhysics(task.robot, task.markers)
    from robot_rl.envs.physics.pybullet import PyBulletPhysics

    return PyBulletPhysics(task.robot, task.markers)


def parse_engine(engine: Engine | str) -> Engine:
    try:
        return Engine(engine)
    except ValueError:
        known = ", ".join(e.value for e in Engine)
        raise ValueError(f"unknown engine {engine!r}; choose one of: {known}") from None


@dataclass(frozen=True)
class Randomization:
    """Domain randomization settings for an env.

    Attributes:
        table: parameter -> distribution (relative to the robot's defaults).
        resample_every: also resample every this many steps within an episode (None: only
            at reset).
    """

    table: Mapping[str, ParamDistribution]
    resample_every: int | None = None

    def __post_init__(self) -> None:
        if self.resample_every is not None and self.resample_every < 1:
            raise ValueError(f"resample_every must be >= 1 step, got {self.resample_every}")


@dataclass(frozen=True)
class EnvState:
    """Everything needed to resume an env exactly (domain parameters excepted).

    Attributes:
        physics: the engine's full state (layout specific to the engine).
        task_state: the task's state (goal), (task_state_size,).
        step: actions taken this episode.
        obs: the noise-free observation at this state.
        active_ctrl: actuator control currently applied, physical units.
        pending: controls still in the latency pipeline, as (physics step due, control).
        push: push force now applied (3,), N, and control steps it has left.
        noise_rng: state of the generator behind observation noise and pushes.
    """

    physics: np.ndarray
    task_state: np.ndarray
    step: int
    obs: np.ndarray
    active_ctrl: np.ndarray
    pending: tuple[tuple[int, np.ndarray], ...] = ()
    push: np.ndarray = field(default_factory=lambda: np.zeros(4))
    noise_rng: dict[str, Any] = field(default_factory=dict)


class RobotEnv(gym.Env[np.ndarray, np.ndarray]):
    """A ``Task`` on a physics ``Engine``, with domain randomization.

    Observations are float32 in the task's units; actions are normalised to [-1, 1] per
    actuator (values outside are clipped to the bounds; NaN, inf and wrong shapes raise).
    ``info`` carries the reward terms (they sum to the reward), the safety ``cost``,
    ``success``, and the domain parameters in force (an immutable ``DomainParams``; its
    ``as_dict()`` gives plain values for logs).

    Args:
        task: what to do.
        engine: ``mujoco`` or ``pybullet``.
        randomization: domain randomization, or None for the nominal robot.
        render_mode: ``rgb_array`` or None.
        render_size: (width, height) of rendered frames, pixels.
        max_episode_steps: truncate after this many steps (default: the task's; None: never).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012

    _UNSET: Any = object()

    def __init__(
        self,
        task: Task,
        engine: Engine | str = Engine.MUJOCO,
        randomization: Randomization | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (480, 360),
        max_episode_steps: int | None = _UNSET,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task = task
        self.engine = parse_engine(engine)
        self.physics = make_physics(self.engine, task)
        self.render_mode = render_mode
        self.render_size = render_size
        self.metadata = {**self.metadata, "render_fps": round(1.0 / task.control_dt)}
        robot = task.robot
        self.substeps = round(task.control_dt / robot.timestep)
        if not math.isclose(self.substeps * robot.timestep, task.control_dt, rel_tol=1e-9):
            raise ValueError(
                f"control_dt {task.control_dt} s is not a multiple of the physics "
                f"step {robot.timestep} s"
            )
        self.max_episode_steps = (
            task.episode_steps if max_episode_steps is self._UNSET else max_episode_steps
        )
        n_act = robot.action_size
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_act,), np.float32)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, (task.observation_size,), np.float32
        )
        self._ctrl_mid = 0.5 * (robot.ctrl_low + robot.ctrl_high)
        self._ctrl_half = 0.5 * (robot.ctrl_high - robot.ctrl_low)

        self.nominal_params = self.physics.nominal_params()
        if randomization is not None:
            validate_table(randomization.table, self.nominal_params)
        self.randomization = randomization
        self._fixed_params: DomainParams | None = None
        self._params = self.nominal_params

        self._rng_params = self._rng_init = self._rng_noise = np.random.default_rng(0)
        self._seeded = False
        self._task_state = np.zeros(task.task_state_size)
        self._obs = np.zeros(task.observation_size)
        self._step = 0
        self._substep = 0
        self._latency_steps = 0
        self._active_ctrl = self._ctrl_mid.copy()
        self._pending: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._push = np.zeros(3)
        self._push_left = 0
        self._needs_reset = True

    # -- domain parameters -------------------------------------------------------------------
    @property
    def domain_params(self) -> DomainParams:
        """The physical parameters in force."""
        return self._params

    def set_domain_params(self, params: DomainParams | None) -> None:
        """Fix the domain parameters from now on (for evaluation), or None to resume
        randomization (or the nominal robot) at the next reset."""
        if params is not None:
            if not isinstance(params, DomainParams):
                raise TypeError("set_domain_params expects a DomainParams or None")
            for name in ("link_masses", "joint_damping", "actuator_strength"):
                if getattr(params, name).shape != getattr(self.nominal_params, name).shape:
                    raise ValueError(
                        f"{name} must have shape {getattr(self.nominal_params, name).shape}"
                    )
            self._apply_params(params)
        self._fixed_params = params

    def _apply_params(self, params: DomainParams) -> None:
        self.physics.apply_params(params)
        self._params = params
        self._latency_steps = round(params.latency / self.task.robot.timestep)

    def _draw_params(self) -> DomainParams:
        if self._fixed_params is not None:
            return self._fixed_params
        if self.randomization is None:
            return self.nominal_params
        return sample_domain_params(self.nominal_params, self.randomization.table, self._rng_params)

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        Options:
            task_state: an exact task state (goal) instead of a random one.
        """
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            seeds = self.np_random.integers(0, 2**63, size=3)
            self._rng_params, self._rng_init, self._rng_noise = (
                np.random.default_rng(s) for s in seeds
            )
            self._seeded = True
        options = dict(options or {})
        task_state = options.pop("task_state", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: ['task_state']")

        self._apply_params(self._draw_params())
        self.physics.set_configuration(self.task.initial_configuration(self._rng_init))
        sampled = self.task.sample_task_state(self._rng_init)
        self._task_state = sampled if task_state is None else self.task.check_task_state(task_state)
        for name, position in self.task.marker_positions(self._task_state).items():
            self.physics.set_marker(name, position)
        self._step = self._substep = 0
        self._active_ctrl = self._ctrl_mid.copy()
        self._pending.clear()
        self._set_push(np.zeros(3), 0)
        self._obs = self._observe()
        self._needs_reset = False
        return self._noisy(self._obs), {"domain_params": self._params}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        action = self._check_action(action)
        ctrl = self._ctrl_mid + self._ctrl_half * action
        self._maybe_push()
        self._advance(ctrl)
        self._step += 1

        obs, next_obs = self._obs, self._observe()
        task = self.task
        terms = task.reward_terms(obs, action, next_obs)
        reward_terms = {name: float(value) for name, value in terms.items()}
        reward = math.fsum(reward_terms.values())
        cost = float(task.cost(obs, action, next_obs))
        terminated = bool(task.termination(obs, action, next_obs))
        truncated = self.max_episode_steps is not None and self._step >= self.max_episode_steps
        self._obs = next_obs
        resample = self.randomization is not None and self.randomization.resample_every
        if resample and self._fixed_params is None and self._step % resample == 0:
            self._apply_params(self._draw_params())
        info = {
            "reward_terms": reward_terms,
            "cost": cost,
            "success": bool(task.success(next_obs)),
            "domain_params": self._params,
        }
        if self._push_left:
            info["push"] = self._push.copy()
        return self._noisy(next_obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        return self.physics.render(*self.render_size)

    def close(self) -> None:
        self.physics.close()

    # -- state for planners ------------------------------------------------------------------------
    def get_state(self) -> EnvState:
        """The current state, so a planner can start from it and the env can be restored."""
        return EnvState(
            physics=self.physics.get_state(),
            task_state=self._task_state.copy(),
            step=self._step,
            obs=self._obs.copy(),
            active_ctrl=self._active_ctrl.copy(),
            pending=tuple((due - self._substep, c.copy()) for due, c in self._pending),
            push=np.append(self._push, self._push_left),
            noise_rng=copy.deepcopy(self._rng_noise.bit_generator.state),
        )

    def set_state(self, state: EnvState) -> None:
        """Restore a state from ``get_state`` (of an env of the same id and engine)."""
        if not isinstance(state, EnvState):
            raise TypeError("set_state expects an EnvState from get_state()")
        self.physics.set_state(state.physics)
        self._task_state = (
            self.task.check_task_state(state.task_state)
            if self.task.task_state_size
            else np.zeros(0)
        )
        for name, position in self.task.marker_positions(self._task_state).items():
            self.physics.set_marker(name, position)
        self._step, self._substep = state.step, 0
        self._obs = np.array(state.obs, dtype=np.float64)
        self._active_ctrl = np.array(state.active_ctrl, dtype=np.float64)
        self._pending = collections.deque((due, c.copy()) for due, c in state.pending)
        self._set_push(state.push[:3], int(state.push[3]))
        if state.noise_rng:
            self._rng_noise.bit_generator.state = copy.deepcopy(state.noise_rng)
        self._needs_reset = False

    @property
    def task_state(self) -> np.ndarray:
        """The task's state (goal) this episode."""
        return self._task_state.copy()

    # -- internals ------------------------------------------------------------------------------------
    def _check_action(self, action: np.ndarray) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        peak = np.abs(a).max()
        if not peak <= 1.0:  # also true for NaN
            if not np.isfinite(a).all():
                raise ValueError(f"action must be finite, got {a.tolist()}")
            a = np.clip(a, -1.0, 1.0)
        return a

    def _advance(self, ctrl: np.ndarray) -> None:
        """Run one control period, the new control taking effect after the latency."""
        start, end = self._substep, self._substep + self.substeps
        if self._latency_steps == 0 and not self._pending:
            self._active_ctrl = ctrl
            self.physics.step(ctrl, self.substeps)
            self._substep = end
            return
        self._pending.append((start + self._latency_steps, ctrl))
        now = start
        while now < end:
            while self._pending and self._pending[0][0] <= now:
                self._active_ctrl = self._pending.popleft()[1]
            until = min(self._pending[0][0], end) if self._pending else end
            self.physics.step(self._active_ctrl, until - now)
            now = until
        self._substep = end

    def _maybe_push(self) -> None:
        if self._push_left:
            self._push_left -= 1
            if not self._push_left:
                self._set_push(np.zeros(3), 0)
            return
        if self._params.push_force <= 0.0:
            return
        if self._rng_noise.random() < self.task.control_dt / PUSH_INTERVAL:
            angle = self._rng_noise.uniform(-np.pi, np.pi)
            force = self._params.push_force * np.array([np.cos(angle), np.sin(angle), 0.0])
            self._set_push(force, 1)

    def _set_push(self, force: np.ndarray, steps: int) -> None:
        self._push = np.asarray(force, dtype=np.float64).copy()
        self._push_left = steps
        self.physics.set_push(self._push)

    def _observe(self) -> np.ndarray:
        return self.task.observe(self.physics.measure(), self._task_state)

    def _noisy(self, obs: np.ndarray) -> np.ndarray:
        if self._params.obs_noise > 0.0:
            obs = obs + self._rng_noise.normal(0.0, self._params.obs_noise, obs.shape)
        return obs.astype(np.float32)
