"""The S-step: supervised regression of the global policy onto the local controllers.

At every sampled state the local controller proposes a Gaussian ``N(K_t x + k_t, Σ_t)``. The
policy mean is trained to minimise the precision-weighted squared error

    E[(μ(o) - (K_t x + k_t))ᵀ Σ_t⁻¹ (μ(o) - (K_t x + k_t))],

so it follows the teacher tightly where the teacher is confident and loosely where it
explores; the policy covariance is then set in closed form to the inverse of the average
precision (the minimiser of the KL divergence to the teachers for a state-independent
covariance), its diagonal kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robot_rl.agents.gps.policy import GaussianPolicy


@dataclass(frozen=True)
class SStepReport:
    """Weighted regression losses before and after the S-step (normalised precisions)."""

    loss_before: float
    loss_after: float


def _weighted_loss(
    policy: GaussianPolicy, obs: torch.Tensor, target: torch.Tensor, precision: torch.Tensor
) -> torch.Tensor:
    err = policy(obs) - target
    return torch.einsum("bi,bij,bj->b", err, precision, err).mean()


def s_step(
    policy: GaussianPolicy,
    optimizer: torch.optim.Optimizer,
    obs: np.ndarray,
    target: np.ndarray,
    precision: np.ndarray,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
    min_std: float = 1e-3,
) -> SStepReport:
    """Train ``policy`` toward the teachers' actions at the sampled states.

    Args:
        policy: the global policy (its input normalisation is fixed here on first use).
        optimizer: optimiser over the policy's mean parameters.
        obs: (P, obs_size) sampled observations.
        target: (P, act_size) teacher mean actions at those observations.
        precision: (P, act_size, act_size) teacher precisions.
        steps: gradient steps.
        batch_size: minibatch size.
        generator: draws the minibatches.
        min_std: floor on the policy's standard deviation, normalised action units.
    """
    if not (obs.shape[0] == target.shape[0] == precision.shape[0]) or obs.shape[0] == 0:
        raise ValueError(
            f"S-step data must have matching, non-empty leading axes; got obs {obs.shape}, "
            f"target {target.shape}, precision {precision.shape}"
        )
    for name, a in (("obs", obs), ("target", target), ("precision", precision)):
        if not np.isfinite(a).all():
            raise ValueError(f"S-step {name} has non-finite entries")
    if not bool(policy.normalised):
        policy.set_normalisation(obs)
    # Precisions can span orders of magnitude as the teachers sharpen; their overall scale
    # does not change the minimiser, so normalise it for a steady learning rate.
    m = precision.shape[-1]
    scale = np.trace(precision, axis1=1, axis2=2).mean() / m
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    tgt_t = torch.as_tensor(target, dtype=torch.float32)
    prc_t = torch.as_tensor(precision / scale, dtype=torch.float32)
    with torch.no_grad():
        before = float(_weighted_loss(policy, obs_t, tgt_t, prc_t))
    P = obs.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, P, (min(batch_size, P),), generator=generator)
        loss = _weighted_loss(policy, obs_t[idx], tgt_t[idx], prc_t[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(_weighted_loss(policy, obs_t, tgt_t, prc_t))
        variance = 1.0 / np.diag(precision.mean(0))
        std = np.maximum(np.sqrt(variance), min_std)
        policy.log_std.copy_(torch.as_tensor(np.log(std), dtype=torch.float32))
    return SStepReport(before, after)
