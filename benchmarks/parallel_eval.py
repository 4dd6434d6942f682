"""Parallel evaluation over randomized parameter draws: 2 Ray workers against 1 (issue 8).

The workload is the main job's evaluate stage: the learned PETS controller (iCEM on the
ensemble, about 25 ms per action) run for one episode on each of N randomized cart-pole draws.
A run folder of ``robot-rl run`` supplies the trained model (``--run``); without one, the
default job's collect and learn stages run first into a temporary folder.

Rounds alternate the two settings side by side. Each round times ``evaluate_jobs`` alone;
starting the local Ray instance (once, a fixed cost a sweep or a cluster pays once) is timed
separately. The per-episode results of both settings must agree exactly (a fresh, seeded
policy per episode), which the script checks.

Usage: python benchmarks/parallel_eval.py [--run runs/RUN] [--episodes 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

from common import machine_summary, markdown_table, write_section

from robot_rl.config import build, to_dict
from robot_rl.parallel import InProcessExecutor, RayExecutor, evaluate_jobs, randomized_jobs
from robot_rl.pipeline import RunConfig, RunDir, execute, start
from robot_rl.pipeline.stages import EVAL_SEED, learned_controller, success_window


def trained_run(path: Path | None, scratch: Path) -> RunDir:
    if path is not None:
        return RunDir.open(path)
    config = RunConfig()
    run = start(config, scratch, "parallel-eval")
    execute(run, config, until="learn")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, help="a robot-rl run folder with a finished learn stage"
    )
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        run = trained_run(args.run, Path(scratch))
        config = build(RunConfig, run.config)
        make_policy = functools.partial(
            learned_controller, to_dict(config), str(run.path / "learn")
        )
        jobs = randomized_jobs(
            config.env, config.engine.value, args.episodes, seed=config.seed + EVAL_SEED
        )
        window = success_window(config.env)
        start_ray = time.perf_counter()
        ray_executor = RayExecutor(2)
        ray_start_s = time.perf_counter() - start_ray
        evaluate_jobs(make_policy, jobs[:2], ray_executor, window)  # workers import robot_rl
        times: dict[int, list[float]] = {1: [], 2: []}
        results = {}
        try:
            for round_ in range(args.rounds):
                for workers, executor in ((1, InProcessExecutor()), (2, ray_executor)):
                    t = time.perf_counter()
                    results[workers] = evaluate_jobs(make_policy, jobs, executor, window)
                    times[workers].append(time.perf_counter() - t)
                    print(f"round {round_}: {workers} worker(s) {times[workers][-1]:.1f} s")
        finally:
            ray_executor.close()
    same = [(r.ret, r.success) for r in results[1]] == [(r.ret, r.success) for r in results[2]]
    one, two = statistics.median(times[1]), statistics.median(times[2])
    speedup = one / two
    rows = [
        ["1 (in-process)", f"{one:.1f}", f"{min(times[1]):.1f}", "1.00"],
        ["2 (local Ray)", f"{two:.1f}", f"{min(times[2]):.1f}", f"{speedup:.2f}"],
    ]
    table = markdown_table(
        ["workers", "median, s", "best, s", "speed-up (median)"],
        rows,
    )
    successes = sum(r.success for r in results[1])
    body = (
        "## Parallel evaluation (`benchmarks/parallel_eval.py`)\n\n"
        f"The main job's evaluate stage: the learned PETS controller on {args.episodes} "
        f"randomized cart-pole draws (one 100-step episode each), {args.rounds} rounds, "
        "the two settings alternating.\n\n"
        f"{table}\n\n"
        f"Starting the local Ray instance took {ray_start_s:.1f} s (once, not in the times "
        f"above). Per-episode returns and successes identical with 1 and 2 workers: "
        f"**{'yes' if same else 'NO'}** ({successes}/{args.episodes} successful).\n\n"
        f"Speed-up of 2 workers over 1 on this 2-core machine: **{speedup:.2f}x**.\n\n"
        f"Machine: {machine_summary()}\n"
    )
    print(body)
    write_section("parallel_eval", body)


if __name__ == "__main__":
    main()
