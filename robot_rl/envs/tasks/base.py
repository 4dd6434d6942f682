"""The task half of an environment: initial states, observations, rewards, costs, termination.

A task never touches an engine. It turns named measurements into observations and scores
transitions with batched, vectorised functions that take NumPy arrays or torch tensors of any
leading shape, so the env (one step, NumPy) and a planner (thousands of imagined steps, torch)
use the same code. Rewards are sums of named terms, so the terms can be read back.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from robot_rl.arrays import namespace
from robot_rl.envs.physics.base import JointConfiguration, Marker
from robot_rl.envs.robots.description import RobotDescription
from robot_rl.types import Array


class Task(abc.ABC):
    """What a robot should do.

    Subclasses set the class attributes and implement ``initial_configuration``, ``observe``
    and ``reward_terms``; they override ``cost``, ``termination``, ``success`` and the task-
    state methods where the task has them. All scoring functions are batched: ``obs`` is
    (..., obs_dim), ``action`` (..., act_dim) normalised to [-1, 1], results (...).

    Attributes:
        robot: the robot the task runs on.
        control_dt: time between actions, s (a multiple of the robot's physics step).
        episode_steps: actions per episode before truncation.
        observation_size: length of the observation vector.
        task_state_size: length of the task's own state (goals, targets), 0 if none.
        markers: visual markers the task moves (goals).
    """

    robot: RobotDescription
    control_dt: ClassVar[float] = 0.05
    episode_steps: ClassVar[int] = 100
    observation_size: ClassVar[int]
    task_state_size: ClassVar[int] = 0
    markers: ClassVar[tuple[Marker, ...]] = ()

    @abc.abstractmethod
    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        """A random start state of the robot."""

    def sample_task_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random task state (a goal), (task_state_size,)."""
        return np.zeros(0)

    def check_task_state(self, task_state: np.ndarray) -> np.ndarray:
        """Validate a task state given by a caller; returns it as float64."""
        task_state = np.asarray(task_state, dtype=np.float64)
        if task_state.shape != (self.task_state_size,):
            raise ValueError(
                f"{type(self).__name__} task state must have shape "
                f"({self.task_state_size},), got {task_state.shape}"
            )
        if not np.isfinite(task_state).all():
            raise ValueError(f"task state must be finite, got {task_state}")
        return task_state

    def marker_positions(self, task_state: np.ndarray) -> dict[str, np.ndarray]:
        """Where each marker should be drawn for ``task_state``."""
        return {}

    @abc.abstractmethod
    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        """Observation (..., obs_dim) from measurements (..., k) and task state (..., s)."""

    @abc.abstractmethod
    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        """Named reward terms, each (...); the reward is their sum."""

    def reward(self, obs: Array, action: Array, next_obs: Array) -> Array:
        """Sum of ``reward_terms``, (...)."""
        terms = iter(self.reward_terms(obs, action, next_obs).values())
        total = next(terms)
        for term in terms:
            total = total + term
        return total

    def cost(self, obs: Array, action: Array, next_obs: Array) -> Array:
        """Safety cost (...), 0 where the transition is safe. No cost by default."""
        return namespace(next_obs).zeros_like(next_obs[..., 0])

    def termination(self, obs: Array, action: Array, next_obs: Array) -> Array:
        """True (...) where ``next_obs`` is terminal. Never by default."""
        xp = namespace(next_obs)
        if xp is np:
            return np.zeros(next_obs.shape[:-1], dtype=bool)
        return xp.zeros(next_obs.shape[:-1], dtype=xp.bool, device=next_obs.device)

    @abc.abstractmethod
    def success(self, obs: Array) -> Array:
        """True (...) where ``obs`` meets the task's success criterion."""


def uniform_configuration(
    rng: np.random.Generator, qpos: np.ndarray, qpos_noise: float, qvel_noise: float
) -> JointConfiguration:
    """Joint positions ``qpos`` ± ``qpos_noise`` and velocities ± ``qvel_noise``, uniform."""
    qpos = np.asarray(qpos, dtype=np.float64)
    return JointConfiguration(
        qpos=qpos + rng.uniform(-qpos_noise, qpos_noise, qpos.shape),
        qvel=rng.uniform(-qvel_noise, qvel_noise, qpos.shape),
    )


def effort(action: Array, weight: float) -> Array:
    """-weight · Σ action², (...)."""
    return -weight * (action * action).sum(-1)
