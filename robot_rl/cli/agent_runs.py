"""What the SAC-family train commands share: env flags, the run folder, resume, the summary."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from robot_rl.agents.envs import make_env
from robot_rl.agents.sac import NonFiniteError, Precision, Trainer, configure_torch
from robot_rl.checkpoint import CheckpointError
from robot_rl.envs import Engine
from robot_rl.logger import LogFormat, make_logger

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class RunArgs:
    """Where and how a training run happens."""

    env: str
    """Env id: a robot_rl id (robot_rl/CartpoleSwingup-v0) or any gymnasium id (Pendulum-v1)."""
    engine: Engine = Engine.MUJOCO
    """Physics engine of a robot_rl env."""
    env_kwargs: str = "{}"
    """Task/env arguments as JSON, e.g. '{"track_band": 0.5}'."""
    run_dir: Path | None = None
    """Folder for the checkpoint and logs (default runs/ALGO-ENV-sSEED)."""
    log: tuple[LogFormat, ...] = (LogFormat.STDOUT, LogFormat.CSV)
    """Metric outputs."""
    threads: int = 1
    """Torch intra-op threads (one is usually fastest per CPU-second)."""
    precision: Precision = Precision.FP32
    """Matrix-product arithmetic: fp32, or bf16 inputs with fp32 accumulation."""
    compile: bool = False
    """Compile each learner's gradient step into one graph (traced, then compiled by Inductor;
    needs a C++ compiler): the same steps, several times faster at small networks; the first
    run of a network shape compiles for seconds, later runs load the code from disk."""
    resume: bool = False
    """Continue the run in run_dir from its checkpoint."""

    def kwargs(self) -> dict[str, Any]:
        try:
            kwargs = json.loads(self.env_kwargs)
        except json.JSONDecodeError as err:
            raise SystemExit(f"--env-kwargs is not valid JSON: {err}") from None
        if not isinstance(kwargs, dict):
            raise SystemExit("--env-kwargs must be a JSON object")
        return kwargs

    def make(self, **overrides: Any) -> gym.Env:
        return make_env(self.env, engine=self.engine.value, **(self.kwargs() | overrides))

    def directory(self, algorithm: str, seed: int) -> Path:
        if self.run_dir is not None:
            return self.run_dir
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.env.split("/")[-1])
        return Path("runs") / f"{algorithm}-{name}-s{seed}"


def run(run_args: RunArgs, algorithm: str, seed: int, build: Callable[[Path], Trainer]) -> int:
    """Build the trainer, resume if asked, train, and print where everything went.

    Args:
        build: makes the trainer given the run folder (its logger and checkpoint go there).
    """
    configure_torch(run_args.threads, run_args.precision)
    run_dir = run_args.directory(algorithm, seed)
    checkpoint = run_dir / CHECKPOINT_NAME
    if checkpoint.exists() and not run_args.resume:
        raise SystemExit(f"{checkpoint} exists: pass --resume to continue it, or another --run-dir")
    trainer = build(run_dir)
    if run_args.compile:
        trainer.compile()
    start = time.perf_counter()
    try:
        if run_args.resume:
            trainer.load(checkpoint)
            print(f"resumed {checkpoint} at env step {trainer.counters.env_steps}")
        trainer.train()
    except (CheckpointError, NonFiniteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        trainer.logger.close()
    k = trainer.counters
    print(
        f"{algorithm} on {run_args.env}: {k.env_steps} env steps, {k.episodes} episodes, "
        f"{k.resets} resets, {k.violations} constraint violations in "
        f"{time.perf_counter() - start:.0f} s"
    )
    for name, value in trainer.extra_metrics().items():
        print(f"{name}: {value:g}")
    if trainer.evaluations:
        step, result = trainer.evaluations[-1]
        print(
            f"evaluation at step {step}: return {result.mean_return:.2f}, cost "
            f"{result.mean_cost:.2f}, success {result.success_rate:.2f}"
        )
    print(f"checkpoint: {checkpoint}")
    return 0


def logger_for(run_args: RunArgs, run_dir: Path):
    """The run's logger (stdout, CSV and TensorBoard go where ``--log`` says)."""
    return make_logger(run_dir, run_args.log)
