"""GPS global policy: the S-step, features, the Policy contract, checkpoints and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.agents.gps.features import Features, make_features
from robot_rl.agents.gps.policy import GaussianPolicy, GPSPolicy
from robot_rl.agents.gps.sstep import s_step
from robot_rl.checkpoint import CheckpointError, save_checkpoint
from robot_rl.types import Policy


def _teacher_data(rng: np.random.Generator, points: int = 512):
    obs = rng.standard_normal((points, 6))
    W = rng.standard_normal((2, 6)) * 0.3
    target = np.tanh(obs @ W.T)
    precision = np.tile(np.diag([4.0, 0.25]), (points, 1, 1))
    return obs, target, precision


def _policy(seed: int = 0, obs_size: int = 6, features=None) -> GaussianPolicy:
    torch.manual_seed(seed)
    return GaussianPolicy(obs_size, 2, (32, 32), init_std=0.5, features=features)


def test_s_step_drives_the_policy_toward_the_teacher() -> None:
    rng = np.random.default_rng(0)
    obs, target, precision = _teacher_data(rng)
    policy = _policy()
    opt = torch.optim.Adam(policy.mean.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    before = np.abs(policy.mean_actions(obs) - target).mean()
    report = s_step(policy, opt, obs, target, precision, steps=600, batch_size=128, generator=gen)
    after = np.abs(policy.mean_actions(obs) - target).mean()
    assert report.loss_after < 0.05 * report.loss_before
    assert after < 0.2 * before
    # The covariance is the inverse of the average precision.
    np.testing.assert_allclose(policy.covariance, np.diag([0.25, 4.0]), rtol=1e-5)


def test_s_step_weights_the_confident_teacher_dimension_more() -> None:
    """With too little capacity to fit both action dimensions, the precise one wins."""
    rng = np.random.default_rng(1)
    obs, target, _ = _teacher_data(rng)
    precision = np.tile(np.diag([100.0, 0.01]), (obs.shape[0], 1, 1))
    torch.manual_seed(0)
    policy = GaussianPolicy(6, 2, (2,), init_std=0.5)
    opt = torch.optim.Adam(policy.mean.parameters(), lr=3e-3)
    s_step(policy, opt, obs, target, precision, 800, 128, torch.Generator().manual_seed(0))
    err = np.abs(policy.mean_actions(obs) - target).mean(0)
    assert err[0] < 0.5 * err[1]


def test_s_step_rejects_non_finite_targets() -> None:
    rng = np.random.default_rng(2)
    obs, target, precision = _teacher_data(rng, 16)
    target[3, 1] = np.inf
    policy = _policy()
    opt = torch.optim.Adam(policy.mean.parameters())
    with pytest.raises(ValueError, match="non-finite"):
        s_step(policy, opt, obs, target, precision, 10, 8, torch.Generator().manual_seed(0))


def test_policy_contract_export_and_checkpoint_round_trip(tmp_path: Path) -> None:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    features = make_features(Features.BASE_FRAME, env.task, 10)
    rng = np.random.default_rng(3)
    obs = rng.standard_normal((64, 10)).astype(np.float32)
    net = _policy(obs_size=10, features=features)
    net.set_normalisation(obs)
    policy = GPSPolicy(net)
    assert isinstance(policy, Policy)
    action = policy.act(obs[0])
    assert action.shape == (2,)
    assert action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)

    path = policy.save(tmp_path / "policy.pt")
    loaded = GPSPolicy.load(path)
    np.testing.assert_array_equal(loaded.act(obs[5]), policy.act(obs[5]))

    scripted = torch.jit.load(str(policy.export_torchscript(tmp_path / "policy.ts")))
    with torch.no_grad():
        batch = scripted(torch.as_tensor(obs))
    assert batch.shape == (64, 2)
    np.testing.assert_allclose(batch[7].numpy(), policy.act(obs[7]), atol=1e-6)


def test_load_rejects_foreign_and_corrupt_checkpoints(tmp_path: Path) -> None:
    foreign = save_checkpoint(tmp_path / "other.pt", {"w": torch.zeros(2)}, {"kind": "sac_actor"})
    with pytest.raises(CheckpointError, match="kind"):
        GPSPolicy.load(foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        GPSPolicy.load(corrupt)


def test_policy_rejects_bad_observations() -> None:
    policy = GPSPolicy(_policy())
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        policy.act(np.array([0, 0, np.nan, 0, 0, 0]))


def test_base_frame_features_are_invariant_to_turning_the_whole_reacher() -> None:
    """Turning the arm and the goal together about the base leaves the features unchanged."""
    features = make_features(
        Features.BASE_FRAME, robot_rl.make("robot_rl/ReacherTwoLink-v0").task, 10
    )
    q, qd, goal, tip = (
        np.array([0.3, -0.7]),
        np.array([0.2, 0.1]),
        np.array([0.1, 0.05]),
        np.array([0.12, 0.08]),
    )

    def obs(turn: float) -> torch.Tensor:
        R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        q1 = q[0] + turn
        g, t = R @ goal, R @ tip
        return torch.tensor([np.cos(q1), np.cos(q[1]), np.sin(q1), np.sin(q[1]), *qd, *g, *(t - g)])

    torch.testing.assert_close(features(obs(0.0)), features(obs(2.1)))


def _at_rest_on_the_goal(env_id: str, rng: np.random.Generator, count: int) -> np.ndarray:
    """Observations of random configurations, at rest, the goal under the tip."""
    if env_id == "robot_rl/ReacherTwoLink-v0":
        q = rng.uniform(-2.8, 2.8, (count, 2))
        tip = np.stack(
            [
                0.1 * np.cos(q[:, 0]) + 0.11 * np.cos(q.sum(1)),
                0.1 * np.sin(q[:, 0]) + 0.11 * np.sin(q.sum(1)),
            ],
            axis=1,
        )
        angles = [np.cos(q[:, 0]), np.cos(q[:, 1]), np.sin(q[:, 0]), np.sin(q[:, 1])]
        return np.column_stack([*angles, np.zeros((count, 2)), tip, np.zeros((count, 2))])
    q, flange = rng.uniform(-2.0, 2.0, (count, 7)), rng.uniform(-0.6, 0.6, (count, 3))
    return np.column_stack([q, np.zeros((count, 7)), flange, flange, np.zeros((count, 3))])


@pytest.mark.parametrize("env_id", ["robot_rl/ReacherTwoLink-v0", "robot_rl/ArmReach-v0"])
@pytest.mark.parametrize("kind", [Features.BASE_FRAME, Features.GOAL_FREE])
def test_rest_anchored_policy_commands_zero_at_rest_on_any_goal(
    env_id: str, kind: Features
) -> None:
    env = robot_rl.make(env_id)
    obs_size, act_size = env.observation_space.shape[0], env.action_space.shape[0]
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    net = GaussianPolicy(
        obs_size,
        act_size,
        (32, 32),
        features=make_features(kind, env.task, obs_size),
        rest_anchor=True,
    )
    moving = rng.standard_normal((64, obs_size))
    net.set_normalisation(moving)
    rest = _at_rest_on_the_goal(env_id, rng, 64)
    np.testing.assert_allclose(net.mean_actions(rest), 0.0, atol=1e-6)
    # Away from rest it acts: a moving arm or a tip off the goal gets a command.
    assert np.abs(net.mean_actions(moving)).mean() > 1e-2
    off_goal = rest.copy()
    off_goal[:, -1] += 0.5
    assert np.abs(net.mean_actions(off_goal)).mean() > 1e-3


def test_rest_anchor_needs_features_with_a_rest_state() -> None:
    with pytest.raises(ValueError, match="rest state"):
        GaussianPolicy(10, 2, (8,), rest_anchor=True)


def test_rest_anchored_policy_round_trips_through_checkpoint_and_torchscript(
    tmp_path: Path,
) -> None:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    for kind in (Features.BASE_FRAME, Features.GOAL_FREE):
        torch.manual_seed(1)
        net = GaussianPolicy(
            10, 2, (16,), features=make_features(kind, env.task, 10), rest_anchor=True
        )
        obs = np.random.default_rng(6).standard_normal((8, 10)).astype(np.float32)
        net.set_normalisation(obs)
        policy = GPSPolicy(net)
        loaded = GPSPolicy.load(policy.save(tmp_path / f"{kind.value}.pt"))
        assert loaded.network.mean.rest_anchor
        np.testing.assert_array_equal(loaded.act(obs[2]), policy.act(obs[2]))
        scripted = torch.jit.load(str(policy.export_torchscript(tmp_path / f"{kind.value}.ts")))
        with torch.no_grad():
            np.testing.assert_allclose(
                scripted(torch.as_tensor(obs))[3].numpy(), policy.act(obs[3]), atol=1e-6
            )
