"""Environment plumbing for the agents: building an env by id and saving its state.

Agents act in [-1, 1]^n; ``make_env`` builds a robot_rl env (already normalised) or any
gymnasium env (rescaled to [-1, 1] when its bounds differ). ``env_state_tensors`` and
``restore_env_state`` put a robot_rl env's ``EnvState`` into a checkpoint and back, so a
resumed run continues the very episode it was in.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import robot_rl
from robot_rl.checkpoint import pack_state, unpack_state
from robot_rl.envs import EnvState


def make_env(env_id: str, engine: str = "mujoco", **kwargs: Any) -> gym.Env:
    """Build ``env_id`` with actions in [-1, 1].

    Args:
        env_id: a robot_rl id (``robot_rl/CartpoleSwingup-v0``) or any gymnasium id
            (``Pendulum-v1``).
        engine: physics engine of a robot_rl env (ignored for other envs).
        **kwargs: task or env arguments (``track_band=0.5``, ``max_episode_steps=None``).
    """
    if env_id.startswith("robot_rl/"):
        env: gym.Env = robot_rl.make(env_id, engine=engine, **kwargs)
    else:
        env = gym.make(env_id, **kwargs)
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{env_id} has a {type(space).__name__} action space; SAC needs a Box")
    if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise ValueError(f"{env_id} has unbounded actions; SAC needs finite bounds")
        ones = np.ones(space.shape, dtype=np.float32)
        env = gym.wrappers.RescaleAction(env, -ones, ones)
    return env


def time_limit(env: gym.Env) -> int | None:
    """The env's episode length limit in steps (a robot_rl env's own, else its gymnasium
    spec's); None when its episodes are not limited."""
    limit = getattr(env.unwrapped, "max_episode_steps", None)
    if limit is None and env.spec is not None:
        limit = env.spec.max_episode_steps
    return None if limit is None else int(limit)


def supports_state(env: gym.Env) -> bool:
    """Whether ``env`` can save and restore its exact state (robot_rl envs)."""
    unwrapped = env.unwrapped
    return hasattr(unwrapped, "get_state") and hasattr(unwrapped, "set_state")


def env_state_tensors(env: gym.Env, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """The env's ``EnvState`` as (JSON tree, tensors) for a checkpoint."""
    state: EnvState = env.unwrapped.get_state()
    fields = {f.name: _to_torch(getattr(state, f.name)) for f in dataclasses.fields(EnvState)}
    return pack_state(fields, prefix)


def restore_env_state(env: gym.Env, packed: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Put ``env`` back into a state saved by ``env_state_tensors``."""
    fields = unpack_state(packed, tensors)
    env.unwrapped.set_state(EnvState(**{k: _to_numpy(v) for k, v in fields.items()}))


def _to_torch(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, tuple):
        return tuple(_to_torch(v) for v in value)
    return value


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, tuple | list):
        return tuple(_to_numpy(v) for v in value)
    return value
