"""``robot-rl train safe-sac --env ID --agent.cost-limit C``: SAC with a Lagrangian constraint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from robot_rl.agents.sac import TrainConfig, Trainer
from robot_rl.agents.safe_sac import SafeSAC, SafeSACConfig
from robot_rl.cli.agent_runs import CHECKPOINT_NAME, RunArgs, logger_for, run


@dataclass(frozen=True)
class Args:
    """Train safe SAC: maximise return with the expected episode cost under a limit."""

    run: Annotated[RunArgs, tyro.conf.OmitArgPrefixes]
    agent: SafeSACConfig = field(default_factory=SafeSACConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_trainer(args: Args, run_dir: Path) -> Trainer:
    c = args.train
    envs = [args.run.make() for _ in range(c.num_envs)]
    obs_dim, act_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    return Trainer(
        SafeSAC(obs_dim, act_dim, args.agent, seed=c.seed),
        envs,
        c,
        args.run.env,
        eval_env=args.run.make(),
        logger=logger_for(args.run, run_dir),
        checkpoint_path=run_dir / CHECKPOINT_NAME,
    )


def main(argv: Sequence[str], prog: str) -> int:
    args = tyro.cli(Args, args=list(argv), prog=prog)
    return run(args.run, "safe-sac", args.train.seed, lambda run_dir: build_trainer(args, run_dir))
