"""Run any ``Policy`` in any env and summarise what happened.

Used by ``robot-rl rollout``, by every agent's evaluation, and by the sim-to-real
experiments, so returns, costs and successes are counted the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from robot_rl.types import Policy


class RandomPolicy:
    """Uniform random actions in the action space's bounds, from an explicit generator."""

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = None) -> None:
        self.low = np.asarray(action_space.low, dtype=np.float64)
        self.high = np.asarray(action_space.high, dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Random actions have no memory."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high)


@dataclass
class Episode:
    """One episode: its totals and, optionally, its frames.

    Attributes:
        ret: sum of rewards.
        cost: sum of safety costs.
        length: steps taken.
        success: whether the last ``success_window`` steps all met the task's success
            criterion (the whole episode if it is shorter).
        final_success: success at the last step.
        reward_terms: sum of each reward term over the episode.
        frames: rendered frames (when requested).
    """

    ret: float
    cost: float
    length: int
    success: bool
    final_success: bool
    reward_terms: dict[str, float] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)


def run_episode(
    env: gym.Env,
    policy: Policy,
    seed: int | None = None,
    options: dict | None = None,
    success_window: int = 1,
    render: bool = False,
    on_step: Callable[[np.ndarray, np.ndarray, dict], None] | None = None,
) -> Episode:
    """Run ``policy`` for one episode of ``env`` (until terminated or truncated).

    Args:
        seed: seed for ``env.reset``.
        options: reset options (e.g. an exact ``task_state``).
        success_window: steps at the end of the episode that must all be successful.
        render: collect ``env.render()`` frames.
        on_step: called with (obs, action, info) after every step.
    """
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset()
    frames = [env.render()] if render else []
    ret = cost = 0.0
    successes: list[bool] = []
    terms: dict[str, float] = {}
    length = 0
    while True:
        action = policy.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        length += 1
        ret += float(reward)
        cost += float(info.get("cost", 0.0))
        successes.append(bool(info.get("success", False)))
        for name, value in info.get("reward_terms", {}).items():
            terms[name] = terms.get(name, 0.0) + value
        if render:
            frames.append(env.render())
        if on_step is not None:
            on_step(obs, action, info)
        if terminated or truncated:
            break
    window = successes[-success_window:]
    return Episode(ret, cost, length, bool(window) and all(window), successes[-1], terms, frames)


@dataclass(frozen=True)
class Evaluation:
    """Summary over several episodes."""

    returns: tuple[float, ...]
    costs: tuple[float, ...]
    successes: tuple[bool, ...]
    lengths: tuple[int, ...]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def mean_cost(self) -> float:
        return float(np.mean(self.costs))

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes))

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode]) -> Evaluation:
        return cls(
            tuple(e.ret for e in episodes),
            tuple(e.cost for e in episodes),
            tuple(e.success for e in episodes),
            tuple(e.length for e in episodes),
        )


def evaluate(
    env: gym.Env, policy: Policy, episodes: int, seed: int = 0, success_window: int = 1
) -> Evaluation:
    """Run ``episodes`` episodes with seeds ``seed, seed + 1, ...`` and summarise them."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    runs = [
        run_episode(env, policy, seed=seed + i, success_window=success_window)
        for i in range(episodes)
    ]
    return Evaluation.from_episodes(runs)
