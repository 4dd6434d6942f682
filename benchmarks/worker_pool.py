"""Run benchmark jobs as subprocesses, a few at a time, keeping every finished result.

Each job is one process (so no torch setting or RNG leaks between runs) that prints its
result as one JSON line last. Results are appended to a JSON-lines file as they finish, each
with the arguments that made it, and a job whose arguments are already in the file is
skipped: an interrupted benchmark resumes where it stopped, and a run with other settings
(budget, network, gains) is never taken for one already done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_jobs(
    jobs: Sequence[dict],
    argv: Callable[[dict], list[str]],
    out: Path,
    parallel: int,
    describe: Callable[[dict], str] = json.dumps,
) -> list[dict]:
    """Run every job not yet in ``out``; return all results (old and new).

    Args:
        jobs: job descriptions.
        argv: the arguments after ``python`` that run a job: the script, then the arguments
            that identify the job (stored with its result as ``"job"``).
        out: JSON-lines file of results.
        parallel: processes at once.
        describe: one line printed per finished result.
    """
    results = (
        [json.loads(line) for line in out.read_text().splitlines() if line] if out.exists() else []
    )
    done = {tuple(r["job"]) for r in results if "job" in r}
    pending = [job for job in jobs if tuple(argv(job)[1:]) not in done]
    running: list[tuple[subprocess.Popen, dict, Path]] = []
    env = dict(os.environ, ROBOT_RL_NO_PROGRESS="1", PYTHONPATH=str(ROOT))
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            fd, name = tempfile.mkstemp(suffix=".out")
            with os.fdopen(fd, "w") as stdout:  # a file, not a pipe: no size limit
                proc = subprocess.Popen(
                    [sys.executable, *argv(job)], stdout=stdout, stderr=subprocess.DEVNULL, env=env
                )
            running.append((proc, job, Path(name)))
        time.sleep(1.0)
        for proc, job, path in list(running):
            if proc.poll() is None:
                continue
            running.remove((proc, job, path))
            lines = path.read_text().strip().splitlines()
            path.unlink()
            if proc.returncode != 0 or not lines:
                print(f"FAILED {job}", file=sys.stderr, flush=True)
                continue
            result = json.loads(lines[-1]) | {"job": argv(job)[1:]}
            results.append(result)
            with out.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(describe(result), flush=True)
    return results
