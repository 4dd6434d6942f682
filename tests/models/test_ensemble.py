"""The ensemble: shapes, batched members, the differentiable mean, the fast path, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.checkpoint import CheckpointError
from robot_rl.models import GaussianEnsemble, check_model_dims


def make_model(seed: int = 0, **kwargs) -> GaussianEnsemble:
    kwargs = {"members": 4, "elites": 3, "hidden": (32, 32), **kwargs}
    return GaussianEnsemble(3, 2, generator=torch.Generator().manual_seed(seed), **kwargs)


def fitted_model(seed: int = 0, **kwargs) -> GaussianEnsemble:
    """A model with non-trivial normalisers and elites, so paths that fold them are tested."""
    model = make_model(seed, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    inputs = torch.randn(64, 5, generator=g) * torch.tensor([1.0, 2.0, 0.5, 3.0, 0.1]) + 0.3
    targets = torch.randn(64, model.out_dim, generator=g) * 0.2 - 0.1
    model.set_normalization(inputs, targets)
    model.set_elites([3, 0, 2])
    return model


def test_shapes_and_members_are_independent():
    model = fitted_model()
    obs, act = torch.randn(10, 3), torch.randn(10, 2)
    pred = model.predict(obs, act)
    assert pred.mean.shape == pred.var.shape == (4, 10, 3)
    assert (pred.var > 0).all()
    # Member 2 alone gives the same as member 2 within the full batched evaluation.
    alone = model.predict(obs, act, torch.tensor([2]))
    torch.testing.assert_close(alone.mean[0], pred.mean[2])
    # Members differ (independent initialisation).
    assert not torch.allclose(pred.mean[0], pred.mean[1])


def test_predict_reward_adds_an_output():
    model = make_model(predict_reward=True)
    assert model.out_dim == 4
    assert model.predict(torch.randn(5, 3), torch.randn(5, 2)).mean.shape == (4, 5, 4)


def test_logvar_stays_within_soft_bounds():
    model = fitted_model()
    x = 1e3 * torch.randn(4, 50, 5)  # far outside the data: raw outputs are huge
    with torch.no_grad():
        _, logvar = model(x)
    assert (logvar <= model.max_logvar + 1e-4).all()
    assert (logvar >= model.min_logvar - 1e-4).all()


def test_mean_next_obs_is_the_elite_average_and_differentiable():
    model = fitted_model()
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    expected = obs + model.predict(obs, act).mean[model.elite_index].mean(0)
    torch.testing.assert_close(model.mean_next_obs(obs, act), expected)

    # Jacobians through torch.func agree with central finite differences (in float64).
    model64 = fitted_model().double()
    f = model64.mean_next_obs
    x, u = obs.double()[:2], act.double()[:2]
    jx, ju = torch.func.vmap(
        torch.func.jacrev(lambda a, b: f(a[None], b[None])[0], argnums=(0, 1))
    )(x, u)
    eps = 1e-6
    for i in range(3):
        d = torch.zeros(3, dtype=torch.float64)
        d[i] = eps
        fd = (f(x + d, u) - f(x - d, u)) / (2 * eps)
        torch.testing.assert_close(jx[:, :, i], fd, atol=1e-7, rtol=1e-6)
    for i in range(2):
        d = torch.zeros(2, dtype=torch.float64)
        d[i] = eps
        fd = (f(x, u + d) - f(x, u - d)) / (2 * eps)
        torch.testing.assert_close(ju[:, :, i], fd, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 2 * 3 * 33 * 4])  # one chunk; 2 + 2 + 2 + 1
def test_grouped_forward_matches_predict(monkeypatch, chunk_bytes):
    monkeypatch.setattr("robot_rl.models.ensemble.CHUNK_BYTES", chunk_bytes)
    model = fitted_model(predict_reward=True)
    members = torch.tensor([3, 0, 2])
    obs, act = torch.randn(3, 7, 3), torch.randn(3, 7, 2)
    fast = model.grouped_forward(members, rows=7)
    assert fast.chunk == (7 if chunk_bytes == 1 << 20 else 2)
    mean, std = fast(obs, act)
    ref = model.predict(obs, act, members)
    torch.testing.assert_close(mean, ref.mean, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(std, ref.var.sqrt(), atol=1e-5, rtol=1e-4)


def test_same_seed_same_model_and_different_seed_different_model():
    a, b, c = make_model(1), make_model(1), make_model(2)
    for (name, x), y, z in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
        if name.startswith("net."):
            assert not torch.equal(x, z), name


def test_save_load_round_trip(tmp_path):
    model = fitted_model(predict_reward=True)
    path = model.save(tmp_path / "model.pt", {"note": "x"})
    loaded = GaussianEnsemble.load(path)
    assert loaded.hyperparameters() == model.hyperparameters()
    for (name, x), y in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    assert torch.equal(model.mean_next_obs(obs, act), loaded.mean_next_obs(obs, act))


def test_corrupt_or_foreign_checkpoint_raises(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        GaussianEnsemble.load(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        GaussianEnsemble.load(tmp_path / "missing.pt")
    from robot_rl.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.pt", {"w": torch.zeros(2)}, {"model": {"kind": "other"}})
    with pytest.raises(CheckpointError, match="does not hold a GaussianEnsemble"):
        GaussianEnsemble.load(tmp_path / "other.pt")
    model = make_model()
    tensors = dict(model.state_dict())
    tensors.pop("max_logvar")
    save_checkpoint(tmp_path / "partial.pt", tensors, {"model": model.hyperparameters()})
    with pytest.raises(CheckpointError, match="malformed"):
        GaussianEnsemble.load(tmp_path / "partial.pt")


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="elites"):
        GaussianEnsemble(3, 2, members=3, elites=4)
    model = make_model()
    with pytest.raises(ValueError, match="distinct"):
        model.set_elites([0, 0, 1])
    with pytest.raises(ValueError, match="shape"):
        model.set_normalization(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="obs_dim=3, act_dim=2, but the env has obs_dim=5"):
        check_model_dims(model, 5, 1)


def test_mean_prediction_plugs_into_trajectory_optimisation():
    from robot_rl.controllers import TorchDynamics

    model = fitted_model()
    dynamics = TorchDynamics(model.mean_next_obs, state_size=3, action_size=2)
    x, u = torch.randn(4, 3), torch.randn(4, 2)
    np_next = dynamics.step(x.numpy(), u.numpy())
    np.testing.assert_allclose(
        np_next, model.mean_next_obs(x, u).detach().numpy(), rtol=1e-6, atol=1e-6
    )
    A, B = dynamics.jacobians(x.numpy(), u.numpy())
    jx, ju = torch.func.vmap(
        torch.func.jacrev(lambda a, b: model.mean_next_obs(a[None], b[None])[0], argnums=(0, 1))
    )(x, u)
    np.testing.assert_allclose(A, jx.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(B, ju.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_the_fast_mean_step_matches_the_differentiable_mean():
    from robot_rl.controllers import TorchDynamics

    model = fitted_model()
    step = model.mean_step()
    for rows in (1, 7, 1):  # a new batch size, then a cached one
        x, u = torch.randn(rows, 3), torch.randn(rows, 2)
        np.testing.assert_allclose(
            step(x, u).numpy(), model.mean_next_obs(x, u).detach().numpy(), rtol=1e-5, atol=1e-5
        )
    slow = TorchDynamics(model.mean_next_obs, 3, 2)
    fast = TorchDynamics(model.mean_next_obs, 3, 2, rollout_fn=step)
    x0, actions = (
        np.random.default_rng(0).normal(size=3),
        np.random.default_rng(1).normal(size=(20, 2)),
    )
    np.testing.assert_allclose(
        fast.rollout(x0, actions), slow.rollout(x0, actions), rtol=1e-4, atol=1e-4
    )
