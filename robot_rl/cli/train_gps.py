"""``robot-rl train gps``: mirror-descent guided policy search on a reaching task."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro
from threadpoolctl import threadpool_limits

import robot_rl
from robot_rl.agents.gps import GPS, Features, GPSConfig, make_features, reaching_cost
from robot_rl.agents.gps.conditions import evaluate_on_goals, held_out_goals, spread_goals
from robot_rl.envs import Engine
from robot_rl.logger import LogFormat, make_logger, progress


@dataclass(frozen=True)
class CostArgs:
    """The local controllers' cost: the task's negated reward, smoothed (see ReachingCost)."""

    smoothing: float = 0.005
    """Distance smoothing α, m."""
    l2_weight: float = 1.0
    """Weight of the squared-distance term (curvature along the direction to the goal)."""
    final_weight: float = 5.0
    """Multiplier on the final state's distance terms."""


@dataclass(frozen=True)
class Args:
    """Train a neural policy with GPS from a few training goals; report held-out success."""

    env: str = "robot_rl/ReacherTwoLink-v0"
    """Reaching env id (robot_rl/ReacherTwoLink-v0 or robot_rl/ArmReach-v0)."""
    engine: Engine = Engine.MUJOCO
    """Physics engine."""
    randomization: bool = False
    """Train with the env's default domain randomization."""
    goals: int = 4
    """Training goals (GPS conditions), spread over the goal space."""
    iterations: int = 15
    """GPS iterations."""
    features: Features = Features.BASE_FRAME
    """What the global policy reads from the observation."""
    eval_goals: int = 50
    """Held-out goals (from the task's goal distribution) evaluated after training."""
    seed: int = 0
    """Seeds goals, sampling, the dynamics prior and the policy."""
    run_dir: Path | None = None
    """Folder for the policy, its TorchScript export and logs (default runs/gps-ENV-sSEED)."""
    log: tuple[LogFormat, ...] = (LogFormat.STDOUT, LogFormat.CSV)
    """Metric outputs."""
    threads: int = 1
    """Torch intra-op and BLAS threads (one avoids oversubscribing a shared machine)."""
    gps: GPSConfig = field(default_factory=lambda: GPSConfig(rest_anchor=True))
    """GPS hyperparameters (the policy is anchored at rest on the goal, which the default
    features support; pass --gps.no-rest-anchor with --features raw)."""
    cost: CostArgs = field(default_factory=CostArgs)


def main(argv: Sequence[str], prog: str) -> int:
    args = tyro.cli(Args, args=list(argv), prog=prog)
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        return train(args)


def train(args: Args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.env.split("/")[-1])
    run_dir = args.run_dir or Path("runs") / f"gps-{name}-s{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)

    env = robot_rl.make(args.env, engine=args.engine, randomization=args.randomization or None)
    rng = np.random.default_rng(args.seed)
    train_goals = spread_goals(env.task, args.goals, rng)
    test_goals = held_out_goals(
        env.task, args.eval_goals, np.random.default_rng(args.seed + 10_000)
    )
    cost = reaching_cost(env.task, **asdict(args.cost))
    features = make_features(args.features, env.task, env.observation_space.shape[0])
    logger = make_logger(run_dir, args.log)
    gps = GPS(env, train_goals, cost, args.gps, seed=args.seed, logger=logger, features=features)
    for _ in progress(range(args.iterations), total=args.iterations, desc="gps"):
        gps.iteration()
    logger.close()

    policy = gps.best_policy()
    eval_env = robot_rl.make(args.env, engine=args.engine, randomization=args.randomization or None)
    held = evaluate_on_goals(eval_env, policy, test_goals, seed=args.seed + 20_000)
    train = evaluate_on_goals(eval_env, policy, train_goals, seed=args.seed + 30_000)
    summary = {
        "env": args.env,
        "env_steps": gps.env_steps,
        "iterations": gps.iteration_count,
        "train_goal_success": train.success_rate,
        "held_out_success": held.success_rate,
        "held_out_return": held.mean_return,
        "randomization": args.randomization,
    }
    policy.save(run_dir / "policy.pt", extra={"env": args.env})
    policy.export_torchscript(run_dir / "policy.ts")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"policy: {run_dir / 'policy.pt'}  TorchScript: {run_dir / 'policy.ts'}")
    return 0
