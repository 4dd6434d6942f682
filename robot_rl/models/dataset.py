"""A growing store of transitions for model learning, checked on the way in.

Model-based agents keep every transition they collect (PETS refits on all of it after each
episode), so this is an append-only store, not a ring buffer. It remembers where episodes
start, so it can give each transition the actions taken just before it (``past_actions``,
for models of envs whose actions act with a delay). ``batch()`` hands out the whole store as
a ``Batch`` of NumPy views; ``tensors()`` / ``from_tensors`` round-trip it through a
checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_rl.evaluation import Episode, run_episode
from robot_rl.types import Batch, Policy, Transition

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "cost")
STORED = (*FIELDS, "episode_start")


class TransitionDataset:
    """Transitions of one env, stored as float32 arrays that grow as needed.

    Args:
        obs_dim: observation size.
        act_dim: action size.
    """

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self._size = 0
        self._arrays = self._allocate(64)

    def _allocate(self, capacity: int) -> dict[str, np.ndarray]:
        shapes = {
            "obs": (self.obs_dim,),
            "action": (self.act_dim,),
            "next_obs": (self.obs_dim,),
        }
        return {f: np.zeros((capacity, *shapes.get(f, ())), dtype=np.float32) for f in STORED}

    def __len__(self) -> int:
        return self._size

    def add(self, transition: Transition, new_episode: bool = False) -> None:
        """Append one transition (the first of an episode when ``new_episode``; the very
        first transition always starts one).

        Raises:
            ValueError: a field has the wrong shape or is not finite.
        """
        values = {
            "obs": np.asarray(transition.obs, dtype=np.float64),
            "action": np.asarray(transition.action, dtype=np.float64),
            "reward": np.asarray(transition.reward, dtype=np.float64),
            "next_obs": np.asarray(transition.next_obs, dtype=np.float64),
            "terminated": np.asarray(float(transition.terminated)),
            "cost": np.asarray(transition.cost, dtype=np.float64),
            "episode_start": np.asarray(float(new_episode or self._size == 0)),
        }
        for name, value in values.items():
            expected = self._arrays[name].shape[1:]
            if value.shape != expected:
                raise ValueError(f"transition {name} must have shape {expected}, got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"transition {name} is not finite: {value.tolist()}")
        if self._size == len(self._arrays["obs"]):
            grown = self._allocate(2 * self._size)
            for name, array in self._arrays.items():
                grown[name][: self._size] = array
            self._arrays = grown
        for name, value in values.items():
            self._arrays[name][self._size] = value
        self._size += 1

    def add_episode(self, transitions: Iterable[Transition]) -> None:
        """Append the transitions of one episode, in order."""
        for i, transition in enumerate(transitions):
            self.add(transition, new_episode=i == 0)

    def batch(self) -> Batch:
        """Everything stored, as NumPy views (N, ...) in insertion order."""
        return Batch(**{name: self._arrays[name][: self._size] for name in FIELDS})

    def past_actions(self, history: int) -> np.ndarray:
        """The ``history`` actions before each transition, oldest first: (N, history · act_dim).

        Before an episode's first action the env applies the centre of the action box, so
        missing actions are 0 (normalised units).
        """
        n, a = self._size, self.act_dim
        actions = self._arrays["action"][:n]
        starts = self._arrays["episode_start"][:n] > 0
        episode = np.cumsum(starts)
        out = np.zeros((n, history, a), dtype=np.float32)
        for lag in range(1, history + 1):
            rows = np.arange(lag, n)
            same = episode[rows] == episode[rows - lag]
            out[rows[same], history - lag] = actions[rows[same] - lag]
        return out.reshape(n, history * a)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The stored transitions as tensors, for a checkpoint."""
        return {
            f"data.{name}": torch.from_numpy(a[: self._size].copy())
            for name, a in self._arrays.items()
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> TransitionDataset:
        """Rebuild from ``tensors()``.

        Raises:
            ValueError: fields are missing, their shapes disagree, or values are not finite.
        """
        missing = [f for f in STORED if f"data.{f}" not in tensors]
        if missing:
            raise ValueError(f"dataset tensors are missing {missing}")
        arrays = {f: tensors[f"data.{f}"].numpy().astype(np.float32) for f in STORED}
        n = len(arrays["obs"])
        if arrays["obs"].ndim != 2 or arrays["action"].ndim != 2:
            raise ValueError("dataset obs and action must be 2-D")
        if any(len(a) != n for a in arrays.values()):
            raise ValueError("dataset fields have different lengths")
        bad = [f for f, a in arrays.items() if not np.isfinite(a).all()]
        if bad:
            raise ValueError(f"dataset fields {bad} hold NaN or inf")
        dataset = cls(arrays["obs"].shape[1], arrays["action"].shape[1])
        dataset._arrays = dataset._allocate(max(64, n))
        for name, array in arrays.items():
            dataset._arrays[name][:n] = array
        dataset._size = n
        return dataset


class _Recorder(gym.Wrapper):
    """Keeps every transition the wrapped env produces, exactly as the env reported it."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.transitions: list[Transition] = []
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self._obs, self.transitions = obs, []
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        assert self._obs is not None
        self.transitions.append(
            Transition(
                self._obs,
                np.asarray(action, dtype=np.float32),
                float(reward),
                obs,
                bool(terminated),
                bool(truncated),
                float(info.get("cost", 0.0)),
            )
        )
        self._obs = obs
        return obs, reward, terminated, truncated, info


def collect_episode(
    env: gym.Env,
    policy: Policy,
    seed: int | None = None,
    options: dict | None = None,
    success_window: int = 1,
) -> tuple[Episode, list[Transition]]:
    """Run one episode with ``robot_rl.evaluation.run_episode`` and keep its transitions.

    Returns:
        (the episode summary, its transitions in order).
    """
    recorder = _Recorder(env)
    episode = run_episode(
        recorder, policy, seed=seed, options=options, success_window=success_window
    )
    return episode, recorder.transitions
