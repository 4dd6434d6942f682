"""Reaching tasks: bring a fingertip or end effector to a goal drawn each episode.

The goal is the task state: it is part of the observation (so a learned model or a planner
sees it) and can be set exactly through ``reset(options={"task_state": goal})`` to evaluate
on held-out goals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robot_rl.arrays import concat, namespace, norm, stack
from robot_rl.envs.physics.base import JointConfiguration, Marker
from robot_rl.envs.robots import IIWA, REACHER, iiwa_torque_control
from robot_rl.envs.robots.description import ControlMode
from robot_rl.envs.tasks.base import Task, effort, uniform_configuration
from robot_rl.types import Array

GOAL_MARKER = Marker("goal", radius=0.015, rgba=(0.2, 0.8, 0.2, 0.8))


class ReacherTwoLink(Task):
    """Move the tip of a planar two-link arm (0.1 m + 0.11 m) onto a random goal.

    - Observation (10,): cos q (2), sin q (2), q̇ (2, rad/s), goal xy (2, m),
      tip - goal xy (2, m).
    - Action (2,): joint torques / 0.05 N·m in [-1, 1].
    - Reward: ``distance`` -|tip - goal| / 0.1 m, ``effort`` -0.01 |a|².
    - Start: q ~ U(-0.1, 0.1), q̇ ~ U(-0.1, 0.1); goal radius ~ U(0.05, 0.2) m at a uniform
      angle. Episode: 50 steps of 0.05 s.
    - Success: tip within ``success_radius`` (2 cm) of the goal.
    - Version history: v0, initial release.
    """

    robot = REACHER
    episode_steps = 50
    observation_size = 10
    task_state_size = 2
    markers = (GOAL_MARKER,)
    success_radius = 0.02
    goal_radius = (0.05, 0.2)

    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        return uniform_configuration(rng, np.zeros(2), 0.1, 0.1)

    def sample_task_state(self, rng: np.random.Generator) -> np.ndarray:
        radius = rng.uniform(*self.goal_radius)
        angle = rng.uniform(-np.pi, np.pi)
        return np.array([radius * np.cos(angle), radius * np.sin(angle)])

    def check_task_state(self, task_state: np.ndarray) -> np.ndarray:
        goal = super().check_task_state(task_state)
        if np.linalg.norm(goal) > 0.21:
            raise ValueError(f"goal {goal} is out of the reacher's 0.21 m reach")
        return goal

    def marker_positions(self, task_state: np.ndarray) -> dict[str, np.ndarray]:
        return {"goal": np.array([task_state[0], task_state[1], 0.02])}

    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        xp = namespace(m["qpos"])
        q, qd, tip = m["qpos"], m["qvel"], m["fingertip_pos"]
        goal = task_state + 0.0 * tip[..., :2]  # broadcast the goal over the batch
        angles = stack(
            xp, [xp.cos(q[..., 0]), xp.cos(q[..., 1]), xp.sin(q[..., 0]), xp.sin(q[..., 1])]
        )
        return concat(xp, [angles, qd, goal, tip[..., :2] - goal])

    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        return {"distance": -norm(next_obs[..., 8:10]) / 0.1, "effort": effort(action, 0.01)}

    def success(self, obs: Array) -> Array:
        return norm(obs[..., 8:10]) < self.success_radius


IIWA_HOME = np.array([0.0, 0.6, 0.0, -1.2, 0.0, 0.8, 0.0])
"""A comfortable start pose with the end effector in front of the robot, rad."""


class ArmReach(Task):
    """Bring the flange of a KUKA LBR iiwa 7-DoF arm to a random target in front of it.

    The arm is gravity-compensated, as real torque-controlled arms are; ``control`` picks
    joint-velocity commands (a stiff velocity servo, the default) or joint torques.

    - Observation (23,): q (7, rad), q̇ (7, rad/s), flange position (3, m), target (3, m),
      flange - target (3, m).
    - Action (7,): joint velocities / 1 rad/s, or torques / the joint's limit, in [-1, 1].
    - Reward: ``distance`` -|flange - target| / 0.1 m, ``effort`` -0.001 |a|².
    - Start: the home pose ± 0.1 rad; target ~ U([0.35, 0.7] × [-0.35, 0.35] × [0.25, 0.75]) m.
      Episode: 100 steps of 0.05 s.
    - Success: flange within ``success_radius`` (3 cm) of the target.
    - Version history: v0, initial release.

    Args:
        control: ``velocity`` or ``torque``.
    """

    episode_steps = 100
    observation_size = 23
    task_state_size = 3
    markers = (Marker("goal", radius=0.03, rgba=(0.2, 0.8, 0.2, 0.8)),)
    success_radius = 0.03
    target_low = np.array([0.35, -0.35, 0.25])
    target_high = np.array([0.7, 0.35, 0.75])

    def __init__(self, control: ControlMode | str = ControlMode.VELOCITY) -> None:
        control = ControlMode(control)
        if control is ControlMode.POSITION:
            raise ValueError("ArmReach supports velocity or torque control")
        self.control = control
        self.robot = IIWA if control is ControlMode.VELOCITY else iiwa_torque_control(IIWA)

    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        return uniform_configuration(rng, IIWA_HOME, 0.1, 0.0)

    def sample_task_state(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.target_low, self.target_high)

    def marker_positions(self, task_state: np.ndarray) -> dict[str, np.ndarray]:
        return {"goal": np.asarray(task_state)}

    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        xp = namespace(m["qpos"])
        ee = m["ee_pos"]
        target = task_state + 0.0 * ee  # broadcast the target over the batch
        return concat(xp, [m["qpos"], m["qvel"], ee, target, ee - target])

    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        return {"distance": -norm(next_obs[..., 20:23]) / 0.1, "effort": effort(action, 0.001)}

    def success(self, obs: Array) -> Array:
        return norm(obs[..., 20:23]) < self.success_radius
