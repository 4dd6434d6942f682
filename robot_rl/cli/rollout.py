"""``robot-rl rollout``: run a policy in an env, report returns and costs, optionally film it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import robot_rl
from robot_rl.cli.common import parse_config
from robot_rl.envs import Engine
from robot_rl.evaluation import Episode, run_episode
from robot_rl.hardware.policies import load_policy
from robot_rl.logger import LogFormat, make_logger, progress


@dataclass(frozen=True)
class RolloutArgs:
    """Run a policy in an env and report each episode's return, cost and success."""

    env: str = "robot_rl/CartpoleSwingup-v0"
    """Env id (``robot-rl envs`` lists them)."""
    engine: Engine = Engine.MUJOCO
    """Physics engine."""
    policy: str = "random"
    """``random``, ``random:SEED``, ``zero``, or a policy file: a training checkpoint (SAC
    family, GPS) or an exported ``.onnx`` / TorchScript policy."""
    episodes: int = 3
    """Number of episodes."""
    seed: int = 0
    """Seed of the first episode (then seed + 1, ...)."""
    randomize: bool = False
    """Turn on the env's default domain randomization."""
    video: Path | None = None
    """Write the first episode to this .mp4 or .gif file."""
    log_dir: Path | None = None
    """Folder for CSV / TensorBoard logs (needed for those formats)."""
    log: tuple[LogFormat, ...] = (LogFormat.STDOUT,)
    """Where metrics go."""


def main(argv: Sequence[str], prog: str) -> int:
    args = parse_config(RolloutArgs, argv, prog)
    if args.episodes < 1:
        raise SystemExit(f"{prog}: --episodes must be >= 1")
    env = robot_rl.make(
        args.env,
        engine=args.engine,
        randomization=args.randomize,
        render_mode="rgb_array" if args.video else None,
    )
    policy, _ = load_policy(args.policy, act_dim=env.action_space.shape[0])
    logger = make_logger(args.log_dir, args.log)
    episodes: list[Episode] = []
    for i in progress(range(args.episodes), total=args.episodes, desc="episodes"):
        start = time.perf_counter()
        ep = run_episode(env, policy, seed=args.seed + i, render=bool(args.video) and i == 0)
        elapsed = time.perf_counter() - start
        episodes.append(ep)
        logger.record_many(
            {
                "rollout/return": ep.ret,
                "rollout/cost": ep.cost,
                "rollout/length": ep.length,
                "rollout/success": float(ep.final_success),
                "time/steps_per_second": ep.length / elapsed,
                **{f"reward/{k}": v for k, v in ep.reward_terms.items()},
            }
        )
        logger.dump(step=i)
        if ep.frames:
            from robot_rl.video import write_video

            path = write_video(args.video, ep.frames, fps=env.metadata["render_fps"])
            print(f"video written to {path}")
    logger.close()
    returns = np.array([e.ret for e in episodes])
    costs = np.array([e.cost for e in episodes])
    print(
        f"{args.env} on {args.engine.value}, policy {args.policy}, {len(episodes)} episodes: "
        f"return {returns.mean():.2f} ± {returns.std():.2f}, cost {costs.mean():.2f}, "
        f"success {np.mean([e.final_success for e in episodes]):.0%}"
    )
    env.close()
    return 0
