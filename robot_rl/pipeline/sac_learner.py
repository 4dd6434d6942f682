"""The main job's learn stage with SAC (``learn.agent: sac``) instead of PETS.

SAC trains for ``learn.sac_steps`` env steps on the (randomized) simulator, checkpointing into
``<run>/learn/sac.pt`` so a killed stage resumes from its last checkpoint; its evaluations
(the deterministic policy on fixed seeds every ``learn.sac_eval_every`` steps) are appended
to ``<run>/learn/evaluations.jsonl`` as they happen, because the trainer's checkpoint does
not keep them. The deployed controller is the checkpoint's deterministic actor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import robot_rl
from robot_rl.agents.sac import SAC, TrainConfig, Trainer, configure_torch
from robot_rl.evaluation import Evaluation
from robot_rl.hardware.policies import load_policy
from robot_rl.pipeline.config import RunConfig
from robot_rl.types import Policy

CHECKPOINT_NAME = "sac.pt"
CURVE_NAME = "evaluations.jsonl"
CHECKPOINT_EVERY = 2_000
"""Env steps between checkpoints (what a kill can lose)."""


class _CurveTrainer(Trainer):
    """A trainer that also appends every evaluation to the JSON-lines file ``curve_path``."""

    def __init__(self, *args: Any, curve_path: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.curve_path = curve_path

    def evaluate(self) -> Evaluation:
        result = super().evaluate()
        row = {
            "env_steps": self.counters.env_steps,
            "return": result.mean_return,
            "cost": result.mean_cost,
            "success": result.success_rate,
        }
        with self.curve_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return result


def _curve(path: Path, up_to: int) -> list[dict[str, float]]:
    """The recorded evaluations at or before env step ``up_to`` (later ones were lost with a
    kill and are recomputed)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["env_steps"] <= up_to]


def train_sac(config: RunConfig, learn_dir: Path, randomization: Any) -> dict[str, Any]:
    """Train (or resume) SAC for the run; returns the learn stage's summary."""
    configure_torch(config.threads)
    learn = config.learn

    def make_env():
        return robot_rl.make(config.env, engine=config.engine, randomization=randomization)

    env = make_env()
    agent = SAC(env.observation_space.shape[0], env.action_space.shape[0], learn.sac, config.seed)
    train = TrainConfig(
        total_steps=learn.sac_steps,
        eval_every=learn.sac_eval_every,
        checkpoint_every=CHECKPOINT_EVERY,
        seed=config.seed,
    )
    checkpoint = learn_dir / CHECKPOINT_NAME
    trainer = _CurveTrainer(
        agent, [env], train, config.env, eval_env=make_env(), checkpoint_path=checkpoint,
        curve_path=learn_dir / CURVE_NAME,
    )  # fmt: skip
    resumed_at = 0
    if checkpoint.is_file():
        trainer.load(checkpoint)
        resumed_at = trainer.counters.env_steps
    kept = _curve(trainer.curve_path, resumed_at)
    trainer.curve_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    trainer.train(desc="learn (SAC env steps)")
    curve = _curve(trainer.curve_path, trainer.counters.env_steps)
    last = curve[-1] if curve else None
    return {
        "agent": "sac",
        "env_steps": trainer.counters.env_steps,
        "episodes": trainer.counters.episodes,
        "curve": curve,
        "final_return": None if last is None else last["return"],
        "final_success": None if last is None else last["success"],
    }


def sac_controller(learn_dir: Path) -> Policy:
    """The deterministic actor of a finished SAC learn stage."""
    checkpoint = Path(learn_dir) / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise ValueError(f"no SAC checkpoint in {learn_dir}: run the learn stage first")
    policy, _ = load_policy(str(checkpoint))
    return policy
