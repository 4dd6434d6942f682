"""Training conditions (goals) for GPS, spread over a reaching task's goal space."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from robot_rl.envs.tasks.base import Task
from robot_rl.envs.tasks.reaching import ArmReach, ReacherTwoLink
from robot_rl.evaluation import Evaluation, run_episode
from robot_rl.types import Policy


def spread_goals(task: Task, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` goals that cover the task's goal space evenly (a stratified design).

    - Two-link reacher: one goal per equal angular sector (with a random offset), at the
      centres of equal radial strata of the goal annulus, the smaller radii in front of the
      start pose (see the comment below).
    - 7-DoF arm: a Latin-hypercube sample of the target box.

    Raises:
        ValueError: ``count`` < 1, or a task without a known goal space.
    """
    if count < 1:
        raise ValueError(f"need at least one goal, got {count}")
    strata = (np.arange(count) + rng.uniform(0.2, 0.8, count)) / count
    if isinstance(task, ReacherTwoLink):
        lo, hi = task.goal_radius
        angles = 2.0 * np.pi * np.arange(count) / count + rng.uniform(0.0, 2.0 * np.pi)
        angles = np.arctan2(np.sin(angles), np.cos(angles))
        # The arm starts stretched along +x. For a goal behind it at a small radius, folding
        # the elbow is a local minimum of the reaching cost that the local trajectory
        # optimiser does not leave, so the small radii go to the goals in front.
        radii = np.empty(count)
        radii[np.argsort(np.abs(angles))] = lo + (hi - lo) * (np.arange(count) + 0.5) / count
        return [
            np.array([r * np.cos(a), r * np.sin(a)]) for r, a in zip(radii, angles, strict=True)
        ]
    if isinstance(task, ArmReach):
        dims = len(task.target_low)
        unit = np.stack([rng.permutation(strata) for _ in range(dims)], axis=1)
        return list(task.target_low + unit * (task.target_high - task.target_low))
    raise ValueError(f"no goal space known for {type(task).__name__}")


def held_out_goals(task: Task, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` goals drawn from the task's own goal distribution."""
    return [task.sample_task_state(rng) for _ in range(count)]


def evaluate_on_goals(
    env: gym.Env, policy: Policy, goals: Sequence[np.ndarray], seed: int
) -> Evaluation:
    """One episode per goal (reset seeds ``seed, seed + 1, ...``), summarised."""
    episodes = [
        run_episode(env, policy, seed=seed + i, options={"task_state": np.asarray(goal)})
        for i, goal in enumerate(goals)
    ]
    return Evaluation.from_episodes(episodes)
