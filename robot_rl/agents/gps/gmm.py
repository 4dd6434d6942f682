"""A Gaussian mixture fitted by expectation-maximisation, in NumPy.

Used as the prior of the dynamics fit: a mixture over ``(x_t, u_t, x_{t+1})`` of all recent
samples, whose components act as a piecewise-linear global model of the dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True)
class GaussianMixture:
    """``K`` full-covariance Gaussians over D dimensions.

    Attributes:
        log_weights: (K,) log mixing weights.
        means: (K, D).
        covariances: (K, D, D), symmetric positive definite.
    """

    log_weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @property
    def components(self) -> int:
        return self.means.shape[0]

    def log_joint(self, data: np.ndarray) -> np.ndarray:
        """``log π_k + log N(x_i | μ_k, Σ_k)``, (P, K), for points ``data`` (P, D)."""
        P, D = data.shape
        inv_chol = np.linalg.inv(np.linalg.cholesky(self.covariances))  # (K, D, D)
        logdet = -2.0 * np.log(np.diagonal(inv_chol, axis1=1, axis2=2)).sum(-1)  # (K,)
        out = np.empty((P, self.components))
        # One component at a time keeps temporaries at (P, D): memory-bound (K, P, D) arrays
        # were the slowest part of a 53-dimensional fit.
        for k in range(self.components):
            solved = (data - self.means[k]) @ inv_chol[k].T
            out[:, k] = -0.5 * ((solved * solved).sum(1) + logdet[k] + D * np.log(2.0 * np.pi))
        return out + self.log_weights

    def responsibilities(self, data: np.ndarray) -> np.ndarray:
        """Posterior component probabilities (P, K) for points ``data`` (P, D)."""
        lj = self.log_joint(data)
        return np.exp(lj - logsumexp(lj, axis=1, keepdims=True))

    def moments(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D,) and covariance (D, D) of the mixture reweighted by how well each
        component explains ``data`` (P, D): the local Gaussian that the prior proposes there.
        """
        w = self.responsibilities(data).mean(0)  # (K,)
        mean = w @ self.means
        diff = self.means - mean
        cov = np.einsum("k,kij->ij", w, self.covariances) + np.einsum("k,ki,kj->ij", w, diff, diff)
        return mean, 0.5 * (cov + cov.T)

    @classmethod
    def fit(
        cls,
        data: np.ndarray,
        components: int,
        rng: np.random.Generator,
        iterations: int = 100,
        tolerance: float = 1e-5,
        regularization: float = 1e-6,
        init: GaussianMixture | None = None,
    ) -> GaussianMixture:
        """Fit by EM, from ``init``'s responsibilities when it has the same number of
        components (a warm start: the data changes little between GPS iterations), else from
        a random hard assignment of the points to components.

        Args:
            data: (P, D) points, P >= 1.
            components: K >= 1 (reduced to P when there are fewer points).
            rng: draws the initial assignment.
            iterations: maximum EM iterations.
            tolerance: stop when the mean log-likelihood improves by less than this.
            regularization: added to every covariance's diagonal, in the data's units².
            init: a previous fit to start from.
        """
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 1:
            raise ValueError(f"GMM data must be (P, D) with P >= 1, got {data.shape}")
        if not np.isfinite(data).all():
            raise ValueError("GMM data has non-finite entries")
        P = data.shape[0]
        K = max(1, min(components, P))
        if init is not None and init.components == K and init.means.shape[1] == data.shape[1]:
            resp = init.responsibilities(data)
        else:
            resp = np.zeros((P, K))
            resp[np.arange(P), rng.integers(0, K, size=P)] = 1.0
        previous = -np.inf
        gmm = cls._m_step(data, resp, regularization)
        for _ in range(iterations):
            lj = gmm.log_joint(data)
            lse = logsumexp(lj, axis=1, keepdims=True)
            loglik = float(lse.mean())
            resp = np.exp(lj - lse)
            gmm = cls._m_step(data, resp, regularization)
            if loglik - previous < tolerance:
                break
            previous = loglik
        return gmm

    @classmethod
    def _m_step(cls, data: np.ndarray, resp: np.ndarray, regularization: float) -> GaussianMixture:
        D = data.shape[1]
        K = resp.shape[1]
        counts = resp.sum(0) + 1e-10  # (K,)
        means = (resp.T @ data) / counts[:, None]
        cov = np.empty((K, D, D))
        for k in range(K):
            diff = data - means[k]
            cov[k] = (diff * resp[:, k : k + 1]).T @ diff / counts[k]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2)) + regularization * np.eye(D)
        log_weights = np.log(counts / counts.sum())
        return cls(log_weights, means, cov)
