"""The true simulator as a batched ``Dynamics`` and an oracle for planners.

``SimulatorDynamics`` rolls an env's own MuJoCo model forward with ``mujoco.rollout`` (many
trajectories in one C call, optionally on several threads), exactly as the env steps it:
the action becomes the actuator control ``mid + half · action`` held for ``env.substeps``
physics steps. It uses the env's model read-only (so the domain parameters in force) and its
own ``MjData``, never the env's, so planning leaves the env's state untouched.

Two conventions to know:

- State is MuJoCo's ``mjSTATE_FULLPHYSICS`` vector (time, qpos, qvel, act, history, plugin
  and plasticity state), what ``mujoco.rollout`` consumes and produces. The env's
  ``get_state().physics`` is the larger ``mjSTATE_INTEGRATION`` vector; ``from_env`` converts
  it (and keeps the solver warm start, so contact-rich rollouts match the env bit for bit).
- ``mj_step`` computes sensors before it integrates, so rollout sensor row k describes the
  state before step k: observation t is row ``t · substeps`` and one extra step at the end
  gives the last observation.

As an oracle it knows what the env does not show a planner (the true state, the current
domain parameters, the action latency and the controls still in the latency pipeline) and
ignores what it cannot know in advance: random pushes and observation noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import mujoco.rollout
import numpy as np
import torch

from robot_rl.envs.physics.base import Engine
from robot_rl.envs.physics.mujoco import split_sensordata
from robot_rl.types import Array

if TYPE_CHECKING:
    from robot_rl.envs.env import RobotEnv

STATE_SPEC = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
ENV_STATE_SPEC = int(mujoco.mjtState.mjSTATE_INTEGRATION)


def _component_slices(model: mujoco.MjModel, spec: int) -> dict[int, slice]:
    """Where each state component (one bit of ``spec``) lives in a ``spec`` state vector.

    MuJoCo concatenates the components of a state vector in the order of their bits.
    """
    slices, offset, bit = {}, 0, 1
    while bit <= spec:
        if spec & bit:
            size = mujoco.mj_stateSize(model, bit)
            slices[bit] = slice(offset, offset + size)
            offset += size
        bit <<= 1
    return slices


@dataclass(frozen=True)
class ControlDelay:
    """Action latency as the env applies it.

    A new action's control takes effect ``steps`` physics steps into its control period;
    before that the ``active`` control holds, then each ``pending`` control from its due step.

    Attributes:
        steps: latency in physics steps.
        active: (nu,) control applied now, physical units.
        pending: (due physics step from now, control) pairs still in the pipeline.
    """

    steps: int
    active: np.ndarray
    pending: tuple[tuple[int, np.ndarray], ...] = ()

    @classmethod
    def of(cls, env: RobotEnv) -> ControlDelay:
        """The delay in force in ``env`` now."""
        state = env.get_state()
        steps = round(env.domain_params.latency / env.task.robot.timestep)
        return cls(steps, state.active_ctrl, state.pending)


class SimulatorDynamics:
    """An env's MuJoCo physics as a batched ``Dynamics`` and an oracle ``TrajectoryEvaluator``.

    Args:
        env: a ``RobotEnv`` on MuJoCo.
        threads: rollout threads (1: in the calling thread).
        cost_weight: as an evaluator, score reward - ``cost_weight`` · safety cost per step.
    """

    def __init__(self, env: RobotEnv, threads: int = 1, cost_weight: float = 0.0) -> None:
        if env.engine is not Engine.MUJOCO:
            raise ValueError(f"SimulatorDynamics needs a MuJoCo env, got {env.engine.value}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if cost_weight < 0:
            raise ValueError(f"cost_weight must be >= 0, got {cost_weight}")
        self.env, self.cost_weight = env, float(cost_weight)
        self.model: mujoco.MjModel = env.physics.model
        self.substeps = env.substeps
        robot = env.task.robot
        self.ctrl_mid = 0.5 * (np.asarray(robot.ctrl_low) + np.asarray(robot.ctrl_high))
        self.ctrl_half = 0.5 * (np.asarray(robot.ctrl_high) - np.asarray(robot.ctrl_low))
        self.act_dim = len(self.ctrl_mid)
        self.state_size = mujoco.mj_stateSize(self.model, STATE_SPEC)
        env_slices = _component_slices(self.model, ENV_STATE_SPEC)
        self._full_index = np.concatenate(
            [
                np.arange(env_slices[bit].start, env_slices[bit].stop)
                for bit in _component_slices(self.model, STATE_SPEC)
            ]
        )
        self._warmstart = env_slices[int(mujoco.mjtState.mjSTATE_WARMSTART)]
        self._env_state_size = mujoco.mj_stateSize(self.model, ENV_STATE_SPEC)
        self._datas = [mujoco.MjData(self.model) for _ in range(threads)]
        self._pool = mujoco.rollout.Rollout(nthread=threads if threads > 1 else 0)

    def close(self) -> None:
        """Stop the rollout threads."""
        self._pool.close()

    # -- conversions ---------------------------------------------------------------------------
    def from_env(self, env_physics_state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split env states (..., n_integration) into (state (..., n_full), warm start (..., nv))."""
        s = np.asarray(env_physics_state, dtype=np.float64)
        if s.shape[-1] != self._env_state_size:
            raise ValueError(
                f"env physics state must have {self._env_state_size} entries, got {s.shape[-1]}"
            )
        return s[..., self._full_index], s[..., self._warmstart]

    def controls(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions (..., A) -> actuator controls (..., nu), physical units."""
        return self.ctrl_mid + self.ctrl_half * np.clip(actions, -1.0, 1.0)

    # -- rollouts ----------------------------------------------------------------------------------
    def control_timeline(
        self, actions: np.ndarray, delay: ControlDelay | None = None
    ) -> np.ndarray:
        """Per-physics-step controls (B, H · substeps + 1, nu) for (B, H, A) actions.

        Without a delay each action's control is held for its whole period; with one, the
        control in force at physics step j is the latest whose due step is <= j, as the env
        applies it. The extra last step repeats the last control (it only yields sensors).
        """
        ctrl = self.controls(actions)
        H = ctrl.shape[1]
        k = self.substeps
        j = np.arange(H * k + 1)
        lag = 0 if delay is None else delay.steps
        period = np.minimum((j - lag) // k, H - 1)
        timeline = ctrl[:, np.maximum(period, 0)]
        if delay is not None and lag > 0:
            early = np.broadcast_to(delay.active, (lag, len(delay.active))).copy()
            for due, c in sorted(delay.pending, key=lambda p: p[0]):
                early[max(due, 0) :] = c
            n = min(lag, len(j))
            timeline[:, :n] = early[:n]
        return timeline

    def rollout(
        self,
        state: np.ndarray,
        actions: np.ndarray,
        warmstart: np.ndarray | None = None,
        delay: ControlDelay | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Roll out action sequences from states.

        Args:
            state: (B or 1, n_full) start states.
            actions: (B, H, A) normalised actions, one per control period.
            warmstart: (B or 1, nv) solver warm start at the start, or None.
            delay: the env's action latency (None: none).

        Returns:
            (states (B, H, n_full) after each action, sensordata (B, H + 1, n_sensor) at the
            start and after each action).
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[2] != self.act_dim:
            raise ValueError(f"actions must have shape (B, H, {self.act_dim}), got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError("actions must be finite")
        H, k = actions.shape[1], self.substeps
        ctrl = self.control_timeline(actions, delay)
        state = np.atleast_2d(np.asarray(state, dtype=np.float64))
        if state.shape[1] != self.state_size:
            raise ValueError(f"state must have {self.state_size} entries, got {state.shape[1]}")
        if warmstart is not None:
            warmstart = np.atleast_2d(np.asarray(warmstart, dtype=np.float64))
        states, sensordata = self._pool.rollout(
            self.model, self._datas, state, ctrl, initial_warmstart=warmstart
        )
        return states[:, k - 1 : H * k : k], sensordata[:, ::k]

    def observations(self, sensordata: np.ndarray, task_state: np.ndarray) -> np.ndarray:
        """Observations (..., obs_dim) from sensor rows (..., n_sensor) for a task state."""
        return self.env.task.observe(
            split_sensordata(sensordata, self.env.physics.layout), task_state
        )

    # -- the Dynamics protocol ---------------------------------------------------------------------
    def step(self, state: Array, action: Array) -> Array:
        """(B, n_full) states, (B, A) actions -> (B, n_full) states one control period later.

        Pure physics: the control is applied at once (no latency). NumPy or torch in, the
        same kind out (computed in float64 NumPy).
        """
        is_torch = torch.is_tensor(state)
        s = state.detach().cpu().numpy() if is_torch else np.asarray(state)
        a = action.detach().cpu().numpy() if torch.is_tensor(action) else np.asarray(action)
        next_state = self.rollout(s, np.asarray(a, dtype=np.float64)[:, None])[0][:, 0]
        return torch.as_tensor(next_state, dtype=state.dtype) if is_torch else next_state

    # -- the oracle evaluator ------------------------------------------------------------------------
    def evaluate(self, obs: Array, actions: torch.Tensor) -> torch.Tensor:
        """Returns of (C, H, A) action sequences from the env's current true state.

        ``obs`` is ignored: the oracle reads ``env.get_state()`` and the env's latency. Each step scores reward -
        ``cost_weight`` · cost; steps after a terminal state count as 0; non-finite returns
        become -inf.
        """
        env_state = self.env.get_state()
        state, warmstart = self.from_env(env_state.physics)
        a = actions.detach().cpu().numpy().astype(np.float64)
        _, sensordata = self.rollout(state, a, warmstart, ControlDelay.of(self.env))
        obs_seq = self.observations(sensordata, env_state.task_state)
        task = self.env.task
        rewards = task.reward(obs_seq[:, :-1], a, obs_seq[:, 1:])
        if self.cost_weight:
            rewards = rewards - self.cost_weight * task.cost(obs_seq[:, :-1], a, obs_seq[:, 1:])
        done = task.termination(obs_seq[:, :-1], a, obs_seq[:, 1:])
        alive = np.cumprod(
            np.concatenate([np.ones((len(a), 1)), 1.0 - done[:, :-1]], axis=1), axis=1
        )
        returns = (rewards * alive).sum(1)
        returns = np.where(np.isfinite(returns), returns, -math.inf)
        return torch.as_tensor(returns, dtype=actions.dtype)
