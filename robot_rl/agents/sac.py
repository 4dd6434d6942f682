"""Soft Actor-Critic, and the template training loop the SAC family shares.

``SAC`` is the learner: a squashed-Gaussian actor, an ensemble of Q-functions evaluated as
one batched network (twin critics by default), Polyak-averaged targets, and an automatic
entropy temperature tuned towards a target entropy. ``update(batch)`` runs one gradient
step of each; the loss terms are methods (``critic_loss``, ``actor_loss``) so the variants
(safe SAC adds a cost critic and a Lagrange multiplier) override only those.

``Trainer`` is the loop: collect a step from every (vectorised) env → take the gradient
steps owed by the update-to-data ratio → evaluate → log → checkpoint. It checks every
observation, reward and cost for NaN/inf (and stops naming the step, leaving the last good
checkpoint in place), counts resets, terminations and constraint violations, and saves and
resumes the whole run: networks, optimisers, temperature, replay buffer, RNG states and the
envs' own states, so a resumed run takes the same actions as the uninterrupted one.

Speed: the twin critics are one ``baddbmm`` per layer, the critics' weight gradients are
skipped in the actor step, Polyak averaging is one fused ``lerp`` over all target tensors,
the optimisers are fused Adam, acting runs under ``inference_mode``, and the replay buffer
samples a batch with one gather. ``configure_torch`` sets the thread count and, optionally,
bfloat16 matrix products (float32 storage and accumulation, as on TPUs), which is 3-5x
faster on CPUs with AMX or AVX512-BF16.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_rl.agents.buffers import ReplayBuffer
from robot_rl.agents.envs import (
    env_state_tensors,
    restore_env_state,
    supports_state,
    time_limit,
)
from robot_rl.agents.networks import ActorPolicy, EnsembleCritic, SquashedGaussianActor
from robot_rl.checkpoint import (
    CheckpointError,
    load_checkpoint,
    pack_state,
    require_metadata,
    save_checkpoint,
    sub_tensors,
    unpack_state,
)
from robot_rl.evaluation import Evaluation, evaluate
from robot_rl.logger import Logger, progress
from robot_rl.types import Batch

if TYPE_CHECKING:
    from robot_rl.agents.compiled import CompiledSAC


class Precision(enum.Enum):
    """Arithmetic of the matrix products in training."""

    FP32 = "fp32"
    """float32 throughout."""
    BF16 = "bf16"
    """bfloat16 inputs to matrix products, float32 accumulation and storage."""


def configure_torch(threads: int, precision: Precision = Precision.FP32) -> None:
    """Process-wide torch settings for a training run; call from entry points, not libraries.

    Args:
        threads: intra-op threads. One is usually fastest per CPU-second for SAC-sized nets.
        precision: arithmetic of float32 matrix products.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision("highest" if precision is Precision.FP32 else "medium")


@dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of the SAC learner (defaults: Stable-Baselines3's SAC)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of every critic."""
    critics: int = 2
    """Q-functions in the critic ensemble; targets and the actor use their minimum."""
    batch_size: int = 256
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics: target <- (1 - tau) target + tau online."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    temperature_lr: float = 3e-4
    """Adam learning rate of log α."""
    init_temperature: float = 1.0
    """Initial entropy temperature α."""
    target_entropy: float | None = None
    """Entropy the temperature tunes towards, nats; None: -act_dim."""

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be positive widths, got {self.hidden}")
        if self.critics < 1 or self.batch_size < 1:
            raise ValueError("critics and batch_size must be >= 1")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if min(self.actor_lr, self.critic_lr, self.temperature_lr, self.init_temperature) <= 0:
            raise ValueError("learning rates and init_temperature must be > 0")


class SAC:
    """The SAC learner: networks, losses and one gradient step.

    Subclasses add critics through ``build_critics`` and loss terms by overriding
    ``critic_loss`` / ``actor_loss``; they extend ``state_dict`` / ``load_state_dict``
    with whatever state they add.

    Args:
        obs_dim: observation length.
        act_dim: action length (actions in [-1, 1]).
        config: hyperparameters.
        seed: seeds the network initialisation and the policy noise.
    """

    algorithm: ClassVar[str] = "sac"

    def __init__(self, obs_dim: int, act_dim: int, config: SACConfig, seed: int = 0) -> None:
        self.obs_dim, self.act_dim, self.config = int(obs_dim), int(act_dim), config
        init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2)
        with torch.random.fork_rng(devices=()):
            torch.manual_seed(int(init_seed))
            self.actor = SquashedGaussianActor(obs_dim, act_dim, config.hidden)
            self.critics = nn.ModuleDict(self.build_critics())
        self.targets = copy.deepcopy(self.critics).requires_grad_(False)
        self.generator = torch.Generator().manual_seed(int(noise_seed))
        self.log_temperature = torch.tensor(math.log(config.init_temperature), requires_grad=True)
        self.target_entropy = (
            -float(act_dim) if config.target_entropy is None else config.target_entropy
        )
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=config.actor_lr, fused=True
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critics.parameters(), lr=config.critic_lr, fused=True
        )
        self.temperature_optimizer = torch.optim.Adam(
            [self.log_temperature], lr=config.temperature_lr, fused=True
        )
        self._critic_params = list(self.critics.parameters())
        self._target_params = list(self.targets.parameters())
        self._compiled: CompiledSAC | None = None
        self.updates = 0

    # -- networks ----------------------------------------------------------------------------
    def build_critics(self) -> dict[str, nn.Module]:
        """The critic ensembles, by name; all are trained by the critic optimiser."""
        c = self.config
        return {"reward": EnsembleCritic(self.obs_dim, self.act_dim, c.hidden, c.critics)}

    @property
    def temperature(self) -> torch.Tensor:
        """α, detached."""
        return self.log_temperature.detach().exp()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser, by name (for checkpoints)."""
        return {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
            "temperature": self.temperature_optimizer,
        }

    # -- acting ------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions for a batch of observations: (N, obs_dim) -> (N, act_dim) in [-1, 1]."""
        x = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        if deterministic:
            return self.actor(x).numpy()
        return self.actor.sample(x, self.generator)[0].numpy()

    def policy(self) -> ActorPolicy:
        """The deterministic policy, as a ``Policy`` (one observation at a time)."""
        return ActorPolicy(self.actor)

    # -- learning ----------------------------------------------------------------------------
    def critic_loss(
        self,
        batch: Batch,
        next_action: torch.Tensor,
        next_log_prob: torch.Tensor,
        alpha: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Soft Bellman error of the reward critics.

        Args:
            next_action: (B, act_dim) a' ~ π(s'), without gradient.
            next_log_prob: (B,) log π(a'|s').

        Returns:
            Named loss terms, summed into the critic loss.
        """
        with torch.no_grad():
            next_q = self.targets["reward"](batch.next_obs, next_action).amin(0)
            soft_next = next_q - alpha * next_log_prob
            target = batch.reward + self.config.gamma * (1.0 - batch.terminated) * soft_next
        q = self.critics["reward"](batch.obs, batch.action)
        return {"critic": 0.5 * (q - target).square().mean(-1).sum()}

    def actor_loss(
        self, batch: Batch, action: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """E[α log π(a|s) - min_e Q_e(s, a)] for a ~ π(s); critics are frozen here.

        Args:
            action: (B, act_dim) reparameterised actions at ``batch.obs``.
            log_prob: (B,) their log-probabilities.
        """
        q = self.critics["reward"](batch.obs, action).amin(0)
        return {"actor": (alpha * log_prob - q).mean()}

    def compile(self) -> SAC:
        """Run every later ``update`` and ``update_and_act`` as a compiled graph
        (``robot_rl.agents.compiled``).

        The same steps to float rounding, several times faster updates at small networks on a
        CPU; needs a C++ compiler, and the first call compiles. Returns the learner.
        """
        from robot_rl.agents.compiled import CompiledSAC

        self._compiled = CompiledSAC(self)
        return self

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step of the critics, the actor and the temperature, then Polyak.

        Returns:
            Detached scalars: ``train/<term>_loss`` for every loss term (``critic``,
            ``actor`` and the variants' own), ``train/temperature``, ``train/entropy``.
        """
        if self._compiled is not None:
            metrics = self._compiled.update(batch)
            self.updates += 1
            return metrics
        alpha = self.log_temperature.detach().exp()
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs, self.generator)
        critic_terms = self.critic_loss(batch, next_action, next_log_prob, alpha)
        critic_loss = sum_terms(critic_terms)
        _step(self.critic_optimizer, critic_loss)

        with self._frozen_critics():
            action, log_prob = self.actor.sample(batch.obs, self.generator)
            actor_terms = self.actor_loss(batch, action, log_prob, alpha)
            actor_loss = sum_terms(actor_terms)
            _step(self.actor_optimizer, actor_loss)

        log_prob = log_prob.detach()
        temperature_loss = -self.log_temperature * (log_prob.mean() + self.target_entropy)
        _step(self.temperature_optimizer, temperature_loss)

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)
        self.updates += 1
        return update_metrics(critic_terms | actor_terms, alpha, log_prob)

    def update_and_act(
        self, buffer: ReplayBuffer, obs: np.ndarray
    ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """A gradient step on a batch from ``buffer``, then the updated policy's sampled actions
        for ``obs``: the training loop's step, one compiled call once ``compile`` has run.

        ``update(buffer.sample(batch_size))`` then ``act(obs)``, drawing the same random numbers.

        Args:
            buffer: the replay buffer the batch (``config.batch_size``) is drawn from.
            obs: (N, obs_dim) the observations the next env step acts on.

        Returns:
            ``update``'s metrics, and actions (N, act_dim) in [-1, 1].
        """
        if self._compiled is None:
            return self.update(buffer.sample(self.config.batch_size)), self.act(obs)
        x = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        metrics, actions = self._compiled.update_and_act(buffer, x)
        self.updates += 1
        return metrics, actions.numpy()

    @contextmanager
    def _frozen_critics(self) -> Iterator[None]:
        """Skip the critics' weight gradients (only the actor's are needed)."""
        for p in self._critic_params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in self._critic_params:
                p.requires_grad_(True)

    def on_episodes(
        self,
        returns: Sequence[float],
        costs: Sequence[float],
        shares: Sequence[float] | None = None,
    ) -> None:
        """Called by the trainer with the episodes that just ended (hook for the variants).

        Args:
            returns: each episode's return.
            costs: each episode's cost, as the trainer charges it.
            shares: each episode's length as a fraction of the env's time limit (None: 1 each),
                so that a learner can adapt per env step of experience, not per episode.
        """

    def metrics(self) -> dict[str, float]:
        """The learner's own state for the logger (the variants add theirs)."""
        return {}

    def parameters_finite(self) -> bool:
        """Whether every network parameter and the temperature are finite."""
        tensors = [*self.actor.parameters(), *self._critic_params, self.log_temperature]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    # -- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON metadata) of the whole learner: networks, optimisers, RNG."""
        tensors: dict[str, torch.Tensor] = {}
        for name, module in (
            ("actor", self.actor),
            ("critics", self.critics),
            ("targets", self.targets),
        ):
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        tensors["log_temperature"] = self.log_temperature.detach()
        tensors["generator"] = self.generator.get_state()
        optimizers = {}
        for name, optimizer in self.optimizers().items():
            optimizers[name], optim_tensors = pack_state(optimizer.state_dict(), f"optim.{name}")
            tensors.update(optim_tensors)
        metadata = {
            "algorithm": self.algorithm,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "config": _jsonable(dataclasses.asdict(self.config)),
            "optimizers": optimizers,
            "updates": self.updates,
        }
        return tensors, metadata

    def load_state_dict(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Restore a ``state_dict``.

        Raises:
            CheckpointError: it belongs to another algorithm, shape or config, or is incomplete.
        """
        expected = {
            "algorithm": self.algorithm,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "config": _jsonable(dataclasses.asdict(self.config)),
        }
        require_metadata(metadata, expected, "agent state")
        try:
            for name, module in (
                ("actor", self.actor),
                ("critics", self.critics),
                ("targets", self.targets),
            ):
                prefix = f"{name}."
                module.load_state_dict(
                    {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                )
            with torch.no_grad():
                self.log_temperature.copy_(tensors["log_temperature"])
            self.generator.set_state(tensors["generator"])
            for name, optimizer in self.optimizers().items():
                optimizer.load_state_dict(unpack_state(metadata["optimizers"][name], tensors))
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"agent state does not fit this agent: {err}") from err
        self.updates = int(metadata["updates"])


def update_metrics(
    terms: dict[str, torch.Tensor], alpha: torch.Tensor, log_prob: torch.Tensor
) -> dict[str, torch.Tensor]:
    """What an update reports: ``train/<term>_loss`` for every loss term, the temperature α
    it used and the policy's entropy estimate -mean log π over the batch ((B,) log_prob)."""
    metrics = {f"train/{k}_loss": v.detach() for k, v in terms.items()}
    metrics["train/temperature"] = alpha
    metrics["train/entropy"] = -log_prob.detach().mean()
    return metrics


def sum_terms(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The sum of named loss terms."""
    values = iter(terms.values())
    total = next(values)
    for value in values:
        total = total + value
    return total


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _jsonable(value: Any) -> Any:
    """Tuples and enums as JSON would store them, so a config compares equal after a load."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


# -- the training loop ---------------------------------------------------------------------------
class NonFiniteError(RuntimeError):
    """An env returned NaN/inf, or the learner diverged; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training loop (defaults: Stable-Baselines3's SAC)."""

    total_steps: int = 100_000
    """Env steps to train for, summed over the vectorised envs."""
    num_envs: int = 1
    """Envs stepped together (one batched forward of the actor per step)."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity, transitions."""
    learning_starts: int = 100
    """Env steps of uniformly random actions before the first update."""
    updates_per_step: float = 1.0
    """Update-to-data ratio: gradient steps per env step (fractions accumulate)."""
    safety_termination: bool = False
    """End an episode, as terminal, at its first step with a positive safety cost (a safety
    stop). Its episode cost is charged for the steps left, as for any episode that ends on
    an unsafe step (see ``Trainer``)."""
    eval_every: int = 5_000
    """Evaluate the deterministic policy every this many env steps (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation (seeds eval_seed, eval_seed + 1, ...)."""
    eval_seed: int = 1_000_000
    """First reset seed of the evaluation episodes (the same episodes every evaluation)."""
    log_every: int = 1_000
    """Write metrics every this many env steps."""
    checkpoint_every: int = 0
    """Write the checkpoint every this many env steps (0: only at the end)."""
    seed: int = 0
    """Seeds the learner, the buffer, the random actions and every env reset."""

    def __post_init__(self) -> None:
        if self.total_steps < 1 or self.num_envs < 1 or self.buffer_size < 1:
            raise ValueError("total_steps, num_envs and buffer_size must be >= 1")
        if self.updates_per_step < 0 or not math.isfinite(self.updates_per_step):
            raise ValueError(f"updates_per_step must be >= 0, got {self.updates_per_step}")
        for name in ("learning_starts", "eval_every", "log_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.eval_episodes < 1 or self.log_every < 1:
            raise ValueError("eval_episodes and log_every must be >= 1")


@dataclass
class Counters:
    """What happened in training so far (all checkpointed).

    Attributes:
        env_steps: env steps taken, summed over envs.
        episodes: episodes finished.
        resets: calls of the envs' episodic ``reset`` (each a hard reset on a real robot).
        terminations: episodes that ended in a terminal state (falls).
        violations: training steps with a positive safety cost.
        update_debt: gradient steps owed by the update-to-data ratio (fractional).
    """

    env_steps: int = 0
    episodes: int = 0
    resets: int = 0
    terminations: int = 0
    violations: int = 0
    update_debt: float = 0.0


class Trainer:
    """The SAC family's training loop: collect → update → evaluate → log → checkpoint.

    An episode that terminates on an unsafe step (the env's own termination, such as a fall,
    or a safety stop) leaves the robot in an unsafe state: its episode cost, which the
    constrained learners' multiplier follows, is charged that step's cost once more for every
    step left to the env's time limit (envs without one are not charged). Otherwise ending an
    episode by falling costs less than walking on, and a Lagrangian learner learns to fall at
    once. Violations count the unsafe steps that actually happened.

    Subclasses (reset-free SAC) override ``collect`` / ``update_agents`` and extend
    ``state_dict`` / ``load_state_dict``.

    Args:
        agent: the learner.
        envs: training envs (their number must be ``config.num_envs``), actions in [-1, 1].
        config: loop settings.
        env_id: the env's id, stored in checkpoints so a mismatched resume is refused.
        eval_env: env for evaluations (needed when ``config.eval_every`` > 0).
        logger: metric sink (None: metrics are kept in ``history`` only).
        checkpoint_path: where the checkpoint goes (None: none is written).
    """

    def __init__(
        self,
        agent: SAC,
        envs: Sequence[gym.Env],
        config: TrainConfig,
        env_id: str,
        eval_env: gym.Env | None = None,
        logger: Logger | None = None,
        checkpoint_path: str | Path | None = None,
    ) -> None:
        if len(envs) != config.num_envs:
            raise ValueError(f"config.num_envs={config.num_envs} but {len(envs)} envs were given")
        if config.eval_every and eval_env is None:
            raise ValueError("config.eval_every > 0 needs an eval_env (or set eval_every=0)")
        obs_shape, act_shape = (agent.obs_dim,), (agent.act_dim,)
        for env in envs:
            if env.observation_space.shape != obs_shape or env.action_space.shape != act_shape:
                raise ValueError(
                    f"env spaces {env.observation_space.shape}/{env.action_space.shape} do not "
                    f"match the agent's {obs_shape}/{act_shape}"
                )
        self.agent, self.envs, self.config, self.env_id = agent, list(envs), config, env_id
        self.eval_env = eval_env
        self.logger = logger or Logger()
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        buffer_seed, rng_seed = np.random.SeedSequence([config.seed, 1]).generate_state(2)
        self.buffer = ReplayBuffer(
            config.buffer_size, agent.obs_dim, agent.act_dim, int(buffer_seed)
        )
        self.rng = np.random.default_rng(int(rng_seed))
        self.counters = Counters()
        self.history: list[tuple[int, dict[str, float]]] = []
        self.evaluations: list[tuple[int, Evaluation]] = []
        n = config.num_envs
        self._episode_return = np.zeros(n)
        self._episode_cost = np.zeros(n)
        self._episode_length = np.zeros(n, dtype=np.int64)
        self._episode_seeds = np.zeros(n, dtype=np.int64)
        self._time_limits = [time_limit(env) for env in self.envs]
        self._recent: deque[tuple[float, float, int]] = deque(maxlen=20)
        self._metrics: dict[str, torch.Tensor] = {}
        # the policy's actions for the next collect, sampled by the last update's call
        self._next_actions: np.ndarray | None = None
        self._obs = np.stack([self._reset(i) for i in range(n)]).astype(np.float32)
        self._clock = (time.perf_counter(), time.process_time(), 0)

    @property
    def algorithm(self) -> str:
        """The name checkpoints are stored under."""
        return self.agent.algorithm

    def compile(self) -> Trainer:
        """Compile the learner's gradient step (``SAC.compile``); returns the trainer."""
        self.agent.compile()
        return self

    # -- the loop ----------------------------------------------------------------------------
    def train(self, desc: str | None = None) -> Trainer:
        """Run until ``config.total_steps`` env steps (continuing a resumed run)."""
        c, n = self.config, self.config.num_envs
        start = self.counters.env_steps
        bar = progress(
            range(start, c.total_steps, n),
            total=-(-(c.total_steps - start) // n),
            desc=desc or f"{self.algorithm} {self.env_id}",
        )
        for _ in bar:
            before = self.counters.env_steps
            self.collect()
            self.update_agents()
            now = self.counters.env_steps
            if c.eval_every and now // c.eval_every > before // c.eval_every:
                self.evaluate()
            if now // c.log_every > before // c.log_every or now >= c.total_steps:
                self.log()
            if c.checkpoint_every and now // c.checkpoint_every > before // c.checkpoint_every:
                self.save()
        if c.eval_every and not self.evaluations:
            self.evaluate()
            self.log()
        self.save()
        return self

    def collect(self) -> None:
        """One step of every env; stores the transitions and handles episode ends."""
        c, n = self.config, self.config.num_envs
        if self._next_actions is not None:
            actions, self._next_actions = self._next_actions, None
        elif self.counters.env_steps < c.learning_starts:
            actions = self.rng.uniform(-1.0, 1.0, (n, self.agent.act_dim)).astype(np.float32)
        else:
            actions = self.agent.act(self._obs)
        obs_before, next_obs = self._obs.copy(), np.empty_like(self._obs)
        rewards, costs, terminal = np.empty(n), np.empty(n), np.empty(n)
        finished_returns, finished_costs, finished_shares = [], [], []
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            cost = float(info.get("cost", 0.0))
            self._check_finite(i, obs, reward, cost)
            if c.safety_termination and cost > 0.0:
                terminated = True
            next_obs[i], rewards[i], costs[i], terminal[i] = obs, reward, cost, terminated
            self._episode_return[i] += reward
            self._episode_cost[i] += cost
            self._episode_length[i] += 1
            if terminated and cost > 0.0 and self._time_limits[i] is not None:
                self._episode_cost[i] += cost * (self._time_limits[i] - self._episode_length[i])
            self.counters.violations += cost > 0.0
            if terminated or truncated:
                self.counters.episodes += 1
                self.counters.terminations += bool(terminated)
                ret, ep_cost = float(self._episode_return[i]), float(self._episode_cost[i])
                self._recent.append((ret, ep_cost, int(self._episode_length[i])))
                finished_returns.append(ret)
                finished_costs.append(ep_cost)
                limit = self._time_limits[i]
                finished_shares.append(1.0 if limit is None else self._episode_length[i] / limit)
                self._episode_return[i] = self._episode_cost[i] = self._episode_length[i] = 0
                self._obs[i] = self._reset(i)
            else:
                self._obs[i] = obs
        self.buffer.add(obs_before, actions, rewards, next_obs, terminal, costs)
        self.counters.env_steps += n
        if finished_returns:
            self.agent.on_episodes(finished_returns, finished_costs, finished_shares)

    def update_agents(self) -> None:
        """Take the gradient steps owed by the update-to-data ratio; the last one also samples
        the actions of the next collect (``SAC.update_and_act``)."""
        c = self.config
        new_steps = self.counters.env_steps - max(
            self.counters.env_steps - c.num_envs, c.learning_starts
        )
        if new_steps <= 0 or len(self.buffer) == 0:
            return
        self.counters.update_debt += new_steps * c.updates_per_step
        while self.counters.update_debt >= 1.0:
            self.counters.update_debt -= 1.0
            if self.counters.update_debt >= 1.0:
                self._metrics = self.agent.update(self.buffer.sample(self.agent.config.batch_size))
            else:
                self._metrics, self._next_actions = self.agent.update_and_act(
                    self.buffer, self._obs
                )

    def evaluate(self) -> Evaluation:
        """Evaluate the deterministic policy on ``eval_env`` and record ``eval/*``."""
        if self.eval_env is None:
            raise RuntimeError("no eval_env was given")
        result = evaluate(
            self.eval_env,
            self.agent.policy(),
            self.config.eval_episodes,
            seed=self.config.eval_seed,
        )
        self.evaluations.append((self.counters.env_steps, result))
        self.logger.record_many(
            {
                "eval/return": result.mean_return,
                "eval/cost": result.mean_cost,
                "eval/success": result.success_rate,
                "eval/length": float(np.mean(result.lengths)),
            }
        )
        return result

    def log(self) -> dict[str, float]:
        """Write the metrics of the last interval."""
        k = self.counters
        wall, cpu, steps = self._clock
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        values = {name: float(v) for name, v in self._metrics.items()}
        if self._recent:
            recent = np.array(self._recent)
            values.update(
                {
                    "rollout/return": recent[:, 0].mean(),
                    "rollout/cost": recent[:, 1].mean(),
                    "rollout/length": recent[:, 2].mean(),
                }
            )
        values.update(
            {
                "rollout/episodes": k.episodes,
                "rollout/resets": k.resets,
                "rollout/terminations": k.terminations,
                "safety/violations": k.violations,
                "time/env_steps": k.env_steps,
                "time/updates": self.agent.updates,
                "time/fps": (k.env_steps - steps) / max(now_wall - wall, 1e-9),
                "time/cpu_fps": (k.env_steps - steps) / max(now_cpu - cpu, 1e-9),
            }
        )
        values.update(self.agent.metrics())
        values.update(self.extra_metrics())
        self._clock = (now_wall, now_cpu, k.env_steps)
        self.logger.record_many(values)
        written = self.logger.dump(k.env_steps)
        self.history.append((k.env_steps, written))
        return written

    def extra_metrics(self) -> dict[str, float]:
        """Metrics the variants add to every log."""
        return {}

    # -- helpers -----------------------------------------------------------------------------
    def _reset(self, i: int) -> np.ndarray:
        """Reset env ``i`` with a seed from the trainer's generator (counted)."""
        self._episode_seeds[i] = self.rng.integers(2**31)
        obs, _ = self.envs[i].reset(seed=int(self._episode_seeds[i]))
        self.counters.resets += 1
        self._check_finite(i, obs, 0.0, 0.0, at_reset=True)
        return obs

    def _check_finite(
        self, i: int, obs: np.ndarray, reward: float, cost: float, at_reset: bool = False
    ) -> None:
        bad = []
        if not np.isfinite(obs).all():
            bad.append(f"observation {np.asarray(obs).tolist()}")
        if not math.isfinite(reward):
            bad.append(f"reward {reward}")
        if not math.isfinite(cost):
            bad.append(f"cost {cost}")
        if bad:
            where = (
                "at reset before"
                if at_reset
                else f"at episode step {int(self._episode_length[i]) + 1} of"
            )
            raise NonFiniteError(
                f"env {i} returned a non-finite {' and '.join(bad)} {where} env step "
                f"{self.counters.env_steps + i} (env {self.env_id}); training stopped. "
                + self._checkpoint_note()
            )

    def _checkpoint_note(self) -> str:
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            return f"The last good checkpoint {self.checkpoint_path} is kept."
        return "No checkpoint had been written yet."

    # -- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON metadata) of the whole run: agent, buffer, RNG, counters, envs."""
        tensors, agent_meta = self.agent.state_dict()
        tensors = {f"agent.{k}": v for k, v in tensors.items()}
        buffer_tensors, buffer_meta = self.buffer.state_dict()
        tensors.update({f"buffer.{k}": v for k, v in buffer_tensors.items()})
        tensors["obs"] = torch.from_numpy(self._obs.copy())
        tensors["episode_return"] = torch.from_numpy(self._episode_return.copy())
        tensors["episode_cost"] = torch.from_numpy(self._episode_cost.copy())
        tensors["episode_length"] = torch.from_numpy(self._episode_length.copy())
        tensors["episode_seeds"] = torch.from_numpy(self._episode_seeds.copy())
        if self._next_actions is not None:
            tensors["next_actions"] = torch.from_numpy(self._next_actions.copy())
        env_states = []
        for i, env in enumerate(self.envs):
            if supports_state(env):
                packed, env_tensors = env_state_tensors(env, f"env.{i}")
                tensors.update(env_tensors)
                env_states.append(packed)
            else:
                env_states.append(None)
        metadata = {
            "algorithm": self.algorithm,
            "env_id": self.env_id,
            "obs_dim": self.agent.obs_dim,
            "act_dim": self.agent.act_dim,
            "num_envs": self.config.num_envs,
            "agent": agent_meta,
            "buffer": buffer_meta,
            "counters": dataclasses.asdict(self.counters),
            "rng": self.rng.bit_generator.state,
            "recent": list(self._recent),
            "env_states": env_states,
        }
        return tensors, metadata

    def load_state_dict(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Restore a run saved by ``state_dict`` into this (identically built) trainer."""
        expected = {
            "algorithm": self.algorithm,
            "env_id": self.env_id,
            "obs_dim": self.agent.obs_dim,
            "act_dim": self.agent.act_dim,
            "num_envs": self.config.num_envs,
        }
        require_metadata(metadata, expected, self.checkpoint_path or "checkpoint")
        try:
            self.agent.load_state_dict(sub_tensors(tensors, "agent."), metadata["agent"])
            self.buffer.load_state_dict(sub_tensors(tensors, "buffer."), metadata["buffer"])
            self.counters = Counters(**metadata["counters"])
            self.rng.bit_generator.state = metadata["rng"]
            self._recent = deque((tuple(r) for r in metadata["recent"]), maxlen=self._recent.maxlen)
            self._obs = tensors["obs"].numpy().copy()
            self._episode_return = tensors["episode_return"].numpy().copy()
            self._episode_cost = tensors["episode_cost"].numpy().copy()
            self._episode_length = tensors["episode_length"].numpy().copy()
            self._episode_seeds = tensors["episode_seeds"].numpy().copy()
            next_actions = tensors.get("next_actions")
            self._next_actions = None if next_actions is None else next_actions.numpy().copy()
            for i, (env, packed) in enumerate(zip(self.envs, metadata["env_states"], strict=True)):
                if packed is not None and supports_state(env):
                    restore_env_state(env, packed, tensors)
                elif self._episode_length[i] == 0:  # at an episode start: the same reset again
                    self._obs[i] = env.reset(seed=int(self._episode_seeds[i]))[0]
                else:  # mid-episode in an env without get_state: the episode restarts
                    gym.logger.warn(
                        f"env {i} cannot restore its state; its episode restarts on resume"
                    )
                    self._obs[i] = self._reset(i)
                    self._episode_return[i] = self._episode_cost[i] = self._episode_length[i] = 0
                    self._next_actions = None  # they were sampled for the lost observation
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint does not fit this run: {err!r}") from err
        self._clock = (time.perf_counter(), time.process_time(), self.counters.env_steps)

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the checkpoint (to ``checkpoint_path`` unless ``path`` is given).

        Raises:
            NonFiniteError: the learner's parameters are not finite (nothing is written).
        """
        path = self.checkpoint_path if path is None else Path(path)
        if path is None:
            return None
        if not self.agent.parameters_finite():
            raise NonFiniteError(
                f"the learner's parameters became non-finite by env step "
                f"{self.counters.env_steps}; not overwriting the checkpoint. "
                + self._checkpoint_note()
            )
        tensors, metadata = self.state_dict()
        return save_checkpoint(path, tensors, metadata)

    def load(self, path: str | Path) -> Trainer:
        """Resume from a checkpoint written by ``save``.

        Raises:
            CheckpointError: missing, corrupt, or from another algorithm, env or shape.
        """
        tensors, metadata = load_checkpoint(path)
        try:
            self.load_state_dict(tensors, metadata)
        except CheckpointError as err:
            raise CheckpointError(f"cannot resume from {path}: {err}") from err
        return self


def load_actor(path: str | Path) -> SquashedGaussianActor:
    """The trained actor of a SAC-family checkpoint (the forward agent of a reset-free run).

    ``ActorPolicy(load_actor(path))`` is a ``Policy``; the actor itself is a plain module
    (B, obs_dim) -> (B, act_dim) in [-1, 1], ready for export.

    Raises:
        CheckpointError: the file is missing, corrupt, or not a SAC-family checkpoint.
    """
    tensors, metadata = load_checkpoint(path)
    try:
        agent = metadata["agent"]
        actor = SquashedGaussianActor(
            int(agent["obs_dim"]), int(agent["act_dim"]), tuple(agent["config"]["hidden"])
        )
        actor.load_state_dict(sub_tensors(tensors, "agent.actor."))
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not a SAC-family checkpoint: {err!r}") from err
    return actor.eval()
