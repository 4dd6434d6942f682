"""iLQR on the learned PETS ensemble: one cart-pole action in under 50 ms (issue 4, target 2).

The model is PETS' dynamics ensemble at its default size (``robot_rl.agents.pets.ModelConfig``:
7 members, 5 elites, 3 x 200 SiLU) without an action history, fitted to the transitions a
PETS run collected on the MuJoCo cart-pole (``--run``, a ``robot-rl run`` folder; without one
the main job's collect and learn stages run first into a temporary folder). iLQR plans on the
elites' mean prediction (``GaussianEnsemble.mean_next_obs``, Jacobians along the horizon by
``torch.func`` through ``TorchDynamics``) with a swing-up cost on the observation, in a
receding horizon, warm-started, on the true MuJoCo cart-pole at nominal parameters. Reported:
time per planned action with 1 and 2 torch threads, and whether the pole is swung up and held.

Usage: python benchmarks/trajopt_learned.py [--run runs/RUN] [--episodes 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import casadi as ca
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import robot_rl
from benchmarks.common import machine_summary, markdown_table, write_section
from robot_rl.agents.pets import ModelConfig, make_model
from robot_rl.checkpoint import load_checkpoint
from robot_rl.controllers.costs import Cost
from robot_rl.controllers.derivatives import TorchDynamics
from robot_rl.controllers.ilqr import ILQR, ILQRSettings, LineSearch
from robot_rl.controllers.receding_horizon import ActionScaling, TrajOptMPC
from robot_rl.evaluation import run_episode
from robot_rl.models import GaussianEnsemble, TransitionDataset
from robot_rl.pipeline import RunConfig, RunDir, execute, start

ENV = "robot_rl/CartpoleSwingup-v0"
HORIZON = 30
WARM_ITERATIONS = 2
TARGET_S = 0.05


def pets_data(run_path: Path | None, scratch: Path) -> TransitionDataset:
    """The transitions of a PETS run (random and planned episodes on the randomized cart-pole)."""
    if run_path is None:
        config = RunConfig()
        run = start(config, scratch, "trajopt-learned")
        execute(run, config, until="learn")
        run_path = run.path
    tensors, _ = load_checkpoint(RunDir.open(run_path).path / "learn" / "pets.pt")
    return TransitionDataset.from_tensors(tensors)


def fit_ensemble(data: TransitionDataset) -> GaussianEnsemble:
    config = dataclasses.replace(ModelConfig(), action_history=0, max_epochs=100)
    model, trainer = make_model(
        config,
        data.obs_dim,
        data.act_dim,
        torch.Generator().manual_seed(0),
        torch.Generator().manual_seed(1),
    )
    trainer.fit(data.batch())
    return model


def swingup_cost() -> Cost:
    """Swing-up cost on the observation (x, cos θ, sin θ, ẋ, θ̇); θ = 0 hangs down."""

    def state_part(o: ca.SX) -> ca.SX:
        return (1 + o[1]) + 0.5 * (0.2 * o[0] ** 2 + 0.05 * o[3] ** 2 + 0.001 * o[4] ** 2)

    return Cost(
        5,
        1,
        running={
            "state": lambda o, a, p: state_part(o),
            "effort": lambda o, a, p: 0.05 * a[0] ** 2,
        },
        terminal={"final": lambda o, p: 10 * state_part(o)},
    )


def closed_loop(model: GaussianEnsemble, threads: int, episodes: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    dynamics = TorchDynamics(
        model.mean_next_obs, model.obs_dim, model.act_dim, rollout_fn=model.mean_step()
    )
    settings = ILQRSettings(max_iterations=20, line_search=LineSearch.PARALLEL)
    solver = ILQR(dynamics, swingup_cost(), HORIZON, -1.0, 1.0, settings)
    mpc = TrajOptMPC(
        solver,
        state_fn=lambda obs: np.asarray(obs, dtype=np.float64),
        scaling=ActionScaling.identity(1),
        first_iterations=20,
        warm_iterations=WARM_ITERATIONS,
    )
    env = robot_rl.make(ENV)
    window = round(2.0 / env.unwrapped.task.control_dt)
    times, successes, returns = [], [], []
    for episode in range(episodes):
        ep = run_episode(env, mpc, seed=episode, success_window=window)
        times += [s.solve_time for s in mpc.steps[1:]]  # the first, cold solve excluded
        successes.append(ep.success)
        returns.append(ep.ret)
    return {
        "threads": threads,
        "median": statistics.median(times),
        "p90": float(np.percentile(times, 90)),
        "success": float(np.mean(successes)),
        "return": float(np.mean(returns)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, help="a robot-rl run folder with a finished learn stage"
    )
    parser.add_argument("--episodes", type=int, default=3)
    args = parser.parse_args()
    load_before = machine_summary()
    with tempfile.TemporaryDirectory() as scratch:
        data = pets_data(args.run, Path(scratch))
    start_fit = time.perf_counter()
    model = fit_ensemble(data)
    fit_s = time.perf_counter() - start_fit
    results = [closed_loop(model, threads, args.episodes) for threads in (1, 2)]
    for r in results:
        print(r, flush=True)
    best = min(results, key=lambda r: r["median"])
    rows = [
        [r["threads"], f"{1e3 * r['median']:.1f}", f"{1e3 * r['p90']:.1f}",
         f"{100 * r['success']:.0f}%", f"{r['return']:.1f}"]
        for r in results
    ]  # fmt: skip
    body = (
        "## iLQR on the learned ensemble (`benchmarks/trajopt_learned.py`)\n\n"
        f"PETS' default ensemble (7 members, 5 elites, 3 x 200 SiLU, no action history) fitted "
        f"in {fit_s:.0f} s to the {len(data)} transitions of a PETS run on the randomized MuJoCo "
        f"cart-pole; iLQR (horizon {HORIZON}, box |a| <= 1, at most {WARM_ITERATIONS} warm-started "
        "iterations per action, Jacobians by `torch.func` over the horizon) on the elites' mean "
        f"prediction, in closed loop on the MuJoCo cart-pole at nominal parameters, "
        f"{args.episodes} episodes per setting; the first, cold solve of each episode excluded.\n\n"
        + markdown_table(
            ["torch threads", "median ms / action", "p90 ms", "swing-up success", "mean return"],
            rows,
        )
        + f"\n\nTarget: < {1e3 * TARGET_S:.0f} ms per action. Best median "
        f"**{1e3 * best['median']:.1f} ms** with {best['threads']} thread(s) "
        f"({'meets' if best['median'] < TARGET_S else 'misses'} the target).\n\n"
        f"Machine at start: {load_before}  \nMachine at end: {machine_summary()}\n"
    )
    print(body)
    write_section("trajopt_learned", body)


if __name__ == "__main__":
    main()
