"""Swing-up tasks: a torque-limited pendulum and a cart-pole, both starting hanging down.

Angles are measured from hanging down (0) so upright is π; observations carry (cos θ, sin θ)
rather than θ, so they are continuous through a full turn.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robot_rl.arrays import concat, namespace
from robot_rl.envs.physics.base import JointConfiguration
from robot_rl.envs.robots import CARTPOLE, PENDULUM
from robot_rl.envs.tasks.base import Task, effort, uniform_configuration
from robot_rl.types import Array

SUCCESS_ANGLE = 0.2
"""A pole counts as up within this many radians of upright."""
COS_SUCCESS_ANGLE = float(np.cos(SUCCESS_ANGLE))  # |θ - π| < a  <=>  -cos θ > cos a


class PendulumSwingup(Task):
    """Swing a torque-limited pendulum up and hold it there.

    The 2 N·m torque limit is well under the 4.9 N·m gravity can exert, so the pendulum has
    to pump energy over several swings.

    - Observation (3,): cos θ, sin θ, θ̇ (rad/s); θ = 0 hangs down.
    - Action (1,): torque / 2 N·m in [-1, 1].
    - Reward: ``upright`` (1 - cos θ)/2 in [0, 1], ``velocity`` -0.001 θ̇², ``effort`` -0.001 a².
    - Start: θ ~ U(-0.1, 0.1) rad, θ̇ ~ U(-0.1, 0.1) rad/s. Episode: 100 steps of 0.05 s.
    - Success: within 0.2 rad of upright.
    - Version history: v0, initial release.
    """

    robot = PENDULUM
    observation_size = 3

    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        return uniform_configuration(rng, np.zeros(1), 0.1, 0.1)

    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        xp = namespace(m["qpos"])
        theta = m["qpos"]
        return concat(xp, [xp.cos(theta), xp.sin(theta), m["qvel"]])

    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        return {
            "upright": 0.5 * (1.0 - next_obs[..., 0]),
            "velocity": -0.001 * next_obs[..., 2] ** 2,
            "effort": effort(action, 0.001),
        }

    def success(self, obs: Array) -> Array:
        return -obs[..., 0] > COS_SUCCESS_ANGLE


class CartpoleSwingup(Task):
    """Swing up the pole of a cart-pole and balance it, keeping the cart inside a track band.

    - Observation (5,): x (m), cos θ, sin θ, ẋ (m/s), θ̇ (rad/s); θ = 0 hangs down.
    - Action (1,): cart force / 10 N in [-1, 1].
    - Reward: ``upright`` (1 - cos θ)/2, ``centered`` -0.01 x², ``effort`` -0.01 a².
    - Cost: 1 while |x| > ``track_band`` (the safety signal), else 0. The rail ends at ±2 m.
    - Start: x, θ ~ U(-0.05, 0.05), velocities ~ U(-0.05, 0.05). Episode: 100 steps of 0.05 s.
    - Success: pole within 0.2 rad of upright.
    - Version history: v0, initial release.

    Args:
        track_band: half-width of the safe band of the track, m.
    """

    robot = CARTPOLE
    observation_size = 5

    def __init__(self, track_band: float = 1.0) -> None:
        if not 0.0 < track_band <= 2.0:
            raise ValueError(f"track_band must be in (0, 2] m, got {track_band}")
        self.track_band = float(track_band)

    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        return uniform_configuration(rng, np.zeros(2), 0.05, 0.05)

    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        xp = namespace(m["qpos"])
        q = m["qpos"]
        theta = q[..., 1:2]
        return concat(xp, [q[..., 0:1], xp.cos(theta), xp.sin(theta), m["qvel"]])

    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        return {
            "upright": 0.5 * (1.0 - next_obs[..., 1]),
            "centered": -0.01 * next_obs[..., 0] ** 2,
            "effort": effort(action, 0.01),
        }

    def cost(self, obs: Array, action: Array, next_obs: Array) -> Array:
        outside = namespace(next_obs).abs(next_obs[..., 0]) > self.track_band
        return outside * 1.0

    def success(self, obs: Array) -> Array:
        return -obs[..., 1] > COS_SUCCESS_ANGLE
