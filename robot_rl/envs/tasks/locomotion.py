"""Quadruped locomotion: the Unitree A1 walking forward, falling, and getting up again.

Everything the reward, cost and termination need is in the observation, expressed in the
body frame (so it does not depend on heading): the trunk height, the world's up direction
seen from the body, and the body-frame velocities.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import numpy as np

from robot_rl.arrays import concat, namespace, stack
from robot_rl.envs.physics.base import JointConfiguration
from robot_rl.envs.robots import A1, A1_STANCE
from robot_rl.envs.tasks.base import Task, effort
from robot_rl.types import Array

STANDING_HEIGHT = 0.27
"""Trunk height of the A1 in its stance, m."""
LYING_POSE = np.tile([0.0, 1.6, -2.6], 4)
"""Legs folded under the trunk, as after a collapse (hip, thigh, calf per leg), rad."""


class QuadrupedStart(enum.Enum):
    """How an episode of the quadruped begins."""

    STANDING = "standing"
    LYING = "lying"  # belly down, legs folded: the robot has to get up first


class QuadrupedWalk(Task):
    """Walk the A1 forward; the safety cost counts steps with the trunk tilted too far.

    Joint position targets drive 12 PD servos (kp 40 N·m/rad, kd 1 N·m·s/rad). With
    ``terminate_when_fallen=False`` the episode continues after a fall, so the robot can
    learn to get up (the reset-free setting).

    - Observation (34,): trunk height (m), up direction in the body frame (3), body-frame
      linear (3, m/s) and angular (3, rad/s) velocity, q (12, rad), q̇ (12, rad/s).
    - Action (12,): joint position targets in [-1, 1], mapped onto each joint's range
      around the stance.
    - Reward: ``forward`` body-frame forward velocity clipped to [-1, 1] m/s, ``upright``
      0.2 · up_z, ``height`` -2 (h - 0.27)², ``effort`` -0.005 |a|².
    - Cost: 1 while |roll| or |pitch| exceeds ``tilt_limit``.
    - Start: standing, joints ± 0.05 rad; or (``start="lying"``) belly down with the legs
      folded, so the robot must get up first. Episode: 500 steps of 0.02 s (10 s).
    - Termination (optional): fallen, up_z < 0.3 or trunk below 0.15 m.
    - Success (standing): up_z > cos(tilt_limit) and trunk above 0.2 m.
    - Version history: v0, initial release.

    Args:
        tilt_limit: roll/pitch bound of the safety cost, rad.
        terminate_when_fallen: end the episode on a fall (False for reset-free learning).
        start: ``standing`` or ``lying``.
    """

    robot = A1
    control_dt = 0.02
    episode_steps = 500
    observation_size = 34

    def __init__(
        self,
        tilt_limit: float = 0.4,
        terminate_when_fallen: bool = True,
        start: QuadrupedStart | str = QuadrupedStart.STANDING,
    ) -> None:
        if not 0.0 < tilt_limit < np.pi / 2:
            raise ValueError(f"tilt_limit must be in (0, pi/2) rad, got {tilt_limit}")
        self.start = QuadrupedStart(start)
        if self.start is QuadrupedStart.LYING and terminate_when_fallen:
            raise ValueError("a lying start needs terminate_when_fallen=False (it begins fallen)")
        self.tilt_limit = float(tilt_limit)
        self._sin_limit = float(np.sin(tilt_limit))
        self._tan_limit = float(np.tan(tilt_limit))
        self.terminate_when_fallen = bool(terminate_when_fallen)

    def initial_configuration(self, rng: np.random.Generator) -> JointConfiguration:
        noise = rng.uniform(-0.05, 0.05, 12)
        if self.start is QuadrupedStart.LYING:
            return JointConfiguration(
                LYING_POSE + noise, np.zeros(12), base_pos=np.array([0.0, 0.0, 0.12])
            )
        return JointConfiguration(
            A1_STANCE + noise, np.zeros(12), base_pos=np.array([0.0, 0.0, STANDING_HEIGHT + 0.02])
        )

    def observe(self, m: Mapping[str, Array], task_state: Array) -> Array:
        xp = namespace(m["qpos"])
        body_axes = m["base_axes"].reshape(*m["base_axes"].shape[:-1], 3, 3)  # Rᵀ
        # Rows of vᵀR are Rᵀv, world vectors in the body frame; Rᵀ e_z is Rᵀ's last column.
        velocities = stack(xp, [m["base_linvel"], m["base_angvel"]], axis=-2)  # (..., 2, 3)
        body_velocities = (velocities @ xp.swapaxes(body_axes, -1, -2)).reshape(
            *body_axes.shape[:-2], 6
        )
        up = body_axes[..., 2]
        return concat(xp, [m["base_pos"][..., 2:3], up, body_velocities, m["qpos"], m["qvel"]])

    def reward_terms(self, obs: Array, action: Array, next_obs: Array) -> dict[str, Array]:
        xp = namespace(next_obs)
        return {
            "forward": xp.clip(next_obs[..., 4], -1.0, 1.0),
            "upright": 0.2 * next_obs[..., 3],
            "height": -2.0 * (next_obs[..., 0] - STANDING_HEIGHT) ** 2,
            "effort": effort(action, 0.005),
        }

    def cost(self, obs: Array, action: Array, next_obs: Array) -> Array:
        # With u the world's up direction in the body frame, roll = atan2(u_y, u_z) and
        # sin(pitch) = -u_x; the bounds are tested without the trigonometry.
        xp = namespace(next_obs)
        ux, uy, uz = next_obs[..., 1], next_obs[..., 2], next_obs[..., 3]
        pitched = xp.abs(ux) > self._sin_limit
        rolled = (uz <= 0.0) | (xp.abs(uy) > self._tan_limit * uz)
        return (pitched | rolled) * 1.0

    def fallen(self, obs: Array) -> Array:
        """True (...) where the trunk is on the ground or upside down."""
        return (obs[..., 3] < 0.3) | (obs[..., 0] < 0.15)

    def termination(self, obs: Array, action: Array, next_obs: Array) -> Array:
        fallen = self.fallen(next_obs)
        return fallen if self.terminate_when_fallen else fallen & False

    def success(self, obs: Array) -> Array:
        return (obs[..., 3] > np.cos(self.tilt_limit)) & (obs[..., 0] > 0.2)
