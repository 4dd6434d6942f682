from __future__ import annotations

import numpy as np
import pytest

from robot_rl.hardware import FixedRateLoop, LowPassFilter, ObservationHistory, Pacing


class FakeClock:
    """A clock that moves only when slept on or when work is simulated."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def run(loop: FixedRateLoop, clock: FakeClock, work: list[float]):
    timings = []
    for w in work:
        tick = loop.wait()
        clock.work(w)
        timings.append(loop.finish(tick))
    return timings


def test_timer_pacing_keeps_the_deadlines_and_counts_overruns_and_skips() -> None:
    clock = FakeClock()
    loop = FixedRateLoop(100.0, Pacing.TIMER, spin=0.0, clock=clock, sleep=clock.sleep)
    # Cycle 2 works 2.5 periods and overruns. When the loop next waits, cycle 3's deadline
    # passed more than a period ago: it is skipped, and cycle 4 starts 5 ms late (the loop
    # keeps its phase instead of bursting to catch up).
    timings = run(loop, clock, [0.002, 0.004, 0.025, 0.003, 0.001])
    assert [t.overrun for t in timings] == [False, False, True, False, False]
    assert [t.tick.index for t in timings] == [0, 1, 2, 4, 5]
    assert [t.tick.skipped for t in timings] == [0, 0, 0, 1, 0]
    deadlines = np.array([t.tick.deadline for t in timings]) - 100.0
    np.testing.assert_allclose(deadlines, [0.0, 0.01, 0.02, 0.04, 0.05], atol=1e-12)
    lateness = [t.tick.lateness for t in timings]
    np.testing.assert_allclose(lateness, [0, 0, 0, 0.005, 0], atol=1e-12)
    stats = loop.stats()
    assert stats.cycles == 5
    assert stats.overruns == 1
    assert stats.skipped == 1
    assert stats.lateness_max == pytest.approx(0.005)


def test_spinning_sleeps_short_of_the_deadline_and_busy_waits_the_rest() -> None:
    clock = FakeClock()
    waits = iter([0.0] + [1e-5] * 10_000)

    def ticking() -> float:  # the busy-wait advances 10 us per read of the clock
        clock.now += next(waits)
        return clock.now

    loop = FixedRateLoop(100.0, Pacing.TIMER, spin=1e-3, clock=ticking, sleep=clock.sleep)
    loop.finish(loop.wait())
    tick = loop.wait()
    assert clock.sleeps[-1] == pytest.approx(0.009, abs=1e-4)  # 10 ms period - 1 ms spin
    assert 0 <= tick.lateness < 2e-5


@pytest.mark.parametrize("pacing", [Pacing.ROBOT, Pacing.NONE])
def test_robot_and_free_pacing_never_sleep(pacing: Pacing) -> None:
    clock = FakeClock()
    loop = FixedRateLoop(50.0, pacing, clock=clock, sleep=clock.sleep)
    timings = run(loop, clock, [0.02, 0.03, 0.01])
    assert clock.sleeps == []
    overruns = [t.overrun for t in timings]
    assert overruns == ([False, True, False] if pacing is Pacing.ROBOT else [False] * 3)


def test_bad_rates_are_refused() -> None:
    for rate in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rate"):
            FixedRateLoop(rate)


def test_observation_history_stacks_oldest_first_and_fills_on_reset() -> None:
    history = ObservationHistory(3, 2)
    np.testing.assert_array_equal(history.push(np.array([1, 1])), [1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(history.push(np.array([2, 2])), [1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(history.push(np.array([3, 3])), [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(history.push(np.array([4, 4])), [2, 2, 3, 3, 4, 4])
    history.reset()
    np.testing.assert_array_equal(history.push(np.array([5, 5])), [5] * 6)
    with pytest.raises(ValueError, match="shape"):
        history.push(np.zeros(3))


def test_low_pass_filter_has_its_cutoff_and_ignores_non_finite_actions() -> None:
    f = LowPassFilter.from_cutoff(cutoff=2.0, rate=100.0)
    assert f.alpha == pytest.approx(1 - np.exp(-2 * np.pi * 2.0 / 100.0))
    assert f(np.array([0.0]))[0] == 0.0
    out = [f(np.array([1.0]))[0] for _ in range(200)]
    assert out[0] == pytest.approx(f.alpha)
    assert 1 - out[-1] < 1e-6  # converges to the input
    assert np.isnan(f(np.array([np.nan]))[0])  # passed on for the supervisor to reject
    assert f(np.array([1.0]))[0] == pytest.approx(1.0, abs=1e-6)  # state not poisoned
    passthrough = LowPassFilter(1.0)
    assert passthrough(np.array([3.0]))[0] == 3.0
    assert passthrough(np.array([-3.0]))[0] == -3.0
