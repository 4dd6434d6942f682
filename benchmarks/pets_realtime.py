"""Real-time PETS planning on the cart-pole (target 2 of the PETS issue).

PETS' default planner (iCEM with a small population and few particles on the learned
ensemble) swings up and balances the cart-pole; this measures how long each planned action
takes while it does. The model is the one PETS learned for seed 0 (from
``pets_sample_efficiency.py``'s checkpoint when given, else trained here for 10 episodes);
then ``--episodes`` evaluation episodes on held-out seeds (domain randomization on), timing
every ``MPC.act``, with 1 and 2 torch threads.

Target: the episodes succeed (pole within 0.2 rad for the last 2 s) while planning at
>= 10 Hz (median time per action <= 100 ms).

Usage: python benchmarks/pets_realtime.py [--checkpoint runs/bench_pets/cartpole_seed0/pets.pt]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import machine_summary, markdown_table, write_section

from robot_rl.agents.pets import PETSConfig, build
from robot_rl.evaluation import run_episode
from robot_rl.logger import LogFormat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_summary())

    run_dir = Path(tempfile.mkdtemp(prefix="pets_realtime_"))
    config = dataclasses.replace(PETSConfig(), run_dir=run_dir, log=(LogFormat.CSV,))
    agent = build(config)
    if args.checkpoint is not None:
        agent.restore(args.checkpoint)
        source = f"restored from `{args.checkpoint}` ({agent.episode} episodes)"
    else:
        agent.learn(config.episodes)
        source = f"trained here ({agent.episode} episodes)"
    print(source)
    mpc = agent.controller

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times, successes, returns = [], [], []
        for i in range(args.episodes):
            steps: list[float] = []
            episode = run_episode(
                agent.env,
                mpc,
                seed=20_000 + i,
                success_window=config.success_window,
                on_step=lambda obs, action, info, steps=steps: steps.append(mpc.last.seconds),
            )
            times += steps
            successes.append(episode.success)
            returns.append(episode.ret)
        t = np.array(times) * 1e3
        row = [
            threads,
            f"{np.median(t):.0f}",
            f"{np.percentile(t, 95):.0f}",
            f"{t.max():.0f}",
            f"{1e3 / np.median(t):.1f}",
            f"{sum(successes)}/{len(successes)}",
            " ".join(f"{r:.0f}" for r in returns),
        ]
        print(row)
        rows.append(row)
    p = config.planner
    body = (
        "## PETS real-time planning (`benchmarks/pets_realtime.py`)\n\n"
        f"PETS' default planner: iCEM, population {p.population} (shrinking), {p.elites} elites, "
        f"{p.iterations} iterations, horizon {p.horizon}, {p.particles} particles, "
        f"{p.propagation.value}; ensemble {config.model.members} members, hidden "
        f"{'x'.join(map(str, config.model.hidden))}. Model {source}. {args.episodes} cart-pole "
        "episodes on held-out seeds, domain randomization on; every `MPC.act` timed.\n\n"
        + markdown_table(
            [
                "torch threads",
                "median ms/action",
                "p95 ms",
                "max ms",
                "planning rate, Hz (median)",
                "successes",
                "returns",
            ],
            rows,
        )
        + "\n\nTarget: success while planning at >= 10 Hz (median <= 100 ms per action).\n\n"
        f"Machine: {machine_summary()}\n"
    )
    write_section("pets_realtime", body)


if __name__ == "__main__":
    main()
