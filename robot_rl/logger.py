"""One logger for every metric, with pluggable outputs (stdout, CSV, TensorBoard).

Metrics are namespaced, ``section/name`` (``train/actor_loss``, ``rollout/return``,
``time/fps``). Values are recorded during an iteration and written together by ``dump(step)``.
Long loops show a progress bar through ``progress``; stdout lines are written through tqdm so
they do not break the bar.
"""

from __future__ import annotations

import abc
import csv
import enum
import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class LogFormat(enum.Enum):
    """Where metrics go."""

    STDOUT = "stdout"
    CSV = "csv"
    TENSORBOARD = "tensorboard"


class LogOutput(abc.ABC):
    """A sink for one dump of metrics.

    Subclasses implement ``write``; ``close`` releases files.
    """

    @abc.abstractmethod
    def write(self, values: Mapping[str, float], step: int) -> None:
        """Write the metrics recorded at ``step``."""

    def close(self) -> None:
        """Flush and release resources."""


class StdoutOutput(LogOutput):
    """A compact table per dump, grouped by namespace."""

    def write(self, values: Mapping[str, float], step: int) -> None:
        if not values:
            return
        width = max(len(k) for k in values)
        lines = [f"step {step}"]
        for key in sorted(values):
            lines.append(f"  {key:<{width}}  {_format(values[key])}")
        tqdm.write("\n".join(lines), file=sys.stdout)


class CSVOutput(LogOutput):
    """One row per dump; the header grows when a new metric appears (the file is rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                reader = csv.reader(f)
                self._keys = next(reader, [])[1:]

    def write(self, values: Mapping[str, float], step: int) -> None:
        new_keys = [k for k in sorted(values) if k not in self._keys]
        if new_keys or not self.path.exists():
            self._rewrite_with(self._keys + new_keys)
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([step, *(_csv_value(values.get(k)) for k in self._keys)])

    def _rewrite_with(self, keys: list[str]) -> None:
        rows: list[list[str]] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                rows = list(csv.reader(f))[1:]
        pad = len(keys) - len(self._keys)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", *keys])
            for row in rows:
                writer.writerow(row + [""] * pad)
        tmp.replace(self.path)
        self._keys = keys


class TensorBoardOutput(LogOutput):
    """Scalars to a TensorBoard event file (needs the ``tensorboard`` extra)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # pragma: no cover - depends on the optional extra
            raise RuntimeError(
                "TensorBoard output needs the tensorboard package: pip install 'robot-rl[tensorboard]'"
            ) from err
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class Logger:
    """Collects metrics and writes them to every output on ``dump``.

    Example:
        >>> log = Logger([StdoutOutput()])
        >>> log.record("rollout/return", -12.5)
        >>> log.dump(step=1000)  # doctest: +SKIP
    """

    def __init__(self, outputs: Sequence[LogOutput] = ()) -> None:
        self.outputs = list(outputs)
        self._values: dict[str, float] = {}

    def record(self, key: str, value: float) -> None:
        """Record ``value`` for ``key`` (``section/name``); the last value before a dump wins."""
        if "/" not in key:
            raise ValueError(f"metric {key!r} must be namespaced as 'section/name'")
        self._values[key] = float(value)

    def record_many(self, values: Mapping[str, float]) -> None:
        """Record several metrics at once."""
        for key, value in values.items():
            self.record(key, value)

    def dump(self, step: int) -> dict[str, float]:
        """Write the recorded metrics at ``step`` and clear them; returns what was written."""
        values, self._values = self._values, {}
        for output in self.outputs:
            output.write(values, step)
        return values

    def close(self) -> None:
        for output in self.outputs:
            output.close()


def make_logger(run_dir: Path | None, formats: Iterable[LogFormat | str]) -> Logger:
    """Build a logger writing ``formats`` (file outputs go to ``run_dir``)."""
    outputs: list[LogOutput] = []
    for fmt in (LogFormat(f) for f in formats):
        if fmt is LogFormat.STDOUT:
            outputs.append(StdoutOutput())
            continue
        if run_dir is None:
            raise ValueError(f"log format {fmt.value!r} needs a run directory")
        if fmt is LogFormat.CSV:
            outputs.append(CSVOutput(Path(run_dir) / "progress.csv"))
        else:
            outputs.append(TensorBoardOutput(Path(run_dir) / "tb"))
    return Logger(outputs)


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """A progress bar on stderr around ``iterable`` (quiet under ``ROBOT_RL_NO_PROGRESS``)."""
    import os

    disable = bool(os.environ.get("ROBOT_RL_NO_PROGRESS"))
    yield from tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=disable,
        dynamic_ncols=True,
        mininterval=0.5,
        file=sys.stderr,
    )


def _format(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def _csv_value(value: float | None) -> str:
    return "" if value is None else repr(value)
