"""PETS sample efficiency (target 3 of the PETS issue).

Cart-pole swing-up on MuJoCo with domain randomization on, PETS' default (compute-lean)
configuration, 10 episodes (the first of random actions) on each of 3 seeds: the episode in
which PETS first swings the pole up and keeps it within 0.2 rad of upright for the last 2 s
(40 steps of 0.05 s), per seed. Then the two-link reacher: PETS for 15 episodes, then its
planner on held-out goals: how often the fingertip gets within 2 cm of the goal, how often
it is within 2 cm at the last step (the task's success), and the final distance.

Each run's checkpoint and progress.csv go to ``--out`` (the real-time benchmark can reuse the
cart-pole model of seed 0).

Usage: python benchmarks/pets_sample_efficiency.py [--seeds 0 1 2] [--out runs/bench_pets]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from common import machine_summary, markdown_table, write_section

from robot_rl.agents.pets import PETSConfig, PlannerConfig, build
from robot_rl.evaluation import run_episode
from robot_rl.logger import LogFormat

CARTPOLE = PETSConfig(episodes=10, log=(LogFormat.CSV,))
REACHER = PETSConfig(
    env="robot_rl/ReacherTwoLink-v0",
    episodes=15,
    success_window=1,
    log=(LogFormat.CSV,),
    planner=PlannerConfig(horizon=15, cost_weight=0.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_pets"))
    parser.add_argument("--reacher-eval", type=int, default=10, help="held-out reacher goals")
    parser.add_argument("--skip-reacher", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_summary())

    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        config = dataclasses.replace(CARTPOLE, seed=seed, run_dir=args.out / f"cartpole_seed{seed}")
        agent = build(config)
        history = agent.learn(config.episodes)
        successes = [h.episode + 1 for h in history if h.success]
        returns = " ".join(f"{h.ret:.0f}" for h in history)
        plan_ms = np.mean([h.plan_ms_mean for h in history if h.planned])
        row = [
            seed,
            successes[0] if successes else "not within 10",
            " ".join(map(str, successes)),
            returns,
            f"{plan_ms:.0f}",
            f"{time.perf_counter() - start:.0f}",
        ]
        print(row)
        rows.append(row)
    table = markdown_table(
        [
            "seed",
            "episodes to success",
            "successful episodes",
            "return per episode",
            "planning, ms/action",
            "run time, s",
        ],
        rows,
    )
    reached = all(isinstance(r[1], int) and r[1] <= 10 for r in rows)
    body = (
        "## PETS sample efficiency (`benchmarks/pets_sample_efficiency.py`)\n\n"
        "Cart-pole swing-up, MuJoCo, domain randomization on, PETS defaults (iCEM "
        f"population {CARTPOLE.planner.population}, {CARTPOLE.planner.particles} particles, "
        f"horizon {CARTPOLE.planner.horizon}; ensemble of {CARTPOLE.model.members}, hidden "
        f"{'x'.join(map(str, CARTPOLE.model.hidden))}, action history "
        f"{CARTPOLE.model.action_history}); episode 1 is random. Success: pole within 0.2 rad "
        "of upright for the last 2 s (40 steps).\n\n"
        + table
        + f"\n\nTarget: success within 10 episodes on each seed: **{'met' if reached else 'not met'}**.\n"
    )

    if not args.skip_reacher:
        start = time.perf_counter()
        config = dataclasses.replace(REACHER, run_dir=args.out / "reacher_seed0")
        agent = build(config)
        history = agent.learn(config.episodes)
        finals, reached, successes = [], [], []
        for i in range(args.reacher_eval):
            distances: list[float] = []
            episode = run_episode(
                agent.env,
                agent.controller,
                seed=50_000 + i,
                on_step=lambda obs, action, info, d=distances: d.append(
                    float(np.linalg.norm(obs[8:10]))
                ),
            )
            finals.append(distances[-1])
            reached.append(min(distances) < agent.env.task.success_radius)
            successes.append(episode.success)
        print("reacher", [round(h.ret, 1) for h in history], np.mean(reached), np.mean(successes))
        body += (
            "\nTwo-link reacher (randomization on, horizon "
            f"{REACHER.planner.horizon}): {config.episodes} PETS episodes (returns "
            f"{' '.join(f'{h.ret:.0f}' for h in history)}), then {args.reacher_eval} held-out "
            f"goals (5-20 cm from the shoulder): the fingertip came within 2 cm of the goal in "
            f"**{np.mean(reached):.0%}**, was within 2 cm at the last step (the task's success) in "
            f"**{np.mean(successes):.0%}**; final distance median {100 * np.median(finals):.1f} cm, "
            f"max {100 * np.max(finals):.1f} cm ({time.perf_counter() - start:.0f} s).\n"
        )
    body += f"\nMachine: {machine_summary()}\n"
    write_section("pets_sample_efficiency", body)


if __name__ == "__main__":
    main()
