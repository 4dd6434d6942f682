"""Versioned env ids and ``make``.

Every env is registered under ``robot_rl/<Name>-v<N>``, both here and with gymnasium (so
``gymnasium.make("robot_rl/CartpoleSwingup-v0", engine="pybullet")`` works too). Behaviour
under an existing id never changes; a change gets a new version.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from robot_rl.envs.env import Randomization, RobotEnv, parse_engine
from robot_rl.envs.physics.base import Engine
from robot_rl.envs.tasks.base import Task


@dataclass(frozen=True)
class EnvEntry:
    """A registered env: its id, how to build its task, and its default randomization."""

    id: str
    task: Callable[..., Task]
    randomization: Randomization
    engines: tuple[Engine, ...] = (Engine.MUJOCO, Engine.PYBULLET)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.task) or ""
        return doc.splitlines()[0] if doc else ""


_REGISTRY: dict[str, EnvEntry] = {}


def register(entry: EnvEntry) -> None:
    """Add an env id here and with gymnasium."""
    if entry.id in _REGISTRY:
        raise ValueError(f"env id {entry.id!r} is already registered")
    _REGISTRY[entry.id] = entry
    if entry.id not in gym.registry:
        gym.register(id=entry.id, entry_point=_gym_entry_point(entry.id), disable_env_checker=False)


def _gym_entry_point(env_id: str) -> Callable[..., RobotEnv]:
    def entry_point(**kwargs: Any) -> RobotEnv:
        return make(env_id, **kwargs)

    return entry_point


def registered_envs() -> list[EnvEntry]:
    """Every registered env, in registration order."""
    return list(_REGISTRY.values())


def env_entry(env_id: str) -> EnvEntry:
    """The registry entry of ``env_id``; a clear error naming the known ids otherwise."""
    try:
        return _REGISTRY[env_id]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ValueError(f"unknown env id {env_id!r}; registered ids: {known}") from None


def make(
    env_id: str,
    engine: Engine | str = Engine.MUJOCO,
    randomization: bool | Randomization | None = None,
    render_mode: str | None = None,
    **kwargs: Any,
) -> RobotEnv:
    """Build a registered env.

    Args:
        env_id: e.g. ``robot_rl/CartpoleSwingup-v0``.
        engine: ``mujoco`` or ``pybullet``.
        randomization: True for the robot's default randomization table, a ``Randomization``
            for a custom one, None/False for the nominal robot.
        render_mode: ``rgb_array`` to enable ``render()``.
        **kwargs: ``render_size`` and ``max_episode_steps`` go to the env, anything else to
            the task's constructor (e.g. ``track_band=0.8``).
    """
    entry = env_entry(env_id)
    engine = parse_engine(engine)
    if engine not in entry.engines:
        raise ValueError(f"{env_id} does not run on {engine.value}")
    env_kwargs = {k: kwargs.pop(k) for k in ("render_size", "max_episode_steps") if k in kwargs}
    try:
        inspect.signature(entry.task).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad task arguments for {env_id}: {err}") from None
    task = entry.task(**kwargs)
    if randomization is True:
        randomization = entry.randomization
    elif randomization is False:
        randomization = None
    elif randomization is not None and not isinstance(randomization, Randomization):
        raise TypeError("randomization must be a bool, a Randomization or None")
    return RobotEnv(
        task, engine, randomization=randomization, render_mode=render_mode, **env_kwargs
    )
