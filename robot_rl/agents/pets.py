"""PETS: probabilistic ensembles with trajectory sampling (Chua et al., 2018).

The loop: a few random episodes, then after every episode refit the ensemble on all data
collected so far and act in the next episode with MPC on the ensemble (imagined rollouts
through ``ModelEnv``, a sampling optimiser, the task's own reward and safety cost). Every
episode is logged (return, cost, success, the model's holdout loss and its error on the
episode it had not seen, planning time) and checkpointed (model, data, random-generator
states), so a run resumes exactly where it stopped.

``robot-rl train pets`` (``robot_rl.cli.train_pets``) builds a ``PETS`` from ``PETSConfig``
with ``build``; the defaults are the compute-lean configuration that plans in real time on
two CPU cores.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_rl.checkpoint import CheckpointError, load_checkpoint, require_metadata, save_checkpoint
from robot_rl.controllers import CEM, ICEM, MPC, MPPI, Optimizer, RandomShooting
from robot_rl.envs.physics.base import Engine
from robot_rl.evaluation import RandomPolicy
from robot_rl.logger import LogFormat, Logger
from robot_rl.models import (
    EnsembleTrainer,
    GaussianEnsemble,
    ModelEnv,
    Propagation,
    TransitionDataset,
    check_model_dims,
    collect_episode,
    score,
)
from robot_rl.types import Policy

CHECKPOINT_NAME = "pets.pt"
KIND = "robot_rl.agents.PETS"


class OptimizerKind(enum.Enum):
    """Which sampling optimiser plans the actions."""

    CEM = "cem"
    ICEM = "icem"
    MPPI = "mppi"
    RANDOM = "random"


@dataclass(frozen=True)
class ModelConfig:
    """The dynamics ensemble and how it is refitted after each episode."""

    members: int = 7
    """Ensemble members."""
    elites: int = 5
    """Members used for prediction, chosen on holdout loss."""
    hidden: tuple[int, ...] = (200, 200, 200)
    """Hidden layer widths (SiLU)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    weight_decay: float = 5e-5
    """L2 penalty on the network weights."""
    batch_size: int = 32
    """Transitions per member per gradient step."""
    holdout_fraction: float = 0.2
    """Share of the data held out for early stopping and elite choice."""
    max_epochs: int = 40
    """Epochs per refit at most."""
    patience: int = 5
    """Epochs without holdout improvement before a refit stops."""
    bootstrap: bool = True
    """Each member trains on its own bootstrap resample."""
    action_history: int = 1
    """Past actions in the model's input: 1 lets it learn an action latency under a period."""

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.members:
            raise ValueError(
                f"model.elites must be in [1, members={self.members}], got {self.elites}"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"model.hidden must be positive widths, got {self.hidden}")
        if min(self.batch_size, self.max_epochs, self.patience) < 1 or self.action_history < 0:
            raise ValueError("model.batch_size, max_epochs, patience >= 1 and action_history >= 0")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("model.learning_rate must be > 0 and weight_decay >= 0")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(
                f"model.holdout_fraction must be in [0, 1), got {self.holdout_fraction}"
            )


@dataclass(frozen=True)
class PlannerConfig:
    """MPC on the learned model."""

    optimizer: OptimizerKind = OptimizerKind.ICEM
    """Sampling optimiser."""
    horizon: int = 25
    """Planning horizon, control steps."""
    population: int = 100
    """Candidate sequences (iCEM: in the first iteration)."""
    elites: int = 10
    """Candidates the sampling distribution is refitted to (CEM, iCEM)."""
    iterations: int = 3
    """Optimiser iterations per action."""
    particles: int = 5
    """Imagined rollouts per candidate (a multiple of the model's elites wastes nothing)."""
    propagation: Propagation = Propagation.TS1
    """How particles choose ensemble members."""
    sample: bool = True
    """Draw imagined next states from the members' Gaussians (off: their means, so only
    the members' disagreement spreads the particles)."""
    noise_beta: float = 0.5
    """Colour of the sampling noise (iCEM, MPPI): 0 white, 2 smooth; 0.5 both swings the
    cart-pole up and holds it within 0.2 rad (2 wobbles, 0 swings up less reliably)."""
    alpha: float = 0.1
    """Smoothing of the sampling distribution between iterations (CEM, iCEM, MPPI)."""
    cost_weight: float = 1.0
    """Weight of the task's safety cost in the planning objective."""
    temperature: float = 1.0
    """MPPI temperature, in return units."""

    def __post_init__(self) -> None:
        if min(self.horizon, self.population, self.iterations, self.particles) < 1:
            raise ValueError("planner.horizon, population, iterations and particles must be >= 1")
        if not 1 <= self.elites <= self.population:
            raise ValueError(
                f"planner.elites must be in [1, population={self.population}], got {self.elites}"
            )
        if self.noise_beta < 0 or not 0.0 <= self.alpha < 1.0 or self.temperature <= 0:
            raise ValueError("planner.noise_beta >= 0, alpha in [0, 1) and temperature > 0")
        if self.cost_weight < 0:
            raise ValueError(f"planner.cost_weight must be >= 0, got {self.cost_weight}")


@dataclass(frozen=True)
class PETSConfig:
    """PETS on one env; the checkpoint and logs go to the run folder."""

    env: str = "robot_rl/CartpoleSwingup-v0"
    """Env id."""
    engine: Engine = Engine.MUJOCO
    """Physics engine."""
    randomization: bool = True
    """Domain randomization (the env's default table)."""
    max_episode_steps: int | None = None
    """Episode length (None: the task's)."""
    episodes: int = 10
    """Episodes in all, random ones included."""
    random_episodes: int = 1
    """Episodes of uniform random actions before planning starts."""
    seed: int = 0
    """Seed of everything: env resets, the model, its training, the planner."""
    success_window: int = 40
    """An episode succeeds when its last this many steps all meet the task's criterion."""
    threads: int = 1
    """Torch threads (1 is usually fastest for this workload on a shared 2-core machine)."""
    run_dir: Path = Path("runs/pets")
    """Where the checkpoint and logs go."""
    resume: bool = False
    """Continue the run in run_dir from its checkpoint."""
    log: tuple[LogFormat, ...] = (LogFormat.STDOUT, LogFormat.CSV)
    """Log outputs."""
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.random_episodes < 0 or self.success_window < 1:
            raise ValueError("need episodes >= 1, random_episodes >= 0 and success_window >= 1")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")


def make_model(
    config: ModelConfig,
    obs_dim: int,
    act_dim: int,
    model_generator: torch.Generator,
    trainer_generator: torch.Generator,
) -> tuple[GaussianEnsemble, EnsembleTrainer]:
    """The ensemble ``config`` describes for an env's dimensions, and its trainer."""
    model = GaussianEnsemble(
        obs_dim,
        act_dim,
        config.members,
        config.elites,
        config.hidden,
        action_history=config.action_history,
        generator=model_generator,
    )
    trainer = EnsembleTrainer(
        model,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        holdout_fraction=config.holdout_fraction,
        max_epochs=config.max_epochs,
        patience=config.patience,
        bootstrap=config.bootstrap,
        generator=trainer_generator,
    )
    return model, trainer


def make_optimizer(
    config: PlannerConfig, lower: torch.Tensor, upper: torch.Tensor, generator: torch.Generator
) -> Optimizer:
    """The sampling optimiser ``config`` describes, over actions in [lower, upper]."""
    c, kind = config, config.optimizer
    if kind is OptimizerKind.CEM:
        return CEM(
            c.horizon,
            lower,
            upper,
            c.population,
            c.elites,
            c.iterations,
            c.alpha,
            generator=generator,
        )
    if kind is OptimizerKind.ICEM:
        return ICEM(
            c.horizon,
            lower,
            upper,
            c.population,
            c.elites,
            c.iterations,
            c.alpha,
            noise_beta=c.noise_beta,
            generator=generator,
        )
    if kind is OptimizerKind.MPPI:
        return MPPI(
            c.horizon,
            lower,
            upper,
            c.population,
            c.iterations,
            c.temperature,
            noise_beta=c.noise_beta,
            alpha=c.alpha,
            generator=generator,
        )
    return RandomShooting(c.horizon, lower, upper, c.population, generator=generator)


@dataclass(frozen=True)
class EpisodeLog:
    """One PETS episode.

    Attributes:
        episode: 0-based index.
        planned: actions came from MPC on the model (else from the random policy).
        ret: return. cost: summed safety cost. success: the last ``success_window`` steps
            all met the task's criterion. length: steps.
        plan_ms_mean, plan_ms_max: planning time per action, ms (0 for random episodes).
        new_data_mse: the model's one-step error on this episode before refitting on it
            (normalised units; NaN before the first fit).
        holdout_mse, holdout_nll, train_loss, epochs: from the refit after the episode.
        fit_seconds: refit time, s.
        transitions: data collected so far.
    """

    episode: int
    planned: bool
    ret: float
    cost: float
    success: bool
    length: int
    plan_ms_mean: float
    plan_ms_max: float
    new_data_mse: float
    holdout_mse: float
    holdout_nll: float
    train_loss: float
    epochs: int
    fit_seconds: float
    transitions: int

    def metrics(self) -> dict[str, float]:
        """Namespaced metrics for the logger."""
        return {
            "rollout/return": self.ret,
            "rollout/cost": self.cost,
            "rollout/success": float(self.success),
            "rollout/length": self.length,
            "rollout/planned": float(self.planned),
            "model/new_data_mse": self.new_data_mse,
            "model/holdout_mse": self.holdout_mse,
            "model/holdout_nll": self.holdout_nll,
            "model/train_loss": self.train_loss,
            "model/epochs": self.epochs,
            "model/transitions": self.transitions,
            "time/plan_ms_mean": self.plan_ms_mean,
            "time/plan_ms_max": self.plan_ms_max,
            "time/fit_s": self.fit_seconds,
        }


class _Timed:
    """A policy that records how long each ``act`` took, s."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.seconds: list[float] = []

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        action = self.policy.act(obs)
        self.seconds.append(time.perf_counter() - start)
        return action


class PETS:
    """The PETS loop on one env (see the module docstring).

    Args:
        env: the env to learn in.
        model: the dynamics ensemble (trained in place).
        trainer: fits ``model``.
        model_env: imagined rollouts on ``model`` for the planner.
        optimizer: the planner's sampling optimiser.
        random_episodes: episodes of random actions first.
        success_window: steps at the end of an episode that must all succeed.
        seed: env resets use ``seed * 1000 + episode``; the random policy likewise.
        logger: where per-episode metrics go (None: nowhere).
        checkpoint_path: written after every episode (None: no checkpoints).
        checkpoint_metadata: JSON-serialisable facts stored with every checkpoint (the env
            id, the config).
    """

    def __init__(
        self,
        env: gym.Env,
        model: GaussianEnsemble,
        trainer: EnsembleTrainer,
        model_env: ModelEnv,
        optimizer: Optimizer,
        random_episodes: int = 1,
        success_window: int = 40,
        seed: int = 0,
        logger: Logger | None = None,
        checkpoint_path: Path | None = None,
        checkpoint_metadata: dict[str, Any] | None = None,
    ) -> None:
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        check_model_dims(model, obs_dim, act_dim)
        if trainer.model is not model or model_env.model is not model:
            raise ValueError("the trainer and the model env must use the same model")
        if random_episodes < 0 or success_window < 1:
            raise ValueError("need random_episodes >= 0 and success_window >= 1")
        self.env, self.model, self.trainer, self.model_env = env, model, trainer, model_env
        self.optimizer = optimizer
        self.controller = MPC(model_env, optimizer, action_history=model.action_history)
        self.data = TransitionDataset(obs_dim, act_dim)
        self.random_episodes, self.success_window, self.seed = random_episodes, success_window, seed
        self.logger, self.checkpoint_path = logger, checkpoint_path
        self.checkpoint_metadata = dict(checkpoint_metadata or {})
        self.history: list[EpisodeLog] = []
        self._fitted = False

    @property
    def episode(self) -> int:
        """Episodes completed."""
        return len(self.history)

    def learn(self, episodes: int) -> list[EpisodeLog]:
        """Run until ``episodes`` episodes are done in all (a resumed run continues)."""
        while self.episode < episodes:
            self.run_episode()
        return self.history

    def run_episode(self) -> EpisodeLog:
        """Collect one episode, add it to the data, refit the model, log, checkpoint."""
        episode = self.episode
        planned = episode >= self.random_episodes
        seed = self.seed * 1000 + episode
        policy: Policy = self.controller if planned else RandomPolicy(self.env.action_space, seed)
        timed = _Timed(policy)
        result, transitions = collect_episode(
            self.env, timed, seed, success_window=self.success_window
        )
        history = self.model.action_history
        new_data = TransitionDataset(self.model.obs_dim, self.model.act_dim)
        new_data.add_episode(transitions)
        new_data_mse = math.nan
        if self._fitted:
            new_score = score(self.model, new_data.batch(), new_data.past_actions(history))
            new_data_mse = new_score.elite_mse(tuple(self.model.elite_index.tolist()))
        self.data.add_episode(transitions)

        start = time.perf_counter()
        fit = self.trainer.fit(self.data.batch(), self.data.past_actions(history))
        fit_seconds = time.perf_counter() - start
        self._fitted = True
        plan_ms = np.array(timed.seconds) * 1e3 if planned else np.zeros(1)
        log = EpisodeLog(
            episode=episode,
            planned=planned,
            ret=result.ret,
            cost=result.cost,
            success=result.success,
            length=result.length,
            plan_ms_mean=float(plan_ms.mean()),
            plan_ms_max=float(plan_ms.max()),
            new_data_mse=new_data_mse,
            holdout_mse=fit.holdout_mse,
            holdout_nll=fit.holdout.nll,
            train_loss=fit.train_loss,
            epochs=fit.epochs,
            fit_seconds=fit_seconds,
            transitions=len(self.data),
        )
        self.history.append(log)
        if self.logger is not None:
            self.logger.record_many(log.metrics())
            self.logger.dump(step=episode)
        if self.checkpoint_path is not None:
            self.save(self.checkpoint_path)
        return log

    # -- checkpoints ---------------------------------------------------------------------------------
    def _generators(self) -> dict[str, torch.Generator]:
        return {
            "trainer": self.trainer.generator,
            "model_env": self.model_env.generator,
            "optimizer": self.optimizer.generator,
        }

    def save(self, path: Path) -> Path:
        """Checkpoint the model, the data, the generators and the history."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(self.data.tensors())
        tensors.update({f"rng.{k}": g.get_state() for k, g in self._generators().items()})
        meta = {
            "kind": KIND,
            "model": self.model.hyperparameters(),
            "obs_dim": self.model.obs_dim,
            "act_dim": self.model.act_dim,
            "seed": self.seed,
            "history": [dataclasses.asdict(h) for h in self.history],
            **self.checkpoint_metadata,
        }
        return save_checkpoint(path, tensors, meta)

    def restore(self, path: Path, expected: dict[str, Any] | None = None) -> None:
        """Continue from a checkpoint written by ``save`` for the same env and model.

        Raises:
            CheckpointError: missing, corrupt, or written for another env, model or seed.
        """
        tensors, meta = load_checkpoint(path)
        require_metadata(
            meta,
            {
                "kind": KIND,
                "model": self.model.hyperparameters(),
                "obs_dim": self.model.obs_dim,
                "act_dim": self.model.act_dim,
                "seed": self.seed,
                **(expected or {}),
            },
            path,
        )
        try:
            model_state = {
                k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")
            }
            self.model.load_state_dict(model_state, strict=True)
            data = TransitionDataset.from_tensors(tensors)
            for name, g in self._generators().items():
                g.set_state(tensors[f"rng.{name}"])
            history = [EpisodeLog(**h) for h in meta["history"]]
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"checkpoint {path} has malformed PETS state: {err}") from err
        check_model_dims(self.model, data.obs_dim, data.act_dim)
        self.data, self.history = data, history
        self._fitted = bool(history)


def build(config: PETSConfig, logger: Logger | None = None, env: gym.Env | None = None) -> PETS:
    """A ``PETS`` for ``config`` (the env, model, trainer and planner it describes).

    Args:
        env: an env made by the caller (e.g. with a custom randomization table) in place of
            the one ``config`` describes; it must be ``config.env``.
    """
    import robot_rl
    from robot_rl.config import to_dict

    if env is None:
        kwargs = (
            {}
            if config.max_episode_steps is None
            else {"max_episode_steps": config.max_episode_steps}
        )
        env = robot_rl.make(
            config.env, engine=config.engine, randomization=config.randomization, **kwargs
        )
    elif env.spec is not None and env.spec.id != config.env:
        raise ValueError(f"the env given is {env.spec.id}, the config's is {config.env}")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    m, p = config.model, config.planner
    seeds = np.random.SeedSequence(config.seed).generate_state(4)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    model, trainer = make_model(m, obs_dim, act_dim, gens[0], gens[1])
    task = env.task
    model_env = ModelEnv(
        model,
        task.reward,
        task.termination,
        cost_fn=task.cost,
        cost_weight=p.cost_weight,
        particles=p.particles,
        propagation=p.propagation,
        sample=p.sample,
        generator=gens[2],
    )
    lower = torch.as_tensor(env.action_space.low, dtype=torch.float32)
    upper = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    optimizer = make_optimizer(p, lower, upper, gens[3])
    return PETS(
        env,
        model,
        trainer,
        model_env,
        optimizer,
        random_episodes=config.random_episodes,
        success_window=config.success_window,
        seed=config.seed,
        logger=logger,
        checkpoint_path=config.run_dir / CHECKPOINT_NAME,
        checkpoint_metadata={"env": config.env, "config": to_dict(config)},
    )
