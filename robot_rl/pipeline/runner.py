"""Run the main job's stages in order in a run folder, skipping those already done."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from robot_rl.config import build, to_dict
from robot_rl.pipeline.config import RunConfig
from robot_rl.pipeline.report import summary_table, write_report
from robot_rl.pipeline.rundir import RunDir
from robot_rl.pipeline.stages import STAGES, Context


def start(config: RunConfig, root: Path, name: str | None = None) -> RunDir:
    """A new run folder for ``config`` under ``root``."""
    return RunDir.create(root, to_dict(config), name)


def resume(path: Path) -> tuple[RunDir, RunConfig]:
    """An existing run folder and its configuration (validated again)."""
    run = RunDir.open(path)
    return run, build(RunConfig, run.config)


def execute(
    run: RunDir, config: RunConfig, until: str | None = None, quiet: bool = False
) -> Path | None:
    """Run every stage not yet done, then write the report; returns the report's path.

    Args:
        until: stop after this stage (a key of ``STAGES``); the report is written only when
            every stage is done (None: run them all).
        quiet: no stage messages or summary table (sweep trials).

    Returns:
        The report, or None when ``until`` stopped the run before the last stage.
    """
    if until is not None and until not in STAGES:
        raise ValueError(f"until must be one of {list(STAGES)}, got {until!r}")
    say = (lambda text: None) if quiet else tqdm.write
    ctx = Context(config, run)
    total = time.perf_counter()
    for name, stage in STAGES.items():
        if run.done(name):
            say(f"[{name}] done earlier, skipped")
        else:
            say(f"[{name}] ...")
            start_time = time.perf_counter()
            summary = stage(ctx)
            seconds = time.perf_counter() - start_time
            run.mark_done(name, summary, seconds)
            say(f"[{name}] finished in {seconds:.0f} s")
        if name == until:
            break
    if not all(run.done(name) for name in STAGES):
        return None
    report = write_report(run)
    run.mark_done("report", {"path": str(report)}, 0.0)
    say(f"\nrun {run.path} finished in {time.perf_counter() - total:.0f} s this session\n")
    say(summary_table(run))
    say(f"\nreport: {report}")
    return report
