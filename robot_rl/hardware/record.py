"""Run records: every control cycle of a deployment in one self-describing HDF5 file.

Layout of a record (format ``robot_rl.run/1``)::

    attrs     format, robot_rl_version, created (UTC ISO 8601), robot (name), spec (JSON of
              the RobotSpec), plus what the caller adds (backend, engine, rate, policy,
              protocol ...); on a clean close also complete=True, termination, cycles and
              loop_stats (JSON). A record without ``complete`` was cut short by a crash.
    /cycles   one row per control cycle: a compound dataset with the fields
              cycle, episode, step, seq            int
              t_start, t_robot                     s (host clock since run start; robot clock)
              lateness, compute                    s (cycle start after its deadline; work)
              overrun                              bool
              skipped                              deadlines skipped before the cycle
              round_trip                           s, robot-measured (NaN if not measured)
              robot_missed                         commands the robot counted missing or late
                                                   since the previous cycle
              position, velocity, effort           (n_joints,)
              observation                          (obs_dim,) the task observation
              action                               (n_act,) policy output, normalised
              desired, applied                     (n_act,) command asked for / sent
              robot_applied                        (n_act,) command in force as the robot reports
              reward, cost, success                task scores of the transition into this cycle
              interventions                        bitmask, bit k set if an event of kind k
    /events   cycle, time, kind (EventKind value), joint, source (EventSource value), detail;
              attrs kinds: JSON {value: name}
    /episodes episode, start_cycle, cycles, return, cost, success, termination

The file is written in SWMR mode: rows are buffered and appended every ``chunk_cycles``
cycles (and at every episode end), then flushed, so a crash loses at most the rows since the
last flush and the file stays readable (``read_run`` opens it with ``swmr=True``). All of a
cycle's fields live in one compound dataset, so a flush is a single append.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from robot_rl.hardware.description import RobotSpec
from robot_rl.hardware.events import Event, EventKind, EventSource, Termination

RECORD_FORMAT = "robot_rl.run/1"
DETAIL_BYTES = 120


@dataclass(frozen=True)
class CycleRecord:
    """One control cycle, as recorded. Shapes as in the module docstring."""

    cycle: int
    episode: int
    step: int
    seq: int
    t_start: float
    t_robot: float
    lateness: float
    compute: float
    overrun: bool
    skipped: int
    round_trip: float
    robot_missed: int
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    observation: np.ndarray
    action: np.ndarray
    desired: np.ndarray
    applied: np.ndarray
    robot_applied: np.ndarray
    reward: float
    cost: float
    success: bool
    interventions: int


@dataclass(frozen=True)
class EpisodeRecord:
    """Totals of one episode."""

    episode: int
    start_cycle: int
    cycles: int
    ret: float
    cost: float
    success: bool
    termination: str


_SCALARS = {  # per-cycle scalar fields and their types
    "cycle": "i8",
    "episode": "i4",
    "step": "i4",
    "seq": "i8",
    "t_start": "f8",
    "t_robot": "f8",
    "lateness": "f8",
    "compute": "f8",
    "overrun": "u1",
    "skipped": "i4",
    "round_trip": "f8",
    "robot_missed": "i8",
    "reward": "f8",
    "cost": "f8",
    "success": "u1",
    "interventions": "u8",
}
EVENT_DTYPE = np.dtype(
    [
        ("cycle", "i8"),
        ("time", "f8"),
        ("kind", "i2"),
        ("joint", "i2"),
        ("source", "i1"),
        ("detail", f"S{DETAIL_BYTES}"),
    ]
)
EPISODE_DTYPE = np.dtype(
    [
        ("episode", "i4"),
        ("start_cycle", "i8"),
        ("cycles", "i4"),
        ("return", "f8"),
        ("cost", "f8"),
        ("success", "u1"),
        ("termination", "S32"),
    ]
)


def cycle_dtype(n_joints: int, n_act: int, obs_dim: int) -> np.dtype:
    """The compound dtype of one recorded cycle (``CycleRecord``'s fields, in order)."""
    widths = {
        "position": n_joints,
        "velocity": n_joints,
        "effort": n_joints,
        "observation": obs_dim,
        "action": n_act,
        "desired": n_act,
        "applied": n_act,
        "robot_applied": n_act,
    }
    fields = []
    for f in dataclasses.fields(CycleRecord):
        if f.name in widths:
            fields.append((f.name, "f4" if f.name == "observation" else "f8", (widths[f.name],)))
        else:
            fields.append((f.name, _SCALARS[f.name]))
    return np.dtype(fields)


def intervention_mask(events: list[Event] | tuple[Event, ...]) -> int:
    """Bitmask with bit ``kind.value`` set for each event kind in ``events``."""
    mask = 0
    for e in events:
        mask |= 1 << e.kind.value
    return mask


class RunRecorder:
    """Writes a run record (see the module docstring).

    Args:
        path: the .h5 file to create (its folder is created; an existing file is refused).
        spec: the robot.
        obs_dim: length of the recorded observation.
        attrs: extra attributes describing the run (JSON-serialisable values).
        chunk_cycles: rows buffered before each append and flush.
    """

    def __init__(
        self,
        path: str | Path,
        spec: RobotSpec,
        obs_dim: int,
        attrs: Mapping[str, Any] | None = None,
        chunk_cycles: int = 100,
    ) -> None:
        if chunk_cycles < 1:
            raise ValueError(f"chunk_cycles must be >= 1, got {chunk_cycles}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"run record {self.path} already exists")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.chunk_cycles = chunk_cycles
        self._rows = 0  # buffered rows
        self._events: list[Event] = []
        self._episodes: list[EpisodeRecord] = []
        self._cycles = 0
        from robot_rl import __version__

        f = self._file = h5py.File(self.path, "w", libver="latest")
        f.attrs["format"] = RECORD_FORMAT
        f.attrs["robot_rl_version"] = __version__
        f.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        f.attrs["robot"] = spec.name
        f.attrs["spec"] = json.dumps(spec.to_dict())
        for key, value in (attrs or {}).items():
            f.attrs[key] = (
                value if isinstance(value, str | int | float | bool) else json.dumps(value)
            )
        self._dtype = cycle_dtype(spec.n_joints, spec.n_act, obs_dim)
        self._buffer = np.zeros(chunk_cycles, self._dtype)
        f.create_dataset(
            "cycles", shape=(0,), maxshape=(None,), chunks=(chunk_cycles,), dtype=self._dtype
        )
        events = f.create_dataset(
            "events", shape=(0,), maxshape=(None,), chunks=(256,), dtype=EVENT_DTYPE
        )
        events.attrs["kinds"] = json.dumps({k.value: k.name for k in EventKind})
        f.create_dataset(
            "episodes", shape=(0,), maxshape=(None,), chunks=(64,), dtype=EPISODE_DTYPE
        )
        f.swmr_mode = True

    @property
    def cycles(self) -> int:
        """Cycles recorded so far (buffered ones included)."""
        return self._cycles

    def append(self, row: CycleRecord) -> None:
        """Buffer one cycle; every ``chunk_cycles`` cycles the buffer is written and flushed."""
        self._buffer[self._rows] = tuple(getattr(row, name) for name in self._dtype.names)
        self._rows += 1
        self._cycles += 1
        if self._rows >= self.chunk_cycles:
            self.flush()

    def add_events(self, events: list[Event] | tuple[Event, ...]) -> None:
        """Buffer events (written with the next flush)."""
        self._events.extend(events)

    def add_episode(self, episode: EpisodeRecord) -> None:
        """Record an episode's totals and flush."""
        self._episodes.append(episode)
        self.flush()

    def flush(self) -> None:
        """Append the buffered rows, events and episodes to the file and flush it to disk."""
        f = self._file
        if self._rows:
            _append(f["cycles"], self._buffer[: self._rows])
            self._rows = 0
        if self._events:
            rows = np.array(
                [
                    (
                        e.cycle,
                        e.time,
                        e.kind.value,
                        e.joint,
                        e.source.value,
                        e.detail.encode("utf-8", "replace")[:DETAIL_BYTES],
                    )
                    for e in self._events
                ],
                dtype=EVENT_DTYPE,
            )
            _append(f["events"], rows)
            self._events.clear()
        if self._episodes:
            rows = np.array(
                [
                    (e.episode, e.start_cycle, e.cycles, e.ret, e.cost, e.success, e.termination)
                    for e in self._episodes
                ],
                dtype=EPISODE_DTYPE,
            )
            _append(f["episodes"], rows)
            self._episodes.clear()
        f.flush()

    def close(self, termination: Termination, stats: Mapping[str, Any] | None = None) -> None:
        """Flush, close, and mark the record complete with its termination reason."""
        if self._file is None:
            return
        self.flush()
        self._file.close()
        self._file = None
        with h5py.File(self.path, "r+") as f:
            f.attrs["complete"] = True
            f.attrs["termination"] = termination.value
            f.attrs["cycles"] = self._cycles
            f.attrs["loop_stats"] = json.dumps(dict(stats or {}), default=_json_default)

    def abandon(self) -> None:
        """Close without marking the record complete (what a crash leaves, minus the buffer)."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(rows), axis=0)
    ds[n:] = rows


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class RunLog:
    """A run record read back.

    Attributes:
        path: the file.
        attrs: its attributes (JSON strings decoded where they parse).
        spec: the robot.
        cycles: column name -> array (see the module docstring).
        events: every event, in order.
        episodes: structured array with the ``EPISODE_DTYPE`` fields.
    """

    path: Path
    attrs: dict[str, Any]
    spec: RobotSpec
    cycles: dict[str, np.ndarray]
    events: tuple[Event, ...]
    episodes: np.ndarray

    @property
    def complete(self) -> bool:
        """Whether the run was closed cleanly (False: it crashed or is still running)."""
        return bool(self.attrs.get("complete", False))

    @property
    def termination(self) -> str:
        return str(self.attrs.get("termination", "incomplete"))

    @property
    def n_cycles(self) -> int:
        return len(self.cycles["cycle"])

    def event_counts(self) -> dict[str, int]:
        """Event kind name -> count."""
        counts: dict[str, int] = {}
        for e in self.events:
            counts[e.kind.name] = counts.get(e.kind.name, 0) + 1
        return counts

    def lost_cycles(self) -> int:
        """Cycles lost: deadlines the loop skipped plus commands the robot counted missing."""
        c = self.cycles
        return int(c["skipped"].sum() + c["robot_missed"].sum())


def read_run(path: str | Path) -> RunLog:
    """Read a run record, complete or cut short by a crash.

    Raises:
        ValueError: the file is not a robot_rl run record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run record {path} does not exist")
    try:
        f = h5py.File(path, "r", swmr=True)
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 run record: {err}") from err
    with f:
        if f.attrs.get("format") != RECORD_FORMAT:
            raise ValueError(f"{path} is not a {RECORD_FORMAT} record")
        attrs = {key: _decode(value) for key, value in f.attrs.items()}
        table = f["cycles"][()]
        cycles = {name: table[name] for name in table.dtype.names}
        raw_events = f["events"][()]
        episodes = f["episodes"][()]
    events = tuple(
        Event(
            int(r["cycle"]),
            float(r["time"]),
            EventKind(int(r["kind"])),
            int(r["joint"]),
            r["detail"].decode("utf-8", "replace"),
            EventSource(int(r["source"])),
        )
        for r in raw_events
    )
    spec = RobotSpec.from_dict(attrs["spec"])
    return RunLog(path, attrs, spec, cycles, events, episodes)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def episode_summary(log: RunLog) -> list[dict[str, Any]]:
    """The episodes table as dicts (return, cost, success ...)."""
    return [
        {
            "episode": int(e["episode"]),
            "start_cycle": int(e["start_cycle"]),
            "cycles": int(e["cycles"]),
            "return": float(e["return"]),
            "cost": float(e["cost"]),
            "success": bool(e["success"]),
            "termination": e["termination"].decode(),
        }
        for e in log.episodes
    ]


def nan_array(n: int) -> np.ndarray:
    """(n,) of NaN: the value recorded for an absent vector."""
    return np.full(n, math.nan)
