"""How well a learned model predicts open loop, by prediction horizon.

The planner trusts the model over a whole horizon, so the one-step holdout loss the trainer
reports says little about planning; what matters is how the error grows when the model's own
predictions are fed back. ``prediction_error_by_horizon`` replays the recorded actions of
held-out episodes through the ensemble's mean from every start state and compares each
imagined step with what really happened, next to the trivial "nothing changes" predictor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from robot_rl.models.ensemble import GaussianEnsemble
from robot_rl.models.model_env import ModelEnv, Propagation
from robot_rl.types import Transition


def _no_reward(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return next_obs[..., 0] * 0


def prediction_error_by_horizon(
    model: GaussianEnsemble,
    runs: Sequence[Sequence[Transition]],
    horizons: Sequence[int],
    scale: np.ndarray,
) -> tuple[list[float], list[float]]:
    """Open-loop RMSE of the ensemble's mean prediction at each horizon.

    Every start ``t`` of every run with ``max(horizons)`` recorded steps after it is rolled
    out once for the longest horizon (the elites' means averaged, no sampling); the
    prediction ``k`` steps ahead is compared with the observation recorded ``k`` steps later.

    Args:
        model: the trained ensemble.
        runs: episodes of transitions the model has not been trained on.
        horizons: prediction horizons, control steps (each >= 1).
        scale: (obs_dim,) per-dimension scale the errors are divided by (e.g. the data's
            standard deviation), so dimensions in different units count alike.

    Returns:
        (model RMSE per horizon, no-change RMSE per horizon), both in units of ``scale``.

    Raises:
        ValueError: a horizon < 1, or no run long enough for the longest horizon.
    """
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be >= 1, got {list(horizons)}")
    longest = max(horizons)
    h, a = model.action_history, model.act_dim
    starts, actions, pasts, futures = [], [], [], []
    for transitions in runs:
        if len(transitions) < longest:
            continue
        obs = np.array([t.obs for t in transitions])
        act = np.array([t.action for t in transitions])
        nxt = np.array([t.next_obs for t in transitions])
        padded = np.concatenate([np.zeros((h, a)), act])
        for t in range(len(transitions) - longest + 1):
            starts.append(obs[t])
            actions.append(act[t : t + longest])
            pasts.append(padded[t : t + h])
            futures.append(nxt[t : t + longest])
    if not starts:
        raise ValueError(f"no run has the {longest} steps the longest horizon needs")
    model_env = ModelEnv(
        model, _no_reward, particles=1, propagation=Propagation.EXPECTATION, sample=False
    )
    predicted = model_env.rollout(
        torch.as_tensor(np.array(starts), dtype=torch.float32),
        torch.as_tensor(np.array(actions), dtype=torch.float32),
        torch.as_tensor(np.array(pasts), dtype=torch.float32),
    )[:, 0, 1:].numpy()  # (starts, longest, obs_dim): the prediction k steps ahead at k - 1
    start_states, futures = np.array(starts)[:, None], np.array(futures)
    model_rmse, still_rmse = [], []
    for k in horizons:
        target = futures[:, k - 1]
        model_rmse.append(float(np.sqrt((((predicted[:, k - 1] - target) / scale) ** 2).mean())))
        still_rmse.append(float(np.sqrt((((start_states[:, 0] - target) / scale) ** 2).mean())))
    return model_rmse, still_rmse
