"""``robot-rl plan``: run an MPC planner (iLQR or NMPC) in an env and report how it did.

Example::

    robot-rl plan --env robot_rl/CartpoleSwingup-v0 --model simulator --randomization --episodes 5
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tyro

import robot_rl
from robot_rl.controllers.nmpc import NLPSolver
from robot_rl.controllers.presets import SUPPORTED_ENVS, PlannerKind, PlanningModel, make_mpc
from robot_rl.envs import Engine
from robot_rl.evaluation import run_episode


@dataclass(frozen=True)
class PlanConfig:
    """Run a receding-horizon trajectory optimiser in an env."""

    env: str = "robot_rl/CartpoleSwingup-v0"
    """Env id: robot_rl/PendulumSwingup-v0, robot_rl/CartpoleSwingup-v0 or robot_rl/ArmReach-v0."""
    model: PlanningModel = PlanningModel.ANALYTIC
    """Planner dynamics: the analytic CasADi model or the MuJoCo simulator (nominal parameters)."""
    planner: PlannerKind = PlannerKind.ILQR
    """Trajectory optimiser: iLQR (box-DDP) or NMPC (CasADi multiple shooting, analytic model)."""
    nlp_solver: NLPSolver = NLPSolver.FATROP
    """NLP solver for NMPC."""
    horizon: int | None = None
    """Planning horizon in control steps (default per env)."""
    first_iterations: int = 100
    """Iteration budget of the first (cold) solve of an episode."""
    warm_iterations: int = 10
    """Iteration budget of every later warm-started solve."""
    episodes: int = 1
    """Episodes to run, with seeds seed, seed + 1, ..."""
    seed: int = 0
    """Seed of the first episode."""
    randomization: bool = False
    """Turn on the env's default domain randomization (the planner keeps nominal parameters)."""
    engine: Engine = Engine.MUJOCO
    """Physics engine of the env."""
    success_window: int = 20
    """Steps at the end of an episode that must all succeed for it to count."""


def main(argv: Sequence[str], prog: str) -> int:
    config = tyro.cli(PlanConfig, args=list(argv), prog=prog)
    if config.episodes < 1:
        print(f"{prog}: --episodes must be >= 1", file=sys.stderr)
        return 2
    try:
        env = robot_rl.make(
            config.env, engine=config.engine, randomization=config.randomization or None
        )
        mpc = make_mpc(
            env, config.model, config.planner, config.horizon, config.first_iterations,
            config.warm_iterations, config.nlp_solver,
        )  # fmt: skip
    except ValueError as err:
        print(f"{prog}: {err} (planners exist for {', '.join(SUPPORTED_ENVS)})", file=sys.stderr)
        return 2
    successes = []
    for i in range(config.episodes):
        episode = run_episode(env, mpc, seed=config.seed + i, success_window=config.success_window)
        times = mpc.solve_times()
        warm = times[1:] if len(times) > 1 else times
        fallbacks = sum(step.fallback for step in mpc.steps)
        successes.append(episode.success)
        print(
            f"episode {i} (seed {config.seed + i}): return {episode.ret:.2f}, safety cost "
            f"{episode.cost:.1f}, success {episode.success}, first solve {times[0] * 1e3:.1f} ms, "
            f"re-solve median {np.median(warm) * 1e3:.2f} ms / max {np.max(warm) * 1e3:.1f} ms, "
            f"fallbacks {fallbacks}",
            flush=True,
        )
    print(f"success rate {np.mean(successes):.2f} over {config.episodes} episode(s)")
    env.close()
    return 0
