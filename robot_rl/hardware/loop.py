"""A fixed-rate control loop with deadline accounting, observation history and action filtering.

``FixedRateLoop`` keeps time for one control loop. Cycle k is due at ``t0 + k · period``;
``wait()`` sleeps until then (``Pacing.TIMER``), returns at once when the robot keeps the
rate itself (``Pacing.ROBOT``: a networked robot whose ``read()`` blocks until its next
sample) or runs flat out (``Pacing.NONE``: a simulated robot faster than real time). ``finish``
records how long the cycle took. A cycle whose work ends after the next deadline is an
**overrun**; when a cycle starts more than a whole period late, the deadlines it missed are
**skipped** (the loop keeps its phase rather than bursting to catch up) and counted as lost
cycles. ``stats()`` summarises period, jitter (lateness of each start against its deadline),
compute time, overruns and skipped cycles.

``ObservationHistory`` and ``LowPassFilter`` reproduce the frame stacking and action smoothing
a policy may have been trained with.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class Pacing(enum.Enum):
    """Who keeps the loop's rate."""

    TIMER = "timer"  # the loop sleeps until each deadline
    ROBOT = "robot"  # the robot's read() blocks until its next sample
    NONE = "none"  # no waiting: simulated time, as fast as possible


@dataclass(frozen=True)
class Tick:
    """The start of one cycle.

    Attributes:
        index: cycle number (counts skipped deadlines too).
        deadline: when the cycle was due, s (loop clock).
        start: when it started, s.
        skipped: deadlines skipped just before this cycle.
    """

    index: int
    deadline: float
    start: float
    skipped: int = 0

    @property
    def lateness(self) -> float:
        """start - deadline, s."""
        return self.start - self.deadline


@dataclass(frozen=True)
class CycleTiming:
    """How one cycle went.

    Attributes:
        tick: its start.
        end: when its work ended, s.
        overrun: whether the work ended after the next deadline.
    """

    tick: Tick
    end: float
    overrun: bool

    @property
    def compute(self) -> float:
        """Time from the start of the cycle to the end of its work, s."""
        return self.end - self.tick.start


@dataclass(frozen=True)
class LoopStats:
    """Timing of a whole run of a loop. Times in seconds.

    Attributes:
        rate: the loop's target rate, Hz.
        cycles: cycles run.
        skipped: deadlines skipped (cycles lost).
        overruns: cycles whose work ran past the next deadline.
        period_mean, period_std: of the time between consecutive cycle starts.
        lateness_p50, lateness_p99, lateness_max: of each start after its deadline (jitter).
        compute_p50, compute_p99, compute_max: of each cycle's work.
    """

    rate: float
    cycles: int
    skipped: int
    overruns: int
    period_mean: float
    period_std: float
    lateness_p50: float
    lateness_p99: float
    lateness_max: float
    compute_p50: float
    compute_p99: float
    compute_max: float

    @classmethod
    def from_arrays(
        cls,
        rate: float,
        periods: np.ndarray,
        lateness: np.ndarray,
        compute: np.ndarray,
        skipped: int,
        overruns: int,
    ) -> LoopStats:
        """Summarise per-cycle times, s: periods between consecutive starts, lateness of each
        start, compute time of each cycle."""

        def pct(x: np.ndarray, q: float) -> float:
            return float(np.percentile(x, q)) if len(x) else math.nan

        return cls(
            rate=rate,
            cycles=len(compute),
            skipped=skipped,
            overruns=overruns,
            period_mean=float(periods.mean()) if len(periods) else math.nan,
            period_std=float(periods.std()) if len(periods) else math.nan,
            lateness_p50=pct(lateness, 50),
            lateness_p99=pct(lateness, 99),
            lateness_max=float(lateness.max()) if len(lateness) else math.nan,
            compute_p50=pct(compute, 50),
            compute_p99=pct(compute, 99),
            compute_max=float(compute.max()) if len(compute) else math.nan,
        )


class FixedRateLoop:
    """Deadlines and their accounting for a loop at ``rate`` Hz.

    Args:
        rate: target rate, Hz.
        pacing: who keeps the rate.
        spin: with TIMER pacing, sleep until this long before each deadline and busy-wait
            the rest, s (trades CPU for jitter; 0 to only sleep).
        clock: monotonic clock, s (injectable for tests).
        sleep: sleep function, s (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        pacing: Pacing = Pacing.TIMER,
        spin: float = 2e-4,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of Hz, got {rate}")
        if spin < 0:
            raise ValueError(f"spin must be >= 0 s, got {spin}")
        self.rate = float(rate)
        self.period = 1.0 / self.rate
        self.pacing = Pacing(pacing)
        self.spin = spin
        self.clock = clock
        self._sleep = sleep
        self._t0: float | None = None
        self._next = 0
        self._starts: list[float] = []
        self._lateness: list[float] = []
        self._compute: list[float] = []
        self._skipped = 0
        self._overruns = 0

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def wait(self) -> Tick:
        """Wait for the next cycle's deadline (per the pacing) and start it."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        index = self._next
        deadline = self._t0 + index * self.period
        skipped = 0
        if self.pacing is Pacing.TIMER:
            late = now - deadline
            if late >= self.period:
                skipped = int(late // self.period)
                index += skipped
                deadline += skipped * self.period
            self._sleep_until(deadline)
            now = self.clock()
        elif self.pacing is Pacing.ROBOT and index > 0:
            # The robot keeps time: re-anchor to the previous start so that lateness
            # measures the jitter of the robot's period, not accumulated clock drift.
            deadline = self._starts[-1] + self.period
        else:
            deadline = now if self.pacing is Pacing.NONE else deadline
        self._next = index + 1
        self._skipped += skipped
        tick = Tick(index, deadline, now, skipped)
        self._starts.append(now)
        self._lateness.append(tick.lateness)
        return tick

    def finish(self, tick: Tick) -> CycleTiming:
        """Record the end of the cycle started by ``tick``."""
        end = self.clock()
        budget_end = (tick.deadline if self.pacing is Pacing.TIMER else tick.start) + self.period
        overrun = self.pacing is not Pacing.NONE and end > budget_end
        self._overruns += overrun
        self._compute.append(end - tick.start)
        return CycleTiming(tick, end, overrun)

    def stats(self) -> LoopStats:
        """Timing of every cycle so far."""
        return LoopStats.from_arrays(
            self.rate,
            np.diff(self._starts),
            np.array(self._lateness),
            np.array(self._compute),
            self._skipped,
            self._overruns,
        )

    def _sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.clock()
        if remaining > self.spin:
            self._sleep(remaining - self.spin)
        while self.clock() < deadline:
            pass


class ObservationHistory:
    """The last ``length`` observations, oldest first, flattened: (length · obs_dim,).

    After ``reset`` the history is filled with the first observation pushed, as the frame-
    stacking wrappers policies are trained with do.
    """

    def __init__(self, length: int, obs_dim: int) -> None:
        if length < 1:
            raise ValueError(f"history length must be >= 1, got {length}")
        self.length = length
        self.obs_dim = obs_dim
        self._frames: deque[np.ndarray] = deque(maxlen=length)

    @property
    def size(self) -> int:
        return self.length * self.obs_dim

    def reset(self) -> None:
        self._frames.clear()

    def push(self, obs: np.ndarray) -> np.ndarray:
        """Add ``obs`` (obs_dim,) and return the stacked history."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"observation must have shape ({self.obs_dim},), got {obs.shape}")
        if not self._frames:
            self._frames.extend([obs] * self.length)
        else:
            self._frames.append(obs)
        return np.concatenate(self._frames)


class LowPassFilter:
    """First-order low-pass filter on actions: ``y += alpha · (x - y)``.

    Args:
        alpha: smoothing factor in (0, 1]; 1 passes actions through unchanged.
    """

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self._y: np.ndarray | None = None

    @classmethod
    def from_cutoff(cls, cutoff: float, rate: float) -> LowPassFilter:
        """The filter with a -3 dB cutoff of ``cutoff`` Hz when run at ``rate`` Hz."""
        if cutoff <= 0 or rate <= 0:
            raise ValueError(f"cutoff and rate must be positive, got {cutoff} and {rate}")
        return cls(1.0 - math.exp(-2.0 * math.pi * cutoff / rate))

    def reset(self) -> None:
        self._y = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter one action; a non-finite action passes through (the supervisor rejects it)
        and does not disturb the filter's state."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            return x
        if self._y is None or self._y.shape != x.shape:
            self._y = x.copy()
        else:
            self._y = self._y + self.alpha * (x - self._y)
        return self._y.copy()
