"""``robot-rl runs show|plot RUN``: summarise or plot a deployment's run record.

RUN is a record file (``runs/deploy-....h5``) or its name inside ``runs/``. Records cut short
by a crash are read too (up to their last written chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tyro

from robot_rl.hardware.record import read_run
from robot_rl.hardware.report import plot_run, summarize

RUNS_DIR = Path("runs")


def _find(run: str) -> Path:
    for candidate in (Path(run), RUNS_DIR / run, RUNS_DIR / f"{run}.h5"):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"no run record {run!r} (looked for it as a file and in {RUNS_DIR}/)")


def show(run: str, /) -> int:
    """Summarise a run: robot, policy, termination, timing, episodes, safety events.

    Args:
        run: record file, or its name in runs/.
    """
    print(summarize(read_run(_find(run))))
    return 0


def plot(run: str, /, out: Path | None = None) -> int:
    """Plot a run to PNG files: commands, joints, timing, episodes.

    Args:
        run: record file, or its name in runs/.
        out: folder for the PNGs (default: next to the record, <record>_plots/).
    """
    path = _find(run)
    folder = out or path.with_name(f"{path.stem}_plots")
    for written in plot_run(read_run(path), folder):
        print(written)
    return 0


def main(argv: Sequence[str], prog: str) -> int:
    return int(
        tyro.extras.subcommand_cli_from_dict(
            {"show": show, "plot": plot}, prog=prog, args=list(argv)
        )
    )
