"""Fitting: a known nonlinear function with calibrated variance, elites, disagreement, bad data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.models import EnsembleTrainer, GaussianEnsemble, TransitionDataset, score
from robot_rl.types import Batch, Transition


def noisy_sine(n: int, seed: int, low: float = -2.0, high: float = 2.0) -> Batch:
    """next = obs + sin(2 obs) + 0.3 u + noise with std 0.05 + 0.1 |obs| (heteroscedastic)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(low, high, (n, 1))
    act = rng.uniform(-1, 1, (n, 1))
    std = 0.05 + 0.1 * np.abs(obs)
    next_obs = obs + np.sin(2 * obs) + 0.3 * act + std * rng.standard_normal((n, 1))
    zeros = np.zeros(n)
    return Batch(obs, act, zeros, next_obs, zeros, zeros)


def train(data: Batch, seed: int = 0, **kwargs) -> tuple[GaussianEnsemble, object]:
    model = GaussianEnsemble(
        1, 1, members=5, elites=3, hidden=(64, 64), generator=torch.Generator().manual_seed(seed)
    )
    trainer = EnsembleTrainer(
        model,
        batch_size=64,
        learning_rate=3e-3,
        max_epochs=kwargs.pop("max_epochs", 150),
        patience=10,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
    return model, trainer.fit(data)


@pytest.fixture(scope="module")
def sine_model():
    return train(noisy_sine(3000, seed=0))


def test_fits_a_nonlinear_function_with_calibrated_variance(sine_model):
    model, result = sine_model
    assert result.elites == tuple(sorted(result.elites, key=lambda i: result.holdout.mse[i]))
    test = noisy_sine(2000, seed=1)
    obs, act = torch.tensor(test.obs), torch.tensor(test.action)
    with torch.no_grad():
        pred = model.predict(obs, act, model.elite_index)
        mean = obs.float() + pred.mean.mean(0)
        std = (pred.var.mean(0) + pred.mean.var(0, unbiased=False)).sqrt()
    truth = obs + torch.sin(2 * obs) + 0.3 * act
    true_std = 0.05 + 0.1 * obs.abs()
    # The mean is close to the noise-free function (well under the noise level).
    assert (mean - truth).abs().mean() < 0.03
    # The predicted std follows the heteroscedastic noise.
    assert ((std - true_std).abs() / true_std).median() < 0.25
    # Calibration: about 68 % of held-out targets within one predicted std.
    inside = ((torch.tensor(test.next_obs) - mean).abs() < std).double().mean()
    assert 0.6 < inside < 0.78
    # Scoring the held-out data agrees with the fit's holdout score in scale.
    held_out = score(model, test)
    assert held_out.elite_mse(result.elites) < 2 * result.holdout_mse + 0.01


def test_disagreement_is_higher_off_distribution(sine_model):
    model, _ = sine_model
    act = torch.zeros(200, 1)
    on = torch.linspace(-1.5, 1.5, 200)[:, None]
    off = torch.linspace(4.0, 6.0, 200)[:, None]
    with torch.no_grad():
        d_on, d_off = model.disagreement(on, act), model.disagreement(off, act)
    assert d_off.mean() > 10 * d_on.mean()


def test_early_stopping_stops_before_the_epoch_cap():
    _, result = train(noisy_sine(500, seed=2), max_epochs=1000)
    assert result.epochs < 1000
    assert result.holdout_size == 100
    assert result.train_size == 400


def test_same_seed_same_fit():
    data = noisy_sine(300, seed=3)
    a, ra = train(data, seed=4, max_epochs=5)
    b, rb = train(data, seed=4, max_epochs=5)
    assert ra == rb
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_tiny_dataset_trains_without_a_holdout():
    _, result = train(noisy_sine(3, seed=5), max_epochs=3)
    assert result.holdout_size == 0
    assert result.train_size == 3


@pytest.mark.parametrize(
    ("field", "match"),
    [("obs", "obs holds NaN or inf in 1 of 20"), ("next_obs", "next_obs holds NaN")],
)
def test_non_finite_data_is_rejected(field, match):
    data = noisy_sine(20, seed=0)
    bad = np.array(getattr(data, field))
    bad[7, 0] = np.nan if field == "obs" else np.inf
    model = GaussianEnsemble(1, 1, members=2, elites=1, hidden=(8,))
    with pytest.raises(ValueError, match=match):
        EnsembleTrainer(model).fit(data._replace(**{field: bad}))


def test_empty_and_mismatched_data_are_rejected():
    model = GaussianEnsemble(1, 1, members=2, elites=1, hidden=(8,))
    empty = TransitionDataset(1, 1).batch()
    with pytest.raises(ValueError, match="empty dataset"):
        EnsembleTrainer(model).fit(empty)
    wide = noisy_sine(10, seed=0)
    wide = wide._replace(obs=np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"obs must have shape \(N, 1\) for this model"):
        EnsembleTrainer(model).fit(wide)


def test_dataset_checks_and_round_trips():
    data = TransitionDataset(2, 1)
    for i in range(100):  # grows past its initial capacity
        data.add(Transition(np.full(2, i), np.ones(1), 0.5, np.full(2, i + 1), i == 99, False, 0.0))
    batch = data.batch()
    assert batch.obs.shape == (100, 2)
    assert batch.terminated[-1] == 1.0
    copy = TransitionDataset.from_tensors(data.tensors())
    for x, y in zip(copy.batch(), batch, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="action is not finite"):
        data.add(Transition(np.zeros(2), np.array([np.nan]), 0.0, np.zeros(2), False, False, 0.0))
    with pytest.raises(ValueError, match="obs must have shape"):
        data.add(Transition(np.zeros(3), np.zeros(1), 0.0, np.zeros(2), False, False, 0.0))


def test_past_actions_follow_episode_boundaries():
    data = TransitionDataset(1, 1)
    episode = [
        Transition(np.zeros(1), np.array([float(i + 1)]), 0.0, np.zeros(1), False, False, 0.0)
        for i in range(3)
    ]
    data.add_episode(episode)
    data.add_episode(episode[:2])
    past = data.past_actions(2)
    # Actions 1, 2, 3 | 1, 2: before each, the two previous ones of the same episode (else 0).
    np.testing.assert_array_equal(past, [[0, 0], [0, 1], [1, 2], [0, 0], [0, 1]])
    np.testing.assert_array_equal(
        TransitionDataset.from_tensors(data.tensors()).past_actions(2), past
    )
    model = GaussianEnsemble(1, 1, members=2, elites=1, hidden=(8,), action_history=2)
    with pytest.raises(ValueError, match="pass past_actions"):
        EnsembleTrainer(model).fit(data.batch())
    result = EnsembleTrainer(model, max_epochs=2).fit(data.batch(), past)
    assert result.train_size == 4
