"""Trajectory costs and their local quadratic models.

The C-step needs, per time step, a quadratic model of the cost in ``z_t = (x_t, u_t)``.
``QuadraticCost`` holds one in absolute coordinates; ``ReachingCost`` is the reaching tasks'
cost (the negated task reward, with the distance smoothed so it has a Hessian everywhere)
and builds the quadratic model as the average of its second-order Taylor expansions at the
sampled points, as in the original GPS code.

Time indexing: the env's reward for step ``t`` scores ``(u_t, x_{t+1})``. Here the cost of
step ``t`` scores ``(x_t, u_t)``: the effort of ``u_t`` and the distance at ``x_t`` for
``t >= 1``; the final cost scores ``x_T``. Summed over an episode the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.agents.gps.linear_gaussian import TrajectoryDistribution
from robot_rl.envs.tasks.base import Task
from robot_rl.envs.tasks.reaching import ArmReach, ReacherTwoLink


@dataclass(frozen=True)
class QuadraticCost:
    """``l_t(z) = ½ zᵀ C_t z + c_tᵀ z + e_t`` with ``z = (x_t, u_t)``, plus a final
    ``l_T(x) = ½ xᵀ C_T x + c_Tᵀ x + e_T``.

    Attributes:
        C: (T, n + m, n + m) symmetric Hessians.
        c: (T, n + m) linear terms.
        e: (T,) constants.
        C_final: (n, n), c_final: (n,), e_final: scalar.
    """

    C: np.ndarray
    c: np.ndarray
    e: np.ndarray
    C_final: np.ndarray
    c_final: np.ndarray
    e_final: float

    def expected(self, traj: TrajectoryDistribution) -> np.ndarray:
        """Expected cost per step under a Gaussian trajectory distribution, (T + 1,)."""
        mu, sig = traj.mean, traj.covariance
        running = (
            0.5 * np.einsum("ti,tij,tj->t", mu, self.C, mu)
            + 0.5 * np.einsum("tij,tji->t", self.C, sig)
            + np.einsum("ti,ti->t", self.c, mu)
            + self.e
        )
        mf, sf = traj.final_mean, traj.final_covariance
        final = 0.5 * mf @ self.C_final @ mf + 0.5 * np.trace(self.C_final @ sf)
        final += self.c_final @ mf + self.e_final
        return np.append(running, final)


@dataclass(frozen=True)
class ReachingCost:
    """Cost of bringing an offset vector (part of the state) to zero with little effort.

    ``l(x, u) = w_d · sqrt(|d|² + α²) / scale + w_2 · |d|² / scale² + w_u · |u|²`` where
    ``d = x[offset]``; the final state is weighted by ``final_weight``. With ``α → 0``,
    ``w_2 = 0``, ``final_weight = 1`` and ``w_d = 1`` it is the negated reward of the
    reaching tasks; the small ``α`` makes the distance smooth at the goal and the ``w_2`` term
    (Levine et al.'s l1 + l2 cost) gives it curvature along the direction to the goal.

    Attributes:
        offset: (start, stop) slice of the state holding ``d`` (e.g. tip - goal), m.
        scale: distance normalisation, m.
        effort_weight: ``w_u``, per normalised action squared.
        smoothing: ``α``, m.
        distance_weight: ``w_d``.
        l2_weight: ``w_2``.
        final_weight: multiplier on the final state's distance terms.
    """

    offset: tuple[int, int]
    scale: float
    effort_weight: float
    smoothing: float = 0.005
    distance_weight: float = 1.0
    l2_weight: float = 1.0
    final_weight: float = 5.0

    def _distance(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value (...), gradient (..., k) and Hessian (..., k, k) of the distance terms."""
        s = np.sqrt((d * d).sum(-1) + self.smoothing**2)
        value = (
            self.distance_weight * s / self.scale + self.l2_weight * (d * d).sum(-1) / self.scale**2
        )
        grad = (self.distance_weight / self.scale) * d / s[..., None]
        grad = grad + (2.0 * self.l2_weight / self.scale**2) * d
        eye = np.eye(d.shape[-1])
        hess = (self.distance_weight / self.scale) * (
            eye / s[..., None, None] - d[..., :, None] * d[..., None, :] / s[..., None, None] ** 3
        )
        hess = hess + (2.0 * self.l2_weight / self.scale**2) * eye
        return value, grad, hess

    def state_weights(self, horizon: int) -> np.ndarray:
        """(T + 1,) weight of the distance terms at each state ``x_0 .. x_T``."""
        w = np.ones(horizon + 1)
        w[0] = 0.0
        w[-1] = self.final_weight
        return w

    def evaluate(self, X: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Cost per step of sampled trajectories.

        Args:
            X: (N, T + 1, n) states.
            U: (N, T, m) actions.

        Returns:
            (N, T + 1): step costs, the last column the final cost.
        """
        lo, hi = self.offset
        value, _, _ = self._distance(X[..., lo:hi])
        cost = value * self.state_weights(U.shape[1])
        cost[:, :-1] += self.effort_weight * (U * U).sum(-1)
        return cost

    def quadratize(self, X: np.ndarray, U: np.ndarray) -> QuadraticCost:
        """The average over samples of the second-order expansions at each sample.

        Args:
            X: (N, T + 1, n) states.
            U: (N, T, m) actions.
        """
        N, T, m = U.shape
        n = X.shape[2]
        lo, hi = self.offset
        w = self.state_weights(T)
        _, grad, hess = self._distance(X[..., lo:hi])
        # Per sample, derivatives with respect to z = (x, u) at each step (and x at the end).
        Z = np.concatenate([X[:, :-1], U], axis=-1)  # (N, T, n + m)
        g = np.zeros((N, T + 1, n + m))
        H = np.zeros((N, T + 1, n + m, n + m))
        g[..., lo:hi] = grad * w[:, None]
        H[..., lo:hi, lo:hi] = hess * w[:, None, None]
        g[:, :-1, n:] = 2.0 * self.effort_weight * U
        H[:, :-1, n:, n:] = 2.0 * self.effort_weight * np.eye(m)
        v = self.evaluate(X, U)
        # Re-express each expansion in absolute coordinates: l(z) ≈ v + gᵀ(z - ẑ) + ½(z - ẑ)ᵀH(z - ẑ).
        zhat = np.concatenate([Z, np.pad(X[:, -1:], ((0, 0), (0, 0), (0, m)))], axis=1)
        Hz = np.einsum("ntij,ntj->nti", H, zhat)
        c_abs = g - Hz
        e_abs = v - np.einsum("nti,nti->nt", g, zhat) + 0.5 * np.einsum("nti,nti->nt", zhat, Hz)
        C, c, e = H.mean(0), c_abs.mean(0), e_abs.mean(0)
        return QuadraticCost(
            C=C[:-1],
            c=c[:-1],
            e=e[:-1],
            C_final=C[-1, :n, :n],
            c_final=c[-1, :n],
            e_final=float(e[-1]),
        )


@dataclass(frozen=True)
class ReachingLayout:
    """Where a reaching task keeps its goal in the observation, and how it scores.

    Attributes:
        offset: (start, stop) of the tip/flange - goal vector, m.
        scale: the reward's distance normalisation, m.
        effort_weight: the reward's weight on |a|².
    """

    offset: tuple[int, int]
    scale: float
    effort_weight: float


def reaching_layout(task: Task) -> ReachingLayout:
    """The ``ReachingLayout`` of a reaching task.

    Raises:
        ValueError: the task is not a reaching task GPS knows.
    """
    if isinstance(task, ReacherTwoLink):
        return ReachingLayout(offset=(8, 10), scale=0.1, effort_weight=0.01)
    if isinstance(task, ArmReach):
        return ReachingLayout(offset=(20, 23), scale=0.1, effort_weight=0.001)
    raise ValueError(
        f"GPS has no cost model for {type(task).__name__}; supported: ReacherTwoLink, ArmReach"
    )


def reaching_cost(task: Task, **overrides: float) -> ReachingCost:
    """The ``ReachingCost`` of a reaching task (its reward's offset, scale and effort weight),
    with any ``ReachingCost`` field overridden."""
    layout = reaching_layout(task)
    base = {"offset": layout.offset, "scale": layout.scale, "effort_weight": layout.effort_weight}
    return ReachingCost(**{**base, **overrides})
