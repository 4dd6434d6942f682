"""Replay buffer: a fixed-capacity ring of transitions that samples typed ``Batch``es.

All fields of a transition live side by side in one preallocated (capacity, width) float32
tensor, so adding a step is one row copy and sampling a batch is one ``index_select``; the
fields of the sampled ``Batch`` are views into that one gather. Sampling draws indices from
the buffer's own ``torch.Generator``, whose state is part of ``state_dict`` so a resumed run
samples exactly what the uninterrupted one would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robot_rl.checkpoint import CheckpointError
from robot_rl.types import Batch


class ReplayBuffer:
    """First-in-first-out storage of transitions with uniform sampling.

    Args:
        capacity: transitions kept; the oldest are overwritten first.
        obs_dim: observation length.
        act_dim: action length.
        seed: seed of the sampling generator.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), int(act_dim)
        # Column layout: obs | action | reward | next_obs | terminated | cost.
        o, a = self.obs_dim, self.act_dim
        self._slices = {
            "obs": (0, o),
            "action": (o, a),
            "reward": (o + a, 1),
            "next_obs": (o + a + 1, o),
            "terminated": (2 * o + a + 1, 1),
            "cost": (2 * o + a + 2, 1),
        }
        self.width = 2 * o + a + 3
        self._storage = torch.zeros(self.capacity, self.width)
        self._rows = self._storage.numpy()  # the same memory, for cheap row writes from numpy
        self._pos = 0
        self._size = 0
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self._size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        cost: np.ndarray,
    ) -> None:
        """Store N transitions (one per vectorised env).

        Args:
            obs: (N, obs_dim)
            action: (N, act_dim)
            reward: (N,)
            next_obs: (N, obs_dim), the observation the step reached (also at episode ends).
            terminated: (N,) true where ``next_obs`` is terminal (no bootstrapping from it).
            cost: (N,) safety cost.
        """
        n = len(obs)
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        fields = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
            "cost": cost,
        }
        first = min(n, self.capacity - self._pos)  # rows up to the end of the ring
        for name, value in fields.items():
            start, width = self._slices[name]
            value = np.reshape(value, (n, width))
            self._rows[self._pos : self._pos + first, start : start + width] = value[:first]
            if first < n:
                self._rows[: n - first, start : start + width] = value[first:]
        self._pos = (self._pos + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """A ``Batch`` of ``batch_size`` transitions drawn uniformly with replacement.

        Returns:
            Batch of float32 tensors: obs (B, obs_dim), action (B, act_dim), reward (B,),
            next_obs (B, obs_dim), terminated (B,), cost (B,).
        """
        return self.gather(self.sample_index(batch_size))

    def sample_index(self, batch_size: int) -> torch.Tensor:
        """(batch_size,) int64 positions of stored transitions, drawn uniformly with replacement
        from the buffer's generator (``sample`` = ``gather(sample_index(batch_size))``)."""
        if self._size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return torch.randint(self._size, (batch_size,), generator=self.generator)

    def gather(self, index: torch.Tensor) -> Batch:
        """The transitions at ``index`` (B,), as a ``Batch`` of views into one gathered copy.

        Pure tensor indexing, so a compiled learning step can gather its batch in its graph.
        """
        return self._split(self._storage.index_select(0, index))

    def _split(self, rows: torch.Tensor) -> Batch:
        s = self._slices
        return Batch(
            obs=rows.narrow(1, *s["obs"]),
            action=rows.narrow(1, *s["action"]),
            reward=rows[:, s["reward"][0]],
            next_obs=rows.narrow(1, *s["next_obs"]),
            terminated=rows[:, s["terminated"][0]],
            cost=rows[:, s["cost"][0]],
        )

    def all(self) -> Batch:
        """Every stored transition, oldest first once the buffer has wrapped (views)."""
        if self._size < self.capacity:
            return self._split(self._storage[: self._size])
        return self._split(torch.roll(self._storage, -self._pos, 0))

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, metadata) holding the stored rows, the write position and the RNG."""
        tensors = {
            "storage": self._storage[: self._size].clone(),
            "generator": self.generator.get_state(),
        }
        metadata = {
            "capacity": self.capacity,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "pos": self._pos,
            "size": self._size,
        }
        return tensors, metadata

    def load_state_dict(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Restore a ``state_dict`` of a buffer with the same capacity and dimensions.

        Raises:
            CheckpointError: the shapes disagree or a tensor is missing.
        """
        for key in ("capacity", "obs_dim", "act_dim"):
            if metadata.get(key) != getattr(self, key):
                raise CheckpointError(
                    f"replay buffer was saved with {key}={metadata.get(key)}, "
                    f"this one has {key}={getattr(self, key)}"
                )
        try:
            storage, generator = tensors["storage"], tensors["generator"]
        except KeyError as err:
            raise CheckpointError(f"replay buffer state is missing {err}") from None
        size = int(metadata["size"])
        if storage.shape != (size, self.width):
            raise CheckpointError(
                f"replay buffer storage has shape {tuple(storage.shape)}, expected ({size}, {self.width})"
            )
        self._storage.zero_()
        self._storage[:size] = storage
        self._size, self._pos = size, int(metadata["pos"])
        self.generator.set_state(generator)
