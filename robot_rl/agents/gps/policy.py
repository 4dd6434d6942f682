"""The global policy of GPS: a Gaussian MLP, its Policy wrapper, checkpoints and export.

The mean network normalises its input with statistics fixed at the first S-step (stored as
buffers, so they travel with the weights, the checkpoint and the TorchScript export); the
covariance is state-independent and set in closed form by the S-step.

**Rest anchor** (optional): ``μ(o) = g(φ(o)) - g(φ_rest(o))`` where ``φ_rest`` are the
features of the same arm configuration at rest with the tip on the goal (see
``features.py``). The policy then commands exactly zero at rest on any goal, the equilibrium
of a reaching arm without gravity or with it compensated (both reaching tasks here). Without
it, the network has seen the goal at rest only in the few configurations of its training
goals; elsewhere its output there is an interpolation, a small nonzero command that the
arm balances against the feedback on the offset, settling 2-5 cm from held-out goals on the
reacher.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robot_rl.agents.gps.features import SelectFeatures, features_from_spec
from robot_rl.checkpoint import (
    CheckpointError,
    load_checkpoint,
    require_metadata,
    save_checkpoint,
)
from robot_rl.nn import mlp

CHECKPOINT_KIND = "gps_policy"


class MeanNetwork(nn.Module):
    """Observation -> mean action: (B, obs_size) -> (B, act_size), unclipped.

    ``features`` maps the observation to the network's inputs (see ``features.py``); the
    inputs are normalised with statistics fixed at the first S-step. With ``rest_anchor`` the
    output is zero at rest on the goal (see the module docstring); the features must declare
    their rest state.

    Raises:
        ValueError: ``rest_anchor`` with features that have no ``rest_mask``.
    """

    def __init__(
        self, features: nn.Module, act_size: int, hidden: Sequence[int], rest_anchor: bool = False
    ) -> None:
        super().__init__()
        size = int(features.out_features)
        rest_mask = getattr(features, "rest_mask", None)
        if rest_anchor and rest_mask is None:
            raise ValueError(
                f"rest_anchor needs features that declare a rest state; {features.spec} does not"
            )
        self.features = features
        self.rest_anchor = rest_anchor
        self.register_buffer("input_mean", torch.zeros(size))
        self.register_buffer("input_scale", torch.ones(size))
        self.register_buffer(
            "rest_mask", torch.ones(size) if rest_mask is None else rest_mask.clone().float()
        )
        self.body = mlp(size, act_size, hidden, nn.Tanh)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.features(obs)
        out = self.body((x - self.input_mean) / self.input_scale)
        if self.rest_anchor:
            out = out - self.body((x * self.rest_mask - self.input_mean) / self.input_scale)
        return out


class DeterministicPolicy(nn.Module):
    """The exported policy: the mean action clipped to the action bounds, (B, obs) -> (B, act)."""

    def __init__(self, mean: MeanNetwork) -> None:
        super().__init__()
        self.mean = mean

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs).clamp(-1.0, 1.0)


class GaussianPolicy(nn.Module):
    """``π(u | o) = N(μ(o), diag(exp(2 log_std)))`` with a state-independent covariance.

    Args:
        obs_size: observation length.
        act_size: action length.
        hidden: hidden layer widths of the mean network.
        init_std: initial action standard deviation, normalised action units.
        features: observation -> network inputs (None: the whole observation).
        rest_anchor: command zero at rest on the goal (the features must declare a rest
            state; see the module docstring).
    """

    def __init__(
        self,
        obs_size: int,
        act_size: int,
        hidden: Sequence[int],
        init_std: float = 0.3,
        features: nn.Module | None = None,
        rest_anchor: bool = False,
    ) -> None:
        super().__init__()
        if init_std <= 0:
            raise ValueError(f"init_std must be positive, got {init_std}")
        self.obs_size, self.act_size, self.hidden = obs_size, act_size, tuple(hidden)
        features = SelectFeatures(list(range(obs_size))) if features is None else features
        self.mean = MeanNetwork(features, act_size, hidden, rest_anchor)
        self.log_std = nn.Parameter(torch.full((act_size,), float(np.log(init_std))))
        self.register_buffer("normalised", torch.tensor(False))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean action (B, act_size)."""
        return self.mean(obs)

    @property
    def covariance(self) -> np.ndarray:
        """(act_size, act_size) action covariance."""
        return np.diag(np.exp(2.0 * self.log_std.detach().double().numpy()))

    def set_normalisation(self, obs: np.ndarray, min_scale: float = 1e-3) -> None:
        """Fix the input normalisation to the spread of the features of ``obs`` (P, obs_size)."""
        with torch.no_grad():
            x = self.mean.features(torch.as_tensor(obs, dtype=torch.float32))
        self.mean.input_mean.copy_(x.mean(0))
        self.mean.input_scale.copy_(x.std(0).clamp_min(min_scale))
        self.normalised.fill_(True)

    @torch.no_grad()
    def mean_actions(self, obs: np.ndarray) -> np.ndarray:
        """Mean actions (..., act_size) for observations (..., obs_size), float64."""
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        return self.mean(obs_t).double().numpy()

    def linearise(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Jacobians and values of the mean at each point.

        Args:
            obs: (P, obs_size).

        Returns:
            jacobian (P, act_size, obs_size) and mean (P, act_size), float64.
        """
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        jac = torch.func.vmap(torch.func.jacrev(lambda o: self.mean(o[None])[0]))(obs_t)
        with torch.no_grad():
            mean = self.mean(obs_t)
        return jac.detach().double().numpy(), mean.double().numpy()


class GPSPolicy:
    """The trained global policy behind the ``Policy`` contract.

    Args:
        network: the Gaussian policy.
        deterministic: act with the mean (evaluation, deployment) or sample (exploration).
        seed: seeds the sampling noise when not deterministic.
    """

    def __init__(self, network: GaussianPolicy, deterministic: bool = True, seed: int = 0) -> None:
        self.network = network
        self.deterministic = deterministic
        self._seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """The policy is memoryless; its noise stream continues across episodes."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != (self.network.obs_size,):
            raise ValueError(f"obs must have shape ({self.network.obs_size},), got {obs.shape}")
        if not np.isfinite(obs).all():
            raise ValueError("obs has non-finite entries")
        action = self.network.mean_actions(obs)
        if not self.deterministic:
            std = np.exp(self.network.log_std.detach().double().numpy())
            action = action + std * self.rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Write the network and its sizes (plus ``extra`` JSON metadata) to a checkpoint."""
        net = self.network
        metadata = {
            **(extra or {}),
            "kind": CHECKPOINT_KIND,
            "obs_size": net.obs_size,
            "act_size": net.act_size,
            "hidden": list(net.hidden),
            "features": net.mean.features.spec,
            "rest_anchor": net.mean.rest_anchor,
        }
        return save_checkpoint(path, net.state_dict(), metadata)

    @classmethod
    def load(cls, path: str | Path, deterministic: bool = True, seed: int = 0) -> GPSPolicy:
        """Read a policy written by ``save``.

        Raises:
            CheckpointError: missing, corrupt, or not a GPS policy checkpoint.
        """
        tensors, metadata = load_checkpoint(path)
        require_metadata(metadata, {"kind": CHECKPOINT_KIND}, path)
        try:
            net = GaussianPolicy(
                metadata["obs_size"],
                metadata["act_size"],
                metadata["hidden"],
                features=features_from_spec(metadata["features"]),
                rest_anchor=bool(metadata.get("rest_anchor", False)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} has malformed GPS metadata: {err}") from err
        try:
            net.load_state_dict(tensors)
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint {path} does not fit a GPS policy: {err}") from err
        return cls(net, deterministic=deterministic, seed=seed)

    def export_torchscript(self, path: str | Path) -> Path:
        """Save the deterministic policy, (B, obs) -> (B, act) clipped to [-1, 1], as
        TorchScript (loadable with ``torch.jit.load`` and no robot_rl installed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        module = DeterministicPolicy(copy.deepcopy(self.network.mean)).eval()
        module.requires_grad_(False)
        scripted = torch.jit.script(module)
        scripted.save(str(path))
        return path
