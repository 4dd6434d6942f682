"""The shapes that connect the parts of robot_rl.

``Transition`` and ``Batch`` are the typed records passed between buffers, learners and model
trainers; ``Policy``, ``Dynamics`` and ``RewardFn`` are the protocols every policy, dynamics
model and task satisfies, so that any planner can use any model and any deployment can run
any policy.

``Array`` is a NumPy array or a torch tensor; functions typed with it accept either and
return the same kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

Array: TypeAlias = "np.ndarray | torch.Tensor"


class Transition(NamedTuple):
    """One environment step, as collected.

    Attributes:
        obs: (obs_dim,) observation before the action.
        action: (act_dim,) action taken, in the env's normalised action units.
        reward: scalar reward.
        next_obs: (obs_dim,) observation after the action.
        terminated: whether the episode ended in a terminal state (no bootstrapping).
        truncated: whether the episode was cut by a time limit (bootstrapping continues).
        cost: scalar safety cost (0 when the step was safe).
    """

    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    cost: float


class Batch(NamedTuple):
    """A batch of transitions, as sampled from a buffer.

    Attributes:
        obs: (B, obs_dim)
        action: (B, act_dim)
        reward: (B,)
        next_obs: (B, obs_dim)
        terminated: (B,) 1.0 where the next state is terminal, else 0.0.
        cost: (B,)
    """

    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    terminated: Any
    cost: Any


@runtime_checkable
class Policy(Protocol):
    """Anything that maps an observation to an action.

    A SAC actor, a GPS policy, an MPC controller and an exported TorchScript policy all
    satisfy it, so every env can evaluate, and the hardware layer can deploy, any of them.
    """

    def reset(self) -> None:
        """Forget any per-episode memory (warm starts, histories)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Return the action for ``obs``: (obs_dim,) -> (act_dim,) in normalised units."""


@runtime_checkable
class Dynamics(Protocol):
    """A batched transition model: ``next_state = step(state, action)``.

    ``state`` is (B, state_dim) and ``action`` is (B, act_dim), both NumPy arrays or both
    torch tensors; the result has the kind and leading shape of ``state``.
    """

    def step(self, state: Array, action: Array) -> Array: ...


@runtime_checkable
class RewardFn(Protocol):
    """A batched, vectorised reward (or cost): (..., obs), (..., act), (..., obs) -> (...)."""

    def __call__(self, obs: Array, action: Array, next_obs: Array) -> Array: ...
