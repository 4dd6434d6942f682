"""``robot-rl train reset-free --env ID``: reset-free SAC with forward and reset agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from robot_rl.agents.reset_free import ResetFreeConfig, ResetFreeEnv, ResetFreeTrainer
from robot_rl.agents.sac import SAC, SACConfig, TrainConfig
from robot_rl.cli.agent_runs import CHECKPOINT_NAME, RunArgs, logger_for, run


@dataclass(frozen=True)
class Args:
    """Train without episodic resets; every hard reset (intervention) is counted."""

    run: Annotated[RunArgs, tyro.conf.OmitArgPrefixes]
    agent: SACConfig = field(default_factory=SACConfig)
    """The forward (task) agent."""
    reset_agent: SACConfig = field(default_factory=SACConfig)
    """The reset agent."""
    reset_free: ResetFreeConfig = field(default_factory=ResetFreeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    demos: int = 20
    """Demonstration initial states, drawn from resets of a separate env instance."""


def demo_states(args: Args) -> np.ndarray:
    """(demos, obs_dim) observations of the initial-state distribution (seeds 10^6 + i)."""
    env = args.run.make()
    return np.stack([env.reset(seed=1_000_000 + i)[0] for i in range(args.demos)])


def build_trainer(args: Args, run_dir: Path) -> ResetFreeTrainer:
    c = args.train
    env = ResetFreeEnv(args.run.make(max_episode_steps=None))
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    return ResetFreeTrainer(
        SAC(obs_dim, act_dim, args.agent, seed=c.seed),
        SAC(obs_dim, act_dim, args.reset_agent, seed=c.seed + 1),
        env,
        demo_states(args),
        c,
        args.reset_free,
        args.run.env,
        eval_env=args.run.make(),
        logger=logger_for(args.run, run_dir),
        checkpoint_path=run_dir / CHECKPOINT_NAME,
    )


def main(argv: Sequence[str], prog: str) -> int:
    args = tyro.cli(Args, args=list(argv), prog=prog)
    return run(
        args.run, "reset-free", args.train.seed, lambda run_dir: build_trainer(args, run_dir)
    )
