"""Time-varying linear-Gaussian dynamics fitted by regression with a Gaussian-mixture prior.

At every step ``t`` the joint Gaussian of ``y = (x_t, u_t, x_{t+1})`` is estimated from the N
samples at that step, with a normal-inverse-Wishart prior whose mean and covariance come from
a Gaussian mixture fitted to the transitions of all recent samples (of every condition and
step). Conditioning the joint on ``(x_t, u_t)`` gives ``A_t, B_t, c_t`` and the residual
covariance. The prior is what lets a handful of samples per condition fit a 10- or 23-
dimensional state (Levine & Abbeel 2014, "Learning neural network policies with guided policy
search under unknown dynamics").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_rl.agents.gps.gmm import GaussianMixture
from robot_rl.agents.gps.linear_gaussian import LinearGaussianDynamics


def _check_samples(X: np.ndarray, U: np.ndarray) -> None:
    if X.ndim != 3 or U.ndim != 3 or X.shape[0] != U.shape[0] or X.shape[1] != U.shape[1] + 1:
        raise ValueError(
            f"samples must be X (N, T + 1, n) and U (N, T, m), got X {X.shape} and U {U.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(U).all()):
        raise ValueError("samples have non-finite states or actions")


def transitions(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """``(x_t, u_t, x_{t+1})`` rows, (N, T, 2n + m), from X (N, T + 1, n) and U (N, T, m)."""
    return np.concatenate([X[:, :-1], U, X[:, 1:]], axis=-1)


class DynamicsPrior:
    """A Gaussian mixture over the transitions of the most recent sampled trajectories.

    Args:
        max_trajectories: how many recent trajectories (of all conditions) to keep.
        max_components: upper bound on mixture components.
        points_per_component: at least this many transitions per component.
        rng: draws the EM initialisation.
    """

    def __init__(
        self,
        max_trajectories: int,
        max_components: int,
        points_per_component: int,
        rng: np.random.Generator,
    ) -> None:
        if max_trajectories < 1 or max_components < 1 or points_per_component < 1:
            raise ValueError("prior sizes must be >= 1")
        self.max_components = max_components
        self.points_per_component = points_per_component
        self.rng = rng
        self._trajectories: deque[np.ndarray] = deque(maxlen=max_trajectories)
        self.gmm: GaussianMixture | None = None

    def update(self, X: np.ndarray, U: np.ndarray) -> None:
        """Add sampled trajectories X (N, T + 1, n), U (N, T, m) and refit the mixture."""
        _check_samples(X, U)
        self._trajectories.extend(transitions(X, U))
        data = np.concatenate(list(self._trajectories), axis=0)
        components = max(1, min(self.max_components, data.shape[0] // self.points_per_component))
        self.gmm = GaussianMixture.fit(data, components, self.rng, init=self.gmm)

    def moments(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean (2n + m,) and covariance for transitions near ``points`` (N, 2n + m)."""
        if self.gmm is None:
            raise RuntimeError("DynamicsPrior.update must be called before moments")
        return self.gmm.moments(points)


@dataclass(frozen=True)
class FitReport:
    """Diagnostics of one dynamics fit.

    Attributes:
        condition: largest condition number of the (x, u) covariance over steps.
        residual: mean one-step prediction error of the fit on its own samples, state units.
    """

    condition: float
    residual: float


def fit_dynamics(
    X: np.ndarray,
    U: np.ndarray,
    prior: DynamicsPrior | None,
    prior_strength: float,
    regularization: float = 1e-6,
    initial_state_variance: float = 1e-6,
) -> tuple[LinearGaussianDynamics, FitReport]:
    """Fit ``x_{t+1} = A_t x_t + B_t u_t + c_t + w_t`` at every step.

    The joint covariance at step ``t`` is the normal-inverse-Wishart MAP estimate

        Σ = (N Σ̂ + n₀ Σ₀ + N n₀ / (N + n₀) (μ̂ - μ₀)(μ̂ - μ₀)ᵀ) / (N + n₀)

    with the empirical mean ``μ̂`` and covariance ``Σ̂`` of the N samples and the prior's
    ``μ₀, Σ₀`` evaluated at them; the mean stays ``μ̂`` so the fit passes through the data.

    Args:
        X: (N, T + 1, n) sampled states.
        U: (N, T, m) sampled actions.
        prior: the mixture prior (None: plain regression, which needs N > n + m).
        prior_strength: ``n₀``, pseudo-samples the prior counts for.
        regularization: added to the (x, u) block of the joint covariance.
        initial_state_variance: floor on the initial-state variances.
    """
    _check_samples(X, U)
    N, T, m = U.shape
    n = X.shape[2]
    Y = transitions(X, U)  # (N, T, 2n + m)
    nz = n + m
    A = np.empty((T, n, n))
    B = np.empty((T, n, m))
    c = np.empty((T, n))
    W = np.empty((T, n, n))
    worst = 1.0
    for t in range(T):
        y = Y[:, t]
        mean = y.mean(0)
        diff = y - mean
        sigma = diff.T @ diff / N
        if prior is not None:
            mu0, sigma0 = prior.moments(y)
            d = mean - mu0
            n0 = prior_strength
            sigma = (N * sigma + n0 * sigma0 + (N * n0 / (N + n0)) * np.outer(d, d)) / (N + n0)
        sigma = 0.5 * (sigma + sigma.T)
        sigma[:nz, :nz] += regularization * np.eye(nz)
        szz, szx = sigma[:nz, :nz], sigma[:nz, nz:]
        worst = max(worst, float(np.linalg.cond(szz)))
        F = np.linalg.solve(szz, szx).T  # (n, n + m)
        A[t], B[t] = F[:, :n], F[:, n:]
        c[t] = mean[nz:] - F @ mean[:nz]
        Wt = sigma[nz:, nz:] - F @ szz @ F.T
        W[t] = 0.5 * (Wt + Wt.T)
    x0 = X[:, 0]
    x0_mean = x0.mean(0)
    x0_cov = np.cov(x0, rowvar=False, bias=True) if N > 1 else np.zeros((n, n))
    x0_cov = np.atleast_2d(x0_cov)
    x0_cov = x0_cov + np.diag(np.maximum(initial_state_variance - np.diag(x0_cov), 0.0))
    dynamics = LinearGaussianDynamics(A, B, c, W, x0_mean, x0_cov)
    pred = np.einsum("tij,ntj->nti", np.concatenate([A, B], axis=2), Y[..., :nz]) + c
    residual = float(np.linalg.norm(pred - Y[..., nz:], axis=-1).mean())
    return dynamics, FitReport(condition=worst, residual=residual)
