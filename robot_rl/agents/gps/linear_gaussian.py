"""Time-varying linear-Gaussian controllers and dynamics, and the trajectories they induce.

A trajectory of ``T`` steps has states ``x_0 .. x_T`` (T + 1 of them) and actions
``u_0 .. u_{T-1}``. Everything here is NumPy float64: the matrices are small (tens of rows),
and a loop over time steps is the natural form of a Riccati recursion or a forward pass.

Conventions (``n`` = state size, ``m`` = action size):

- controller  ``u_t = K_t x_t + k_t + ε_t``, ``ε_t ~ N(0, Σ_t)``;
- dynamics    ``x_{t+1} = A_t x_t + B_t u_t + c_t + w_t``, ``w_t ~ N(0, W_t)``;
- trajectory distribution: the joint Gaussian of ``(x_t, u_t)`` at each step, ``mean``
  (T, n + m), ``covariance`` (T, n + m, n + m), and of the final state ``x_T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.agents.gps.errors import NumericalError


def _symmetrise(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _check_finite(name: str, *arrays: np.ndarray) -> None:
    for a in arrays:
        if not np.isfinite(a).all():
            raise NumericalError(f"{name} has non-finite entries")


@dataclass(frozen=True)
class LinearGaussianController:
    """``u_t = K_t x_t + k_t + ε_t`` with ``ε_t ~ N(0, covariance_t)``.

    Attributes:
        K: (T, m, n) feedback gains.
        k: (T, m) feedforward terms.
        covariance: (T, m, m) action-noise covariances (symmetric positive definite).
    """

    K: np.ndarray
    k: np.ndarray
    covariance: np.ndarray

    def __post_init__(self) -> None:
        T, m, _ = self.K.shape
        if self.k.shape != (T, m) or self.covariance.shape != (T, m, m):
            raise ValueError(
                f"controller shapes disagree: K {self.K.shape}, k {self.k.shape}, "
                f"covariance {self.covariance.shape}"
            )
        _check_finite("controller", self.K, self.k, self.covariance)

    @property
    def horizon(self) -> int:
        return self.K.shape[0]

    @property
    def state_size(self) -> int:
        return self.K.shape[2]

    @property
    def action_size(self) -> int:
        return self.K.shape[1]

    @property
    def cholesky(self) -> np.ndarray:
        """(T, m, m) lower Cholesky factors of the covariances."""
        return np.linalg.cholesky(self.covariance)

    @property
    def precision(self) -> np.ndarray:
        """(T, m, m) inverse covariances."""
        return _symmetrise(np.linalg.inv(self.covariance))

    def mean_action(self, t: int, x: np.ndarray) -> np.ndarray:
        """Mean action at step ``t`` for states ``x`` (..., n) -> (..., m)."""
        return x @ self.K[t].T + self.k[t]

    def sample_action(self, t: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy action at step ``t`` for a state ``x`` (n,) -> (m,)."""
        noise = self.cholesky[t] @ rng.standard_normal(self.action_size)
        return self.mean_action(t, x) + noise

    @classmethod
    def constant(
        cls, horizon: int, state_size: int, action: np.ndarray, variance: float
    ) -> LinearGaussianController:
        """Open-loop ``u_t = action + ε_t`` with isotropic noise ``variance``: the usual
        initial controller, which explores around a fixed action."""
        action = np.asarray(action, dtype=np.float64)
        m = action.shape[0]
        return cls(
            K=np.zeros((horizon, m, state_size)),
            k=np.tile(action, (horizon, 1)),
            covariance=np.tile(variance * np.eye(m), (horizon, 1, 1)),
        )


@dataclass(frozen=True)
class LinearGaussianDynamics:
    """``x_{t+1} = A_t x_t + B_t u_t + c_t + w_t`` with ``w_t ~ N(0, covariance_t)``.

    Attributes:
        A: (T, n, n) state Jacobians.
        B: (T, n, m) action Jacobians.
        c: (T, n) offsets.
        covariance: (T, n, n) process-noise covariances.
        x0_mean: (n,) mean initial state.
        x0_covariance: (n, n) initial-state covariance.
    """

    A: np.ndarray
    B: np.ndarray
    c: np.ndarray
    covariance: np.ndarray
    x0_mean: np.ndarray
    x0_covariance: np.ndarray

    def __post_init__(self) -> None:
        T, n, _ = self.A.shape
        m = self.B.shape[2]
        expected = {
            "A": (T, n, n),
            "B": (T, n, m),
            "c": (T, n),
            "covariance": (T, n, n),
            "x0_mean": (n,),
            "x0_covariance": (n, n),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"dynamics {name} has shape {getattr(self, name).shape}, want {shape}"
                )

    @property
    def horizon(self) -> int:
        return self.A.shape[0]

    @property
    def state_size(self) -> int:
        return self.A.shape[1]

    @property
    def action_size(self) -> int:
        return self.B.shape[2]


@dataclass(frozen=True)
class TrajectoryDistribution:
    """The Gaussian state-action marginals of a linear-Gaussian controller on linear-Gaussian
    dynamics.

    Attributes:
        mean: (T, n + m) mean of ``(x_t, u_t)``.
        covariance: (T, n + m, n + m) covariance of ``(x_t, u_t)``.
        final_mean: (n,) mean of ``x_T``.
        final_covariance: (n, n) covariance of ``x_T``.
    """

    mean: np.ndarray
    covariance: np.ndarray
    final_mean: np.ndarray
    final_covariance: np.ndarray


def forward(
    dynamics: LinearGaussianDynamics, controller: LinearGaussianController
) -> TrajectoryDistribution:
    """Propagate the state-action Gaussian through the dynamics under the controller."""
    T, n, m = dynamics.horizon, dynamics.state_size, dynamics.action_size
    if (controller.horizon, controller.state_size, controller.action_size) != (T, n, m):
        raise ValueError("controller and dynamics have different horizons or sizes")
    mean = np.empty((T, n + m))
    cov = np.empty((T, n + m, n + m))
    mu_x, sig_x = dynamics.x0_mean.copy(), dynamics.x0_covariance.copy()
    for t in range(T):
        K, k = controller.K[t], controller.k[t]
        mean[t, :n] = mu_x
        mean[t, n:] = K @ mu_x + k
        cov[t, :n, :n] = sig_x
        cov[t, :n, n:] = sig_x @ K.T
        cov[t, n:, :n] = K @ sig_x
        cov[t, n:, n:] = K @ sig_x @ K.T + controller.covariance[t]
        F = np.concatenate([dynamics.A[t], dynamics.B[t]], axis=1)
        mu_x = F @ mean[t] + dynamics.c[t]
        sig_x = _symmetrise(F @ cov[t] @ F.T + dynamics.covariance[t])
    return TrajectoryDistribution(mean, cov, mu_x, sig_x)


def kl_divergence(
    new: LinearGaussianController,
    old: LinearGaussianController,
    states: TrajectoryDistribution,
) -> np.ndarray:
    """Per-step expected KL divergence ``E_{x_t}[KL(new(·|x_t) ‖ old(·|x_t))]``.

    With the state marginals of ``new`` (``states``), this is the KL divergence between the
    trajectory distributions of the two controllers on the same dynamics, split by step:
    the dynamics terms cancel, leaving the policies' conditional KL averaged over states.

    Returns:
        (T,) non-negative, nats.
    """
    T, m, n = new.K.shape
    kl = np.empty(T)
    old_precision = old.precision
    logdet_new = 2.0 * np.log(np.diagonal(new.cholesky, axis1=1, axis2=2)).sum(-1)
    logdet_old = 2.0 * np.log(np.diagonal(old.cholesky, axis1=1, axis2=2)).sum(-1)
    for t in range(T):
        P = old_precision[t]
        dK, dk = new.K[t] - old.K[t], new.k[t] - old.k[t]
        mu_x, sig_x = states.mean[t, :n], states.covariance[t, :n, :n]
        d = dK @ mu_x + dk
        mean_term = d @ P @ d + np.trace(dK.T @ P @ dK @ sig_x)
        kl[t] = 0.5 * (
            np.trace(P @ new.covariance[t]) + mean_term - m + logdet_old[t] - logdet_new[t]
        )
    return np.maximum(kl, 0.0)
