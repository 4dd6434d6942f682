"""``robot-rl sweep``: seeds and hyperparameters of the main job, in parallel on Ray."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from robot_rl.cli.run import apply_overrides
from robot_rl.config import ConfigError, load_file


def parse_grid(entries: Sequence[str]) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` entries (values parsed as YAML) -> {key: [values]}.

    A value that is itself a list goes in brackets: ``learn.model.hidden=[64,64],[128]``.
    """
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        key, sep, raw = entry.partition("=")
        if not sep or not key or not raw:
            raise ConfigError(f"--grid expects KEY=V1,V2,..., got {entry!r}")
        try:
            values = yaml.safe_load(f"[{raw}]")
        except yaml.YAMLError as err:
            raise ConfigError(f"--grid {entry}: {err}") from err
        if key in grid:
            raise ConfigError(f"--grid {key} given twice")
        grid[key] = values
    return grid


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the main job for several seeds and hyperparameter values, one trial "
        "per worker: on a local Ray instance, on a cluster (--ray-address) or in-process "
        "(--workers 1). A sweep started again with the same --name resumes.",
    )
    parser.add_argument("--config", type=Path, help="YAML or TOML base config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of the base config (repeatable)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every point")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values to sweep for a config key, e.g. "
                        "learn.planner.horizon=15,25 (repeatable: the product is swept)")  # fmt: skip
    parser.add_argument("--until", default="evaluate",
                        help="last stage of each trial (collect, learn, evaluate, deploy, "
                        "identify); the report is written when a trial runs them all")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None,
                        help="trials at once (default: min(trials, CPUs)); 1 runs in-process")  # fmt: skip
    parser.add_argument("--ray-address", help="an existing Ray cluster (default: a local instance)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where sweeps go")
    parser.add_argument("--name", default="sweep", help="the sweep's folder under --runs-dir")
    args = parser.parse_args(list(argv))

    from robot_rl.parallel import default_workers, make_executor
    from robot_rl.pipeline.stages import STAGES
    from robot_rl.pipeline.sweep import make_trials, sweep, sweep_table

    if args.until not in STAGES:
        parser.error(f"--until must be one of {list(STAGES)}")
    data = load_file(args.config) if args.config is not None else {}
    apply_overrides(data, args.set)
    trials = make_trials(data, args.seeds, parse_grid(args.grid))
    workers = args.workers or min(len(trials), default_workers())
    if workers > 1 and trials[0].config["evaluate"]["workers"] > 1:
        parser.error("trials already run in parallel: keep evaluate.workers at 1 in a sweep")
    folder = args.runs_dir / args.name
    print(f"{len(trials)} trials on {workers} worker(s) into {folder}, each up to {args.until}")
    with make_executor(workers, args.ray_address) as executor:
        rows = sweep(trials, folder, args.until, executor)
    print(sweep_table(rows))
    print(f"\ntable: {folder / 'sweep.md'}")
    return 0
