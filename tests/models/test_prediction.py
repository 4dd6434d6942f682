"""Open-loop model error by horizon: a fitted model beats "nothing changes" and its error
grows with the horizon; the baseline is computed exactly; bad horizons are rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.evaluation import RandomPolicy
from robot_rl.models import (
    EnsembleTrainer,
    GaussianEnsemble,
    TransitionDataset,
    collect_episode,
    prediction_error_by_horizon,
)


@pytest.fixture(scope="module")
def pendulum_fit():
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    runs = [collect_episode(env, RandomPolicy(env.action_space, s), seed=s)[1] for s in range(6)]
    data = TransitionDataset(3, 1)
    for run in runs[:5]:
        data.add_episode(run)
    model = GaussianEnsemble(3, 1, members=3, elites=2, hidden=(64, 64),
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    EnsembleTrainer(model, max_epochs=60, generator=torch.Generator().manual_seed(1)).fit(
        data.batch()
    )
    return model, runs[5:], np.maximum(data.batch().obs.std(0), 1e-6)


def test_a_fitted_model_beats_no_change_and_errs_more_further_ahead(pendulum_fit) -> None:
    model, held_out, scale = pendulum_fit
    horizons = [1, 5, 10]
    rmse, still = prediction_error_by_horizon(model, held_out, horizons, scale)
    assert len(rmse) == len(still) == 3
    assert rmse[0] < 0.5 * still[0]
    assert rmse[0] < rmse[1] < rmse[2]
    assert still[0] < still[2]


def test_the_no_change_baseline_is_exact(pendulum_fit) -> None:
    model, held_out, scale = pendulum_fit
    (_,), (still,) = prediction_error_by_horizon(model, held_out, [3], scale)
    run = held_out[0]
    obs = np.array([t.obs for t in run])
    nxt = np.array([t.next_obs for t in run])
    expected = np.sqrt((((obs[: len(run) - 2] - nxt[2:]) / scale) ** 2).mean())
    assert still == pytest.approx(expected, rel=1e-6)


def test_bad_horizons_are_rejected(pendulum_fit) -> None:
    model, held_out, scale = pendulum_fit
    with pytest.raises(ValueError, match="horizons must be >= 1"):
        prediction_error_by_horizon(model, held_out, [0, 1], scale)
    with pytest.raises(ValueError, match="no run has the 100000 steps"):
        prediction_error_by_horizon(model, held_out, [100_000], scale)
