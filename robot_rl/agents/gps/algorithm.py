"""Mirror-descent guided policy search (Montgomery & Levine 2016).

Each iteration:

1. **Sample** N trajectories per condition (a training goal) from the global policy (on the
   first iteration, and always in the off-policy variant, from the local controllers).
2. **Fit** time-varying linear-Gaussian dynamics per condition, with the Gaussian-mixture prior
   over all recent samples, and a quadratic model of the cost around the samples.
3. **Linearise** the global policy around each condition's samples: the reference ``p̄``.
4. **Adapt the step size** of each condition from the improvement the last C-step predicted
   against the one that happened (Laplace estimates under the fitted models).
5. **C-step**: KL-constrained LQR from ``p̄`` within ``ε = base_kl · step_mult · T``.
6. **S-step**: regress the global policy onto the new local controllers' actions at the sampled
   states, clipped to the action bounds as the env executes them.

Numerical trouble (an ill-conditioned fit, a KL bound the η search cannot meet, a cost that
got worse) is written to the iteration log and shrinks that condition's step size; a C-step
that fails outright keeps the reference controller, so no controller is ever NaN.
"""

from __future__ import annotations

import copy
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from robot_rl.agents.gps.cost import QuadraticCost, ReachingCost
from robot_rl.agents.gps.cstep import CStepStatus, c_step
from robot_rl.agents.gps.dynamics import DynamicsPrior, fit_dynamics
from robot_rl.agents.gps.linear_gaussian import (
    LinearGaussianController,
    LinearGaussianDynamics,
    forward,
)
from robot_rl.agents.gps.policy import GaussianPolicy, GPSPolicy
from robot_rl.agents.gps.sstep import s_step
from robot_rl.envs.env import RobotEnv
from robot_rl.logger import Logger

log = logging.getLogger(__name__)

COST_RISE_REPORTED = 1.2
"""A condition's sample cost rising by more than this factor is written to the iteration log
(smaller rises are sampling noise; they still shrink the step through the step rule)."""


class StepRule(enum.Enum):
    """How the actual improvement of a condition is measured for step-size adaptation."""

    LAPLACE = "laplace"
    """Expected cost of the linearised policy under each iteration's fitted models."""
    MONTE_CARLO = "monte_carlo"
    """Mean cost of the sampled trajectories."""


class Sampling(enum.Enum):
    """Which distribution the trajectories of an iteration are drawn from."""

    POLICY = "policy"
    """On-policy mirror-descent GPS: the global policy (the default)."""
    LOCAL = "local"
    """Off-policy mirror-descent GPS: the local controllers, which the C-step keeps close to
    the policy (the variant of Montgomery & Levine 2016 for when running the policy early
    is unsafe or it cannot yet act well anywhere)."""


@dataclass(frozen=True)
class GPSConfig:
    """Hyperparameters of mirror-descent GPS."""

    sampling: Sampling = Sampling.POLICY
    """Sample from the global policy (on-policy MDGPS) or the local controllers."""
    samples_per_condition: int = 8
    """Trajectories sampled per condition per iteration."""
    base_kl_step: float = 2.0
    """KL bound per time step at step multiplier 1, nats (ε = base_kl_step · mult · T)."""
    min_step_mult: float = 0.5
    """Floor of the step multiplier."""
    max_step_mult: float = 2.0
    """Ceiling of the step multiplier."""
    step_rule: StepRule = StepRule.MONTE_CARLO
    """How actual improvement is measured for step-size adaptation."""
    init_action_std: float = 0.5
    """Standard deviation of the initial controllers' exploration, normalised action units."""
    prior_trajectories: int = 40
    """Recent trajectories (all conditions) the dynamics prior is fitted to."""
    prior_components: int = 20
    """Upper bound on the prior's mixture components."""
    prior_points_per_component: int = 40
    """At least this many transitions per mixture component."""
    prior_strength: float = 1.0
    """Pseudo-samples the prior counts for, as a multiple of the (x, u, x') dimension."""
    max_condition: float = 1e12
    """A fitted (x, u) covariance worse conditioned than this is reported and halves the
    condition's step size."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the global policy's mean network."""
    policy_lr: float = 1e-3
    """Adam learning rate of the S-step."""
    policy_weight_decay: float = 1e-5
    """Weight decay of the S-step (AdamW)."""
    sstep_steps: int = 1000
    """Gradient steps per S-step."""
    sstep_batch: int = 256
    """Minibatch size of the S-step."""
    sstep_history: int = 3
    """Iterations of (state, teacher action) pairs the S-step trains on (1: this one only)."""
    rest_anchor: bool = False
    """Anchor the global policy to command zero at rest on the goal (``GaussianPolicy``); the
    policy's features must declare their rest state (the base-frame and goal-free features
    of the reaching tasks do)."""
    policy_min_std: float = 0.1
    """Floor on the global policy's action standard deviation, normalised action units: it
    keeps the on-policy samples spread around the policy's path as the teachers sharpen."""

    def __post_init__(self) -> None:
        if self.samples_per_condition < 2:
            raise ValueError("samples_per_condition must be >= 2 to fit dynamics")
        if not self.base_kl_step > 0:
            raise ValueError(f"base_kl_step must be positive, got {self.base_kl_step}")
        if not 0 < self.min_step_mult <= self.max_step_mult:
            raise ValueError("need 0 < min_step_mult <= max_step_mult")
        positive = ("init_action_std", "prior_strength", "policy_lr", "policy_min_std")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in (
            "prior_trajectories",
            "prior_components",
            "prior_points_per_component",
            "sstep_steps",
            "sstep_batch",
            "sstep_history",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Condition:
    """One training condition: a task state (goal) the env is reset to."""

    task_state: np.ndarray


@dataclass
class Samples:
    """Trajectories of one condition: states X (N, T + 1, n), actions U (N, T, m), true
    returns (N,) and final successes (N,)."""

    X: np.ndarray
    U: np.ndarray
    returns: np.ndarray
    successes: np.ndarray


@dataclass
class ConditionState:
    """What GPS carries for one condition between iterations."""

    controller: LinearGaussianController
    step_mult: float = 1.0
    eta: float = 1.0
    # The previous iteration's models, for step-size adaptation.
    dynamics: LinearGaussianDynamics | None = None
    cost: QuadraticCost | None = None
    reference: LinearGaussianController | None = None
    predicted_cost: float = math.nan
    sample_cost: float = math.nan


@dataclass(frozen=True)
class IterationLog:
    """What one iteration did; ``events`` names the numerical troubles it handled."""

    iteration: int
    env_steps: int
    sample_cost: tuple[float, ...]
    sample_return: float
    sample_success: float
    kl: tuple[float, ...]
    kl_bound: tuple[float, ...]
    eta: tuple[float, ...]
    step_mult: tuple[float, ...]
    dynamics_condition: float
    dynamics_residual: float
    sstep_loss: float
    seconds: float
    events: tuple[str, ...] = field(default_factory=tuple)


def teacher_actions(controller: LinearGaussianController, X: np.ndarray) -> np.ndarray:
    """The actions a local controller's mean executes at states X (N, T, n): (N, T, m).

    The env clips every action to [-1, 1], while the linear controllers of the C-step are
    unbounded (their gains grow as the teachers sharpen, and on the reacher a third of their
    proposals lie outside the bounds, some beyond 10). The S-step regresses onto what the
    teacher would execute, the clipped action: regressing onto the raw proposals instead
    spends the squared error on unreachable values, makes the policy steep, and its steep
    linearisation becomes the next C-step's reference, a loop that made the reacher's sample
    cost rise and the held-out success collapse after a few iterations.
    """
    return np.clip(np.einsum("tij,ntj->nti", controller.K, X) + controller.k, -1.0, 1.0)


class GPS:
    """Mirror-descent guided policy search on a reaching env.

    Args:
        env: the env to sample (``RobotEnv``; its observation is the state of the local
            controllers).
        conditions: task states (goals) of the local controllers, one each.
        cost: the trajectory cost the local controllers minimise.
        config: hyperparameters.
        seed: seeds sampling, the dynamics prior and the policy.
        logger: receives the per-iteration metrics (optional).
        features: the global policy's observation features (None: the whole observation).
    """

    def __init__(
        self,
        env: RobotEnv,
        conditions: Sequence[np.ndarray],
        cost: ReachingCost,
        config: GPSConfig,
        seed: int = 0,
        logger: Logger | None = None,
        features: nn.Module | None = None,
    ) -> None:
        if not conditions:
            raise ValueError("GPS needs at least one condition (training goal)")
        if env.max_episode_steps is None:
            raise ValueError("GPS needs fixed-length episodes; the env has no time limit")
        self.env = env
        self.conditions = [Condition(np.asarray(c, dtype=np.float64)) for c in conditions]
        self.cost = cost
        self.config = config
        self.logger = logger
        self.rng = np.random.default_rng(seed)
        self.horizon = int(env.max_episode_steps)
        self.obs_size = int(env.observation_space.shape[0])
        self.act_size = int(env.action_space.shape[0])
        self.torch_generator = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        # Layer initialisation draws from torch's global generator: fork it so the caller's
        # stream is untouched and the weights depend only on ``seed``.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**31)))
            self.network = GaussianPolicy(
                self.obs_size,
                self.act_size,
                config.hidden,
                config.init_action_std,
                features,
                config.rest_anchor,
            )
        self.optimizer = torch.optim.AdamW(
            self.network.mean.parameters(),
            lr=config.policy_lr,
            weight_decay=config.policy_weight_decay,
        )
        self.policy = GPSPolicy(
            self.network, deterministic=False, seed=int(self.rng.integers(2**31))
        )
        self.prior = DynamicsPrior(
            config.prior_trajectories,
            config.prior_components,
            config.prior_points_per_component,
            np.random.default_rng(int(self.rng.integers(2**31))),
        )
        initial = LinearGaussianController.constant(
            self.horizon, self.obs_size, np.zeros(self.act_size), config.init_action_std**2
        )
        self.states = [ConditionState(initial) for _ in self.conditions]
        self.iteration_count = 0
        self.env_steps = 0
        self.history: list[IterationLog] = []
        self._sstep_data: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(
            maxlen=config.sstep_history
        )
        # The policy whose own samples had the lowest mean cost so far (training data only).
        self.best_sample_cost = math.inf
        self._best_state: dict[str, torch.Tensor] | None = None

    # -- sampling ---------------------------------------------------------------------------
    def _sample(self, condition: Condition, controller: LinearGaussianController | None) -> Samples:
        """N trajectories from ``controller`` (or the global policy when None)."""
        N, T = self.config.samples_per_condition, self.horizon
        X = np.empty((N, T + 1, self.obs_size))
        U = np.empty((N, T, self.act_size))
        returns, successes = np.zeros(N), np.zeros(N, dtype=bool)
        for i in range(N):
            obs, _ = self.env.reset(
                seed=int(self.rng.integers(2**31)), options={"task_state": condition.task_state}
            )
            X[i, 0] = obs
            for t in range(T):
                if controller is None:
                    u = self.policy.act(obs).astype(np.float64)
                else:
                    u = controller.sample_action(t, X[i, t], self.rng)
                u = np.clip(u, -1.0, 1.0)
                obs, reward, terminated, _, info = self.env.step(u)
                U[i, t], X[i, t + 1] = u, obs
                returns[i] += reward
                if terminated:
                    raise RuntimeError("GPS needs fixed-length episodes; the env terminated early")
            successes[i] = info["success"]
        self.env_steps += N * T
        return Samples(X, U, returns, successes)

    # -- the policy's local linearisation -----------------------------------------------------
    def _linearise_policy(self, X: np.ndarray) -> LinearGaussianController:
        """The global policy as a linear-Gaussian controller around sampled states X."""
        N, T1, n = X.shape
        T = T1 - 1
        states = X[:, :-1].reshape(N * T, n)
        jac, mean = self.network.linearise(states)
        jac = jac.reshape(N, T, self.act_size, n)
        mean = mean.reshape(N, T, self.act_size)
        K = jac.mean(0)
        k = (mean - np.einsum("ntij,ntj->nti", jac, X[:, :-1])).mean(0)
        cov = np.tile(self.network.covariance, (T, 1, 1))
        return LinearGaussianController(K, k, cov)

    # -- step size --------------------------------------------------------------------------
    def _adapt_step(
        self,
        state: ConditionState,
        dynamics: LinearGaussianDynamics,
        cost: QuadraticCost,
        reference: LinearGaussianController,
        sample_cost: float,
    ) -> float:
        """New step multiplier from predicted vs actual improvement; returns the ratio used."""
        assert state.dynamics is not None
        assert state.cost is not None
        assert state.reference is not None
        prev_laplace = float(state.cost.expected(forward(state.dynamics, state.reference)).sum())
        predicted = prev_laplace - state.predicted_cost
        if self.config.step_rule is StepRule.LAPLACE:
            actual = prev_laplace - float(cost.expected(forward(dynamics, reference)).sum())
        else:
            actual = state.sample_cost - sample_cost
        # Model the improvement as quadratic in the KL step and move to its optimum.
        ratio = predicted / (2.0 * max(1e-4, predicted - actual))
        if not math.isfinite(ratio):
            ratio = 0.1
        ratio = min(5.0, max(0.1, ratio))
        state.step_mult = min(
            self.config.max_step_mult, max(self.config.min_step_mult, state.step_mult * ratio)
        )
        return ratio

    def _shrink(self, state: ConditionState) -> None:
        state.step_mult = max(self.config.min_step_mult, 0.5 * state.step_mult)

    # -- one iteration ----------------------------------------------------------------------
    def iteration(self) -> IterationLog:
        """Run one GPS iteration; returns (and keeps in ``history``) its log.

        BLAS runs single-threaded meanwhile: the per-time-step fits and Riccati passes work
        on matrices of a few dozen rows, where a thread pool only adds synchronisation, and
        on a busy machine its spinning threads can slow a run more than tenfold.
        """
        with threadpool_limits(1, user_api="blas"):
            return self._iteration()

    def _iteration(self) -> IterationLog:
        start = time.perf_counter()
        cfg = self.config
        first = self.iteration_count == 0
        events: list[str] = []
        local = first or cfg.sampling is Sampling.LOCAL
        samples = [
            self._sample(cond, state.controller if local else None)
            for cond, state in zip(self.conditions, self.states, strict=True)
        ]
        self.prior.update(
            np.concatenate([s.X for s in samples]), np.concatenate([s.U for s in samples])
        )
        dim = 2 * self.obs_size + self.act_size
        conds, residuals = [], []
        fits = []
        for m, s in enumerate(samples):
            dyn, report = fit_dynamics(s.X, s.U, self.prior, cfg.prior_strength * dim)
            conds.append(report.condition)
            residuals.append(report.residual)
            if report.condition > cfg.max_condition:
                events.append(
                    f"condition {m}: ill-conditioned dynamics fit (cond {report.condition:.2e}); step halved"
                )
                self._shrink(self.states[m])
            fits.append((dyn, self.cost.quadratize(s.X, s.U)))
        sample_costs = [float(self.cost.evaluate(s.X, s.U).sum(1).mean()) for s in samples]
        mean_cost = float(np.mean(sample_costs))
        if not local and mean_cost < self.best_sample_cost:
            # These samples came from the current policy: remember it before the S-step moves it.
            self.best_sample_cost = mean_cost
            self._best_state = copy.deepcopy(self.network.state_dict())

        if first:
            # Let the policy catch up with the initial controllers before linearising it.
            self._s_step(samples, [st.controller for st in self.states])

        kls, bounds, etas = [], [], []
        new_controllers = []
        for m, (s, (dyn, qcost), state) in enumerate(zip(samples, fits, self.states, strict=True)):
            reference = self._linearise_policy(s.X)
            if not first:
                if not math.isfinite(sample_costs[m]):
                    events.append(f"condition {m}: non-finite sample cost; step halved")
                    self._shrink(state)
                else:
                    ratio = self._adapt_step(state, dyn, qcost, reference, sample_costs[m])
                    if sample_costs[m] > COST_RISE_REPORTED * state.sample_cost:
                        events.append(
                            f"condition {m}: cost rose {state.sample_cost:.3g} -> "
                            f"{sample_costs[m]:.3g}; step x{ratio:.2g}"
                        )
            bound = cfg.base_kl_step * state.step_mult * self.horizon
            result = c_step(dyn, qcost, reference, bound, eta=state.eta)
            if result.status is not CStepStatus.CONVERGED:
                events.append(
                    f"condition {m}: KL bound {bound:.3g} not met (KL {result.kl:.3g}, "
                    f"eta {result.eta:.3g}); step halved"
                )
                self._shrink(state)
            if result.eta_increases:
                events.append(
                    f"condition {m}: Q_uu indefinite, eta raised {result.eta_increases} times"
                )
            state.controller = result.controller
            state.eta = result.eta
            state.dynamics, state.cost, state.reference = dyn, qcost, reference
            state.predicted_cost = result.predicted_cost
            state.sample_cost = sample_costs[m]
            new_controllers.append(result.controller)
            kls.append(result.kl)
            bounds.append(bound)
            etas.append(result.eta)

        sstep_loss = self._s_step(samples, new_controllers)
        self.iteration_count += 1
        for event in events:
            log.warning("GPS iteration %d: %s", self.iteration_count, event)
        entry = IterationLog(
            iteration=self.iteration_count,
            env_steps=self.env_steps,
            sample_cost=tuple(sample_costs),
            sample_return=float(np.mean([s.returns.mean() for s in samples])),
            sample_success=float(np.mean([s.successes.mean() for s in samples])),
            kl=tuple(kls),
            kl_bound=tuple(bounds),
            eta=tuple(etas),
            step_mult=tuple(st.step_mult for st in self.states),
            dynamics_condition=float(max(conds)),
            dynamics_residual=float(np.mean(residuals)),
            sstep_loss=sstep_loss,
            seconds=time.perf_counter() - start,
            events=tuple(events),
        )
        self.history.append(entry)
        if self.logger is not None:
            self._record(entry)
        return entry

    def _s_step(
        self, samples: Sequence[Samples], controllers: Sequence[LinearGaussianController]
    ) -> float:
        obs, targets, precisions = [], [], []
        for s, ctrl in zip(samples, controllers, strict=True):
            x = s.X[:, :-1]  # (N, T, n)
            obs.append(x.reshape(-1, self.obs_size))
            targets.append(teacher_actions(ctrl, x).reshape(-1, self.act_size))
            precisions.append(
                np.broadcast_to(ctrl.precision, (x.shape[0], *ctrl.precision.shape)).reshape(
                    -1, self.act_size, self.act_size
                )
            )
        self._sstep_data.append(
            (np.concatenate(obs), np.concatenate(targets), np.concatenate(precisions))
        )
        data = [np.concatenate(parts) for parts in zip(*self._sstep_data, strict=True)]
        report = s_step(
            self.network,
            self.optimizer,
            *data,
            steps=self.config.sstep_steps,
            batch_size=self.config.sstep_batch,
            generator=self.torch_generator,
            min_std=self.config.policy_min_std,
        )
        return report.loss_after

    def _record(self, entry: IterationLog) -> None:
        assert self.logger is not None
        self.logger.record_many(
            {
                "gps/iteration": entry.iteration,
                "rollout/cost": float(np.mean(entry.sample_cost)),
                "rollout/return": entry.sample_return,
                "rollout/success_rate": entry.sample_success,
                "gps/kl": float(np.mean(entry.kl)),
                "gps/kl_bound": float(np.mean(entry.kl_bound)),
                "gps/eta": float(np.exp(np.mean(np.log(entry.eta)))),
                "gps/step_mult": float(np.mean(entry.step_mult)),
                "gps/events": len(entry.events),
                "dynamics/condition": entry.dynamics_condition,
                "dynamics/residual": entry.dynamics_residual,
                "train/sstep_loss": entry.sstep_loss,
                "time/iteration_s": entry.seconds,
            }
        )
        self.logger.dump(entry.env_steps)

    def train(self, iterations: int) -> list[IterationLog]:
        """Run ``iterations`` GPS iterations."""
        return [self.iteration() for _ in range(iterations)]

    def deterministic_policy(self) -> GPSPolicy:
        """The current global policy acting with its mean."""
        return GPSPolicy(self.network, deterministic=True)

    def best_policy(self) -> GPSPolicy:
        """The global policy whose on-policy samples had the lowest mean cost, acting with its
        mean (a copy; the current policy when none was sampled yet, e.g. off-policy GPS).

        Mirror-descent GPS does not improve monotonically: once the teachers sharpen, an
        S-step can make the policy worse, and its next samples show it. Selecting on the
        training samples' cost uses no evaluation data.
        """
        network = copy.deepcopy(self.network)
        if self._best_state is not None:
            network.load_state_dict(self._best_state)
        return GPSPolicy(network, deterministic=True)
