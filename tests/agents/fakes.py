"""Tiny envs that count their own calls, to test the training loops exactly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class PointEnv(gym.Env[np.ndarray, np.ndarray]):
    """A point on a line pushed by the action; reward -x², cost 1 while |x| > ``band``.

    Episodes are truncated after ``horizon`` steps (its ``max_episode_steps``).

    Counts ``resets`` and ``steps``; returns NaN in the observation at step ``nan_at`` of
    its life (counted over all episodes) when given.
    """

    def __init__(self, horizon: int = 10, band: float = 0.5, nan_at: int | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.horizon, self.band, self.nan_at = horizon, band, nan_at
        self.max_episode_steps = horizon
        self.resets = self.steps = 0
        self._x = 0.0
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self._x, self._t / self.horizon], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.resets += 1
        self._x = float(self.np_random.uniform(-1.0, 1.0))
        self._t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray):
        self.steps += 1
        self._t += 1
        self._x = float(np.clip(self._x + 0.2 * float(action[0]), -2.0, 2.0))
        obs = self._obs()
        if self.nan_at is not None and self.steps == self.nan_at:
            obs[0] = np.nan
        cost = float(abs(self._x) > self.band)
        info = {"cost": cost, "success": abs(self._x) < 0.1}
        return obs, -(self._x**2), False, self._t >= self.horizon, info
