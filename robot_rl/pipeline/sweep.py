"""Seed and hyperparameter sweeps of the main job, one trial per worker (Ray or in-process).

A sweep is the grid product of seeds and of values for dotted config keys, each trial a
``RunConfig`` (the base config with the trial's overrides) run in its own run folder under
``<runs-dir>/<sweep name>/`` up to a chosen stage. Trials run as Ray tasks when there is more
than one worker or a cluster address, else one after the other in this process. A sweep that
is started again with the same name resumes: finished trials are read back, unfinished ones
continue from their last finished stage.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.config import build, set_dotted, to_dict
from robot_rl.parallel import Executor
from robot_rl.pipeline.config import RunConfig
from robot_rl.pipeline.rundir import RunDir, write_json_atomic
from robot_rl.pipeline.runner import execute


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: a name (its folder) and the config it runs."""

    name: str
    overrides: dict[str, Any]
    """Dotted key -> value, the seed included."""
    config: dict[str, Any]
    """The resolved ``RunConfig`` as plain data (picklable for Ray workers)."""


def make_trials(
    base: Mapping[str, Any], seeds: Sequence[int], grid: Mapping[str, Sequence[Any]]
) -> list[Trial]:
    """Every combination of ``grid`` values and seeds applied to ``base``, validated up front.

    Raises:
        robot_rl.config.ConfigError: a trial's config is invalid (named by its overrides).
    """
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    keys = list(grid)
    # Folder names use the keys' last parts unless two keys share one.
    last_parts = [k.rsplit(".", 1)[-1] for k in [*keys, "seed"]]
    short = len(set(last_parts)) == len(last_parts)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)):
        for seed in seeds:
            overrides = dict(zip(keys, values, strict=True)) | {"seed": int(seed)}
            data = copy.deepcopy(dict(base))
            for key, value in overrides.items():
                set_dotted(data, key, value)
            config = build(RunConfig, data)
            trials.append(Trial(_name(overrides, short), overrides, to_dict(config)))
    return trials


def _name(overrides: Mapping[str, Any], short: bool) -> str:
    """A trial's folder name: ``key=value`` pairs, keys by their last part when ``short``."""
    return "-".join(
        f"{k.rsplit('.', 1)[-1] if short else k}={_compact(v)}" for k, v in overrides.items()
    )


def _compact(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "x".join(_compact(v) for v in value)
    return str(value).replace("/", "_")


def run_trial(job: tuple[Trial, str, str]) -> dict[str, Any]:
    """Run (or resume) one trial up to a stage and return its row for the sweep table.

    Args:
        job: (trial, sweep folder, last stage to run); a tuple so Ray can ship it whole.
    """
    trial, folder, until = job
    path = Path(folder) / trial.name
    config = build(RunConfig, trial.config)
    start = time.perf_counter()
    if (path / "manifest.json").is_file():
        run = RunDir.open(path)
    else:
        run = RunDir.create(Path(folder), trial.config, trial.name)
    execute(run, config, until=until, quiet=True)
    return {
        "trial": trial.name,
        "overrides": trial.overrides,
        "run": str(run.path),
        "seconds": round(time.perf_counter() - start, 1),
        **trial_figures(run),
    }


def trial_figures(run: RunDir) -> dict[str, Any]:
    """The headline figures of whatever stages a trial has finished."""
    figures: dict[str, Any] = {}
    if run.done("learn"):
        learn = run.summary("learn")
        figures["episodes"] = learn["episodes"]
        figures["episodes_to_success"] = learn["episodes_to_success"]
    if run.done("evaluate"):
        evaluate = run.summary("evaluate")
        figures["eval_success_rate"] = evaluate["success_rate"]
        figures["eval_mean_return"] = evaluate["mean_return"]
    if run.done("deploy"):
        learned = run.summary("deploy")["controllers"].get("learned")
        if learned is not None:
            figures["robot_return"] = learned["robot"]["mean_return"]
    return figures


def sweep(
    trials: Sequence[Trial], folder: Path, until: str, executor: Executor
) -> list[dict[str, Any]]:
    """Run every trial on ``executor`` and write ``sweep.json`` and ``sweep.md`` in ``folder``.

    Returns:
        One row per trial, in the order of ``trials``.
    """
    folder = Path(folder).resolve()  # Ray workers may not share this process's directory
    folder.mkdir(parents=True, exist_ok=True)
    rows = executor.map(run_trial, [(t, str(folder), until) for t in trials])
    write_json_atomic(folder / "sweep.json", {"until": until, "trials": rows})
    (folder / "sweep.md").write_text(sweep_table(rows) + "\n")
    return rows


def sweep_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of the trials, then the mean and spread of each figure over them."""
    columns = ["episodes_to_success", "eval_success_rate", "eval_mean_return", "robot_return"]
    present = [c for c in columns if any(c in r for r in rows)]
    lines = [
        "| trial | " + " | ".join(present) + " | seconds |",
        "|---" * (len(present) + 2) + "|",
    ]
    for r in rows:
        cells = [_cell(r.get(c)) for c in present]
        lines.append(f"| {r['trial']} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    means = []
    for c in present:
        values = [float(r[c]) for r in rows if r.get(c) is not None]
        means.append(f"{np.mean(values):.3g} ± {np.std(values):.2g}" if values else "n/a")
    lines.append("| mean ± std | " + " | ".join(means) + " | |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
