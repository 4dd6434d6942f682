from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from robot_rl.hardware import Event, EventKind, RunRecorder, Termination, mock_spec, read_run
from robot_rl.hardware.record import CycleRecord, EpisodeRecord, intervention_mask

REPO = Path(__file__).resolve().parents[2]


def row(i: int, n: int = 2) -> CycleRecord:
    v = np.full(n, float(i))
    return CycleRecord(
        cycle=i, episode=0, step=i, seq=i, t_start=0.01 * i, t_robot=0.01 * i, lateness=1e-4,
        compute=2e-4, overrun=i == 3, skipped=int(i == 4), round_trip=np.nan, robot_missed=0,
        position=v, velocity=-v, effort=v, observation=np.concatenate([v, -v]), action=v / 10,
        desired=v, applied=v / 2, robot_applied=v / 2, reward=-float(i), cost=0.0,
        success=False, interventions=intervention_mask([Event(i, 0.0, EventKind.SLEW_LIMIT)]),
    )  # fmt: skip


def test_a_record_reads_back_exactly(tmp_path: Path) -> None:
    spec = mock_spec()
    recorder = RunRecorder(
        tmp_path / "run.h5", spec, 4, attrs={"policy": "test", "rate": 100.0}, chunk_cycles=8
    )
    for i in range(21):
        recorder.append(row(i))
    recorder.add_events(
        [
            Event(3, 0.03, EventKind.OVERRUN, detail="late"),
            Event(5, 0.05, EventKind.NON_FINITE, 1, "nan"),
        ]
    )
    recorder.add_episode(EpisodeRecord(0, 0, 21, -210.0, 0.0, False, "completed"))
    recorder.close(Termination.COMPLETED, {"overruns": 1})

    log = read_run(tmp_path / "run.h5")
    assert log.complete
    assert log.termination == "completed"
    assert log.n_cycles == 21
    assert log.attrs["policy"] == "test"
    assert log.attrs["loop_stats"] == {"overruns": 1}
    assert log.spec.to_dict() == spec.to_dict()
    np.testing.assert_array_equal(log.cycles["applied"][:, 0], np.arange(21) / 2)
    np.testing.assert_array_equal(log.cycles["observation"][5], [5, 5, -5, -5])
    assert log.cycles["overrun"].sum() == 1
    assert log.lost_cycles() == 1
    assert log.cycles["interventions"][0] == 1 << EventKind.SLEW_LIMIT.value
    assert [(e.kind, e.joint, e.detail) for e in log.events] == [
        (EventKind.OVERRUN, -1, "late"),
        (EventKind.NON_FINITE, 1, "nan"),
    ]
    assert log.episodes["return"][0] == -210.0
    with pytest.raises(FileExistsError):
        RunRecorder(tmp_path / "run.h5", spec, 4)


def test_a_crash_loses_at_most_the_last_chunk(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / "tests" / "hardware")!r})
        from test_record import row
        from robot_rl.hardware import RunRecorder, mock_spec
        recorder = RunRecorder({str(path)!r}, mock_spec(), 4, chunk_cycles=10)
        for i in range(37):
            recorder.append(row(i))
        os.kill(os.getpid(), signal.SIGKILL)  # crash with 7 rows still buffered
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    log = read_run(path)
    assert not log.complete
    assert log.termination == "incomplete"
    assert log.n_cycles == 30  # three flushed chunks; the 7 buffered rows are lost
    np.testing.assert_array_equal(log.cycles["cycle"], np.arange(30))
    from robot_rl.hardware.report import summarize

    assert "INCOMPLETE" in summarize(log)


def test_reading_something_else_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 run record"):
        read_run(bogus)
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path / "missing.h5")
