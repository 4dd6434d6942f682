from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.agents import ReplayBuffer
from robot_rl.checkpoint import CheckpointError
from robot_rl.types import Batch


def _fill(buffer: ReplayBuffer, start: int, n: int) -> None:
    """Add transitions whose every field encodes their index i."""
    i = np.arange(start, start + n, dtype=np.float64)
    buffer.add(
        obs=np.stack([i, -i], 1),
        action=i[:, None] / 1000.0,
        reward=i,
        next_obs=np.stack([i + 0.5, -i], 1),
        terminated=(i % 2 == 0).astype(float),
        cost=2 * i,
    )


def test_sample_is_a_typed_batch_of_consistent_rows():
    buffer = ReplayBuffer(100, obs_dim=2, act_dim=1, seed=0)
    _fill(buffer, 0, 30)
    batch = buffer.sample(64)
    assert isinstance(batch, Batch)
    assert batch.obs.shape == (64, 2)
    assert batch.action.shape == (64, 1)
    assert batch.reward.shape == batch.terminated.shape == batch.cost.shape == (64,)
    i = batch.reward
    torch.testing.assert_close(batch.obs[:, 0], i)
    torch.testing.assert_close(batch.next_obs[:, 0], i + 0.5)
    torch.testing.assert_close(batch.cost, 2 * i)
    torch.testing.assert_close(batch.terminated, (i % 2 == 0).float())
    assert i.max() < 30


def test_ring_overwrites_the_oldest_first():
    buffer = ReplayBuffer(10, obs_dim=2, act_dim=1)
    _fill(buffer, 0, 7)
    _fill(buffer, 7, 7)  # wraps: 14 added, capacity 10
    assert len(buffer) == 10
    torch.testing.assert_close(buffer.all().reward, torch.arange(4, 14, dtype=torch.float32))
    assert set(buffer.sample(500).reward.tolist()) == set(range(4, 14))


def test_state_round_trip_continues_the_same_samples():
    a = ReplayBuffer(50, obs_dim=2, act_dim=1, seed=3)
    _fill(a, 0, 20)
    a.sample(8)
    tensors, metadata = a.state_dict()
    b = ReplayBuffer(50, obs_dim=2, act_dim=1, seed=99)
    b.load_state_dict(tensors, metadata)
    _fill(a, 20, 5)
    _fill(b, 20, 5)
    for x, y in zip(a.sample(16), b.sample(16), strict=True):
        torch.testing.assert_close(x, y)


def test_load_refuses_another_shape():
    a = ReplayBuffer(50, obs_dim=2, act_dim=1)
    tensors, metadata = a.state_dict()
    with pytest.raises(CheckpointError, match="obs_dim"):
        ReplayBuffer(50, obs_dim=3, act_dim=1).load_state_dict(tensors, metadata)


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(5, 1, 1).sample(2)
