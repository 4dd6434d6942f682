"""Fitting a ``GaussianEnsemble``: normalisers, holdout split, member batches, early stopping.

One ``fit`` call: check the data, split off a holdout set, fit the normalisers on the
training part, give every member its own bootstrap resample (or its own shuffle) of the
training data, and minimise the Gaussian negative log-likelihood of all members at once
(one batched forward per minibatch). After each epoch the holdout MSE of every member is
measured; a member's best weights are kept, training stops when no member has improved by
``improvement`` (relative) for ``patience`` epochs, and the ``elites`` best members on
holdout become the ones used for prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robot_rl.models.ensemble import GaussianEnsemble
from robot_rl.types import Batch


@dataclass(frozen=True)
class ModelScore:
    """How well a model predicts a set of transitions (normalised target units).

    Attributes:
        mse: (E,) mean squared error of each member's mean, per output dimension.
        nll: negative log-likelihood of the elites' moment-matched Gaussian (mean of means;
            mean of variances plus variance of means), nats per output dimension.
    """

    mse: tuple[float, ...]
    nll: float

    def elite_mse(self, elites: tuple[int, ...]) -> float:
        return float(np.mean([self.mse[i] for i in elites]))


@dataclass(frozen=True)
class FitResult:
    """What one ``fit`` did.

    Attributes:
        epochs: epochs trained.
        train_loss: training loss of the last epoch (NLL + log-variance bound penalty).
        holdout: score on the holdout set at the weights kept (on the training set when the
            data was too small to hold any out).
        elites: the members now used for prediction, best first.
        train_size: transitions trained on.
        holdout_size: transitions held out.
    """

    epochs: int
    train_loss: float
    holdout: ModelScore
    elites: tuple[int, ...]
    train_size: int
    holdout_size: int

    @property
    def holdout_mse(self) -> float:
        """Mean holdout MSE of the elites."""
        return self.holdout.elite_mse(self.elites)


def check_batch(data: Batch, obs_dim: int, act_dim: int) -> int:
    """Validate a batch of transitions for a model of the given sizes; returns its length.

    ``act_dim`` is the width of the actions in ``data`` (without any action history).

    Raises:
        ValueError: empty, wrongly shaped, or holding NaN/inf (naming the field).
    """
    fields = {"obs": (obs_dim,), "action": (act_dim,), "next_obs": (obs_dim,), "reward": ()}
    n = None
    for name, tail in fields.items():
        value = np.asarray(getattr(data, name))
        if value.ndim != 1 + len(tail) or value.shape[1:] != tail:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, tail))}) for this model, "
                f"got {value.shape}".replace(", )", ")")
            )
        if n is None:
            n = len(value)
            if not n:
                raise ValueError("cannot fit a model to an empty dataset")
        elif len(value) != n:
            raise ValueError(f"{name} has {len(value)} rows, obs has {n}")
        finite = np.isfinite(value).reshape(len(value), -1).all(1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise ValueError(
                f"{name} holds NaN or inf in {len(rows)} of {n} transitions (first: {rows[:5].tolist()})"
            )
    return n


def inputs_and_targets(
    model: GaussianEnsemble, data: Batch, past_actions: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw (unnormalised) model inputs (N, in_dim) and targets (N, out_dim) from ``data``.

    Args:
        past_actions: (N, action_history · act_dim) the actions before each transition,
            oldest first (``TransitionDataset.past_actions``); needed when the model has an
            action history.
    """
    n = check_batch(data, model.obs_dim, model.act_dim)
    width = model.action_history * model.act_dim
    if width and past_actions is None:
        raise ValueError(f"the model takes {model.action_history} past actions: pass past_actions")
    if past_actions is None:
        past_actions = np.zeros((n, 0))
    past_actions = np.asarray(past_actions)
    if past_actions.shape != (n, width):
        raise ValueError(f"past_actions must have shape ({n}, {width}), got {past_actions.shape}")
    if not np.isfinite(past_actions).all():
        raise ValueError("past_actions holds NaN or inf")

    def as_tensor(x: object) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=model.dtype)

    obs, next_obs = as_tensor(data.obs), as_tensor(data.next_obs)
    inputs = torch.cat([obs, as_tensor(past_actions), as_tensor(data.action)], dim=-1)
    targets = next_obs - obs
    if model.predict_reward:
        targets = torch.cat([targets, as_tensor(data.reward)[:, None]], dim=-1)
    return inputs, targets


@torch.no_grad()
def score(
    model: GaussianEnsemble, data: Batch, past_actions: np.ndarray | None = None
) -> ModelScore:
    """Per-member MSE and the elites' NLL on ``data`` (see ``ModelScore``)."""
    inputs, targets = inputs_and_targets(model, data, past_actions)
    return _score_normalized(model, *_normalize(model, inputs, targets))


def _normalize(
    model: GaussianEnsemble, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        (inputs - model.input_mean) / model.input_std,
        (targets - model.target_mean) / model.target_std,
    )


def _score_normalized(model: GaussianEnsemble, x: torch.Tensor, y: torch.Tensor) -> ModelScore:
    mean, logvar = model(x.expand(model.members, -1, -1))
    mse = ((mean - y) ** 2).mean(dim=(1, 2))
    elite_mean, elite_var = mean[model.elite_index], logvar[model.elite_index].exp()
    mu = elite_mean.mean(0)
    var = elite_var.mean(0) + elite_mean.var(0, unbiased=False)
    nll = 0.5 * (math.log(2 * math.pi) + var.log() + (y - mu) ** 2 / var)
    return ModelScore(tuple(mse.tolist()), float(nll.mean()))


class EnsembleTrainer:
    """Fits a ``GaussianEnsemble`` to transitions (see the module docstring).

    Each ``fit`` continues from the model's current weights with a fresh Adam optimiser.

    Args:
        model: the ensemble to train (in place).
        learning_rate: Adam step size.
        weight_decay: L2 penalty on the network weights (not biases or variance bounds).
        batch_size: transitions per member per step.
        holdout_fraction: share of the data held out for early stopping and elite choice.
        max_holdout: at most this many transitions held out.
        max_epochs: epochs per fit at most.
        patience: epochs without a relative improvement of ``improvement`` before stopping.
        improvement: relative holdout-MSE decrease that counts as an improvement.
        bootstrap: each member trains on a bootstrap resample (else on its own shuffle).
        logvar_bound_weight: weight of the penalty that pulls the variance bounds together.
        generator: source of the split, resamples and minibatch order.
    """

    def __init__(
        self,
        model: GaussianEnsemble,
        learning_rate: float = 1e-3,
        weight_decay: float = 5e-5,
        batch_size: int = 32,
        holdout_fraction: float = 0.2,
        max_holdout: int = 5000,
        max_epochs: int = 100,
        patience: int = 5,
        improvement: float = 0.01,
        bootstrap: bool = True,
        logvar_bound_weight: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 <= holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        for name, value in (
            ("batch_size", batch_size),
            ("max_epochs", max_epochs),
            ("patience", patience),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if learning_rate <= 0 or weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        self.model = model
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.batch_size, self.max_epochs, self.patience = batch_size, max_epochs, patience
        self.holdout_fraction, self.max_holdout = holdout_fraction, max_holdout
        self.improvement, self.bootstrap = improvement, bootstrap
        self.logvar_bound_weight = logvar_bound_weight
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def fit(self, data: Batch, past_actions: np.ndarray | None = None) -> FitResult:
        """Train on ``data`` (see the module docstring); returns what happened.

        Args:
            data: the transitions.
            past_actions: the actions before each, when the model has an action history
                (see ``inputs_and_targets``).

        Raises:
            ValueError: the data is empty, holds NaN/inf, or does not match the model's sizes.
        """
        model, g = self.model, self.generator
        inputs, targets = inputs_and_targets(model, data, past_actions)
        n = len(inputs)
        n_holdout = min(int(n * self.holdout_fraction), self.max_holdout)
        order = torch.randperm(n, generator=g)
        train_idx, holdout_idx = order[n_holdout:], order[:n_holdout]
        model.set_normalization(inputs[train_idx], targets[train_idx])
        x, y = _normalize(model, inputs, targets)
        x_train, y_train = x[train_idx], y[train_idx]
        # Too little data to hold any out: score on the training data instead.
        x_hold, y_hold = (x[holdout_idx], y[holdout_idx]) if n_holdout else (x_train, y_train)

        optimizer = self._optimizer()
        n_train, members = len(x_train), model.members
        if self.bootstrap:
            member_sets = torch.randint(n_train, (members, n_train), generator=g)
        else:
            member_sets = torch.arange(n_train).expand(members, -1)
        best = {name: p.detach().clone() for name, p in model.named_parameters()}
        with torch.no_grad():
            best_mse = torch.tensor(_score_normalized(model, x_hold, y_hold).mse)
        stale, epochs, loss_sum, steps = 0, 0, 0.0, 0
        for epoch in range(self.max_epochs):
            epochs = epoch + 1
            shuffle = torch.argsort(torch.rand(members, n_train, generator=g), dim=1)
            idx = member_sets.gather(1, shuffle)
            loss_sum, steps = 0.0, 0
            model.train()
            for start in range(0, n_train, self.batch_size):
                batch = idx[:, start : start + self.batch_size]
                loss = self._loss(x_train[batch], y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum, steps = loss_sum + loss.detach().item(), steps + 1
            model.eval()
            with torch.no_grad():
                mse = torch.tensor(_score_normalized(model, x_hold, y_hold).mse)
            improved = (best_mse - mse) / best_mse.clamp_min(1e-12) > self.improvement
            if improved.any():
                stale = 0
                best_mse = torch.where(improved, mse, best_mse)
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        best[name][improved] = p[improved]
            else:
                stale += 1
                if stale >= self.patience:
                    break
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(best[name])
            elites = torch.argsort(torch.as_tensor(best_mse))[: model.num_elites]
            model.set_elites(elites.tolist())
            holdout = _score_normalized(model, x_hold, y_hold)
        return FitResult(
            epochs=epochs,
            train_loss=loss_sum / max(steps, 1),
            holdout=holdout,
            elites=tuple(elites.tolist()),
            train_size=n_train,
            holdout_size=n_holdout,
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        decayed = [layer.weight for layer in self.model.linears]
        decayed_ids = {id(p) for p in decayed}
        rest = [p for p in self.model.parameters() if id(p) not in decayed_ids]
        return torch.optim.Adam(
            [
                {"params": decayed, "weight_decay": self.weight_decay},
                {"params": rest, "weight_decay": 0.0},
            ],
            lr=self.learning_rate,
        )

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gaussian NLL of every member on its own minibatch, x (E, b, in), y (E, b, out)."""
        model = self.model
        mean, logvar = model(x)
        nll = ((mean - y) ** 2 * torch.exp(-logvar) + logvar).mean(dim=(1, 2)).sum()
        bounds = model.max_logvar.sum() - model.min_logvar.sum()
        return nll + self.logvar_bound_weight * bounds
