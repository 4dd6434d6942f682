"""The C-step: an LQR update of a local controller under a KL bound.

Given fitted dynamics, a quadratic cost model and a reference controller ``p̄`` (in mirror-
descent GPS, the global policy linearised around the samples), the C-step solves

    min_p  E_p[Σ_t l_t]   subject to   KL(p ‖ p̄) ≤ ε

through its Lagrangian: for a dual variable η > 0 the minimiser of ``E_p[l/η - log p̄] - H(p)``
is linear-Gaussian and found by one LQR backward pass on the augmented cost
``l/η - log p̄`` (its action covariance is the inverse of ``Q_uu``). η is found by a bracketing
search in log space until the KL divergence is within ``tolerance · ε`` of the bound
(or below it with η at its floor: the bound is inactive and the update is plain LQR).

The backward pass is the package's one Riccati recursion,
``robot_rl.controllers.lqr.riccati_backward``, run without regularisation on the fitted
affine dynamics and the augmented cost.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from robot_rl.agents.gps.cost import QuadraticCost
from robot_rl.agents.gps.errors import NumericalError
from robot_rl.agents.gps.linear_gaussian import (
    LinearGaussianController,
    LinearGaussianDynamics,
    TrajectoryDistribution,
    forward,
    kl_divergence,
)
from robot_rl.controllers.lqr import BackwardStatus, riccati_backward


class CStepStatus(enum.Enum):
    """How the η search ended."""

    CONVERGED = "converged"
    """KL within tolerance of the bound, or below it with the bound inactive."""
    KL_NOT_MET = "kl_not_met"
    """No η met the bound within the iteration budget; the most conservative feasible
    controller found (or the reference itself) is returned."""


@dataclass(frozen=True)
class CStepResult:
    """Outcome of one C-step.

    Attributes:
        controller: the new local controller (always finite).
        eta: the dual variable used.
        kl: KL(new ‖ reference) summed over steps, nats.
        kl_bound: the bound ε it was held to, nats.
        predicted_cost: expected cost of ``controller`` under the fitted dynamics.
        status: how the η search ended.
        iterations: backward passes run.
        eta_increases: times η was raised because ``Q_uu`` was not positive definite.
    """

    controller: LinearGaussianController
    eta: float
    kl: float
    kl_bound: float
    predicted_cost: float
    status: CStepStatus
    iterations: int
    eta_increases: int


def _augmented_cost(
    cost: QuadraticCost, reference: LinearGaussianController, eta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``l/η - log p̄`` as (C (T, n+m, n+m), c (T, n+m), C_final, c_final), absolute coords."""
    K, k, P = reference.K, reference.k, reference.precision
    PK = P @ K  # (T, m, n)
    M = np.concatenate(
        [
            np.concatenate([np.swapaxes(K, 1, 2) @ PK, -np.swapaxes(PK, 1, 2)], axis=2),
            np.concatenate([-PK, P], axis=2),
        ],
        axis=1,
    )
    Pk = np.einsum("tij,tj->ti", P, k)
    v = np.concatenate([np.einsum("tji,tj->ti", K, Pk), -Pk], axis=1)
    return cost.C / eta + M, cost.c / eta + v, cost.C_final / eta, cost.c_final / eta


def kl_constrained_lqr(
    dynamics: LinearGaussianDynamics,
    cost: QuadraticCost,
    reference: LinearGaussianController,
    eta: float,
) -> LinearGaussianController:
    """The minimiser of ``E_p[l/η - log p̄] - H(p)`` for one η.

    One unregularised pass of ``riccati_backward`` in absolute coordinates (nominal
    ``x̄ = 0, ū = 0``, the fitted offsets as ``fc``); the action covariance is ``Q_uu⁻¹``.

    Raises:
        NumericalError: ``Q_uu`` is not positive definite, or the pass is not finite.
    """
    C, c, Cf, cf = _augmented_cost(cost, reference, eta)
    n = dynamics.state_size
    result = riccati_backward(
        dynamics.A,
        dynamics.B,
        lxx=C[:, :n, :n],
        lux=C[:, n:, :n],
        luu=C[:, n:, n:],
        lx=c[:, :n],
        lu=c[:, n:],
        vxx_final=Cf,
        vx_final=cf,
        fc=dynamics.c,
    )
    if result.status is not BackwardStatus.OK:
        raise NumericalError(f"Riccati pass failed at step {result.step}: {result.status.value}")
    try:
        covariance = np.linalg.inv(result.Quu)
    except np.linalg.LinAlgError as err:
        raise NumericalError("Q_uu is singular") from err
    covariance = 0.5 * (covariance + np.swapaxes(covariance, 1, 2))
    if not np.isfinite(covariance).all():
        raise NumericalError("the KL-constrained LQR produced a non-finite covariance")
    return LinearGaussianController(result.K.copy(), result.k.copy(), covariance)


def c_step(
    dynamics: LinearGaussianDynamics,
    cost: QuadraticCost,
    reference: LinearGaussianController,
    kl_bound: float,
    eta: float = 1.0,
    eta_range: tuple[float, float] = (1e-8, 1e16),
    tolerance: float = 0.1,
    max_iterations: int = 50,
) -> CStepResult:
    """Find the controller that minimises expected cost within ``kl_bound`` of ``reference``.

    Args:
        dynamics: fitted linear-Gaussian dynamics (with the initial-state distribution).
        cost: quadratic cost model (absolute coordinates).
        reference: the controller to stay close to.
        kl_bound: ε, total over the horizon, nats (> 0).
        eta: warm start for the dual variable (the previous iteration's).
        eta_range: (floor, ceiling) of η.
        tolerance: accept ``|KL - ε| < tolerance · ε``.
        max_iterations: backward passes allowed.
    """
    if not (kl_bound > 0 and math.isfinite(kl_bound)):
        raise ValueError(f"kl_bound must be positive and finite, got {kl_bound}")
    lo, hi = eta_range
    eta = float(np.clip(eta, lo, hi))
    best: tuple[LinearGaussianController, float, float, TrajectoryDistribution] | None = None
    increases = 0
    status = CStepStatus.KL_NOT_MET
    last: tuple[LinearGaussianController, float, float, TrajectoryDistribution] | None = None
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        try:
            controller = kl_constrained_lqr(dynamics, cost, reference, eta)
            traj = forward(dynamics, controller)
            kl = float(kl_divergence(controller, reference, traj).sum())
            if not math.isfinite(kl):
                raise NumericalError("non-finite KL divergence")
        except (NumericalError, np.linalg.LinAlgError):
            # Q_uu indefinite or a blow-up: more weight on staying near the reference.
            increases += 1
            if eta >= hi:
                break
            lo = eta
            eta = math.sqrt(lo * hi) if hi < eta_range[1] else min(hi, 10.0 * eta)
            continue
        last = (controller, eta, kl, traj)
        if kl <= kl_bound * (1.0 + tolerance) and (best is None or kl > best[2]):
            best = last
        if abs(kl - kl_bound) < tolerance * kl_bound:
            status = CStepStatus.CONVERGED
            break
        if kl < kl_bound:
            if eta <= eta_range[0]:
                status = CStepStatus.CONVERGED  # the bound is inactive
                break
            hi = eta
            eta = max(math.sqrt(lo * hi), 0.1 * hi)
            if eta < 1.01 * eta_range[0]:
                eta = eta_range[0]
        else:
            if eta >= eta_range[1]:
                break
            lo = eta
            eta = min(math.sqrt(lo * hi), 10.0 * lo)
    if status is CStepStatus.CONVERGED and last is not None:
        controller, eta, kl, traj = last
    elif best is not None:
        controller, eta, kl, traj = best
    else:
        controller, kl = reference, 0.0
        traj = forward(dynamics, reference)
    predicted = float(cost.expected(traj).sum())
    return CStepResult(controller, eta, kl, kl_bound, predicted, status, iterations, increases)
