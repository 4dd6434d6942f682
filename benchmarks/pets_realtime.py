"""Real-time PETS planning on the cart-pole (target 2 of the PETS issue).

Two compute-lean configurations (iCEM with a small population and few particles on the
learned ensemble): PETS' own default, and the leaner one the main job (``robot-rl run``)
deploys on its 20 Hz robot (a 3x128 ensemble, horizon 20, 2 iCEM iterations). Each is trained
for 10 episodes on the randomized cart-pole (PETS' default can instead be restored from
``pets_sample_efficiency.py``'s checkpoint), then ``--episodes`` evaluation episodes on
held-out seeds (domain randomization on), timing every ``MPC.act``, with 1 and 2 torch threads.

Target: the episodes succeed (pole within 0.2 rad for the last 2 s) while planning at
>= 10 Hz (median time per action <= 100 ms).

Usage: python benchmarks/pets_realtime.py [--checkpoint runs/bench_pets/cartpole_seed0/pets.pt] [--episodes 8]
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
from robot_rl.pipeline.config import LEAN_MODEL, LEAN_PLANNER


def measure(
    name: str, config: PETSConfig, checkpoint: Path | None, episodes: int
) -> tuple[list[list[object]], str]:
    """Train (or restore) PETS with ``config`` and time its planner on held-out episodes with
    1 and 2 torch threads: (table rows, where the model came from)."""
    torch.set_num_threads(1)
    agent = build(config)
    if checkpoint is not None:
        agent.restore(checkpoint)
        source = f"restored from `{checkpoint}` ({agent.episode} episodes)"
    else:
        agent.learn(config.episodes)
        source = f"trained here ({agent.episode} episodes)"
    print(name, source)
    mpc = agent.controller
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times, successes, returns = [], [], []
        for i in range(episodes):
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
            name,
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
    return rows, source


def describe(config: PETSConfig) -> str:
    p, m = config.planner, config.model
    return (
        f"iCEM population {p.population} (shrinking), {p.elites} elites, {p.iterations} "
        f"iterations, horizon {p.horizon}, {p.particles} particles, {p.propagation.value}; "
        f"ensemble {m.members} members, hidden {'x'.join(map(str, m.hidden))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="of PETS' default config")
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
    load_before = machine_summary()
    print(load_before)
    base = dataclasses.replace(
        PETSConfig(), run_dir=Path(tempfile.mkdtemp(prefix="pets_realtime_")), log=()
    )
    lean = dataclasses.replace(
        base, run_dir=Path(tempfile.mkdtemp(prefix="pets_realtime_lean_")),
        model=LEAN_MODEL, planner=LEAN_PLANNER,
    )  # fmt: skip
    rows, sources = [], []
    for name, config, checkpoint in (
        ("PETS default", base, args.checkpoint),
        ("main job (lean)", lean, None),
    ):
        r, source = measure(name, config, checkpoint, args.episodes)
        rows += r
        sources.append(f"{name}: {describe(config)}; model {source}")
    body = (
        "## PETS real-time planning (`benchmarks/pets_realtime.py`)\n\n"
        + "\n".join(f"- {s}" for s in sources)
        + f"\n\n{args.episodes} cart-pole episodes on held-out seeds per row, domain "
        "randomization on; every `MPC.act` timed.\n\n"
        + markdown_table(
            [
                "configuration",
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
        + "\n\nTarget: success while planning at >= 10 Hz (median <= 100 ms per action). The "
        "main job's configuration is the one that runs on its robot at 20 Hz.\n\n"
        f"Machine at start: {load_before}  \nMachine at end: {machine_summary()}\n"
    )
    write_section("pets_realtime", body)


if __name__ == "__main__":
    main()
