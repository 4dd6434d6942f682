"""``robot-rl train pets``: PETS (learned ensemble + MPC), resumable with ``--resume``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import tyro

from robot_rl.agents.pets import CHECKPOINT_NAME, PETSConfig, build
from robot_rl.logger import make_logger


def main(argv: Sequence[str], prog: str) -> int:
    config = tyro.cli(PETSConfig, args=list(argv), prog=prog)
    torch.set_num_threads(config.threads)
    checkpoint = config.run_dir / CHECKPOINT_NAME
    if checkpoint.exists() and not config.resume:
        print(f"{checkpoint} exists: pass --resume to continue it, or pick another --run-dir")
        return 2
    logger = make_logger(config.run_dir, config.log)
    agent = build(config, logger)
    if config.resume and checkpoint.exists():
        agent.restore(checkpoint, {"env": config.env})
        print(f"resumed {checkpoint} after {agent.episode} episodes")
    agent.learn(config.episodes)
    logger.close()
    successes = [h.episode for h in agent.history if h.success]
    first = f"after {successes[0] + 1} episodes" if successes else "not yet"
    print(f"done: {agent.episode} episodes; first success {first}; checkpoint {checkpoint}")
    return 0
