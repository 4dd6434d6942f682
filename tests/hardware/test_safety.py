from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware import (
    EventKind,
    RobotState,
    SafetyConfig,
    SafetyError,
    SafetySupervisor,
    Termination,
    mock_spec,
    safe_command,
)

MODES = [ControlMode.POSITION, ControlMode.VELOCITY, ControlMode.TORQUE]
LIMIT_KINDS = {
    EventKind.POSITION_LIMIT,
    EventKind.VELOCITY_LIMIT,
    EventKind.EFFORT_LIMIT,
    EventKind.COMMAND_RANGE,
}


def state(q: list[float], qd: list[float] | None = None) -> RobotState:
    q = np.asarray(q, dtype=float)
    qd = np.zeros_like(q) if qd is None else np.asarray(qd, dtype=float)
    return RobotState(time=0.0, seq=0, position=q, velocity=qd, effort=np.zeros_like(q))


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
hostile_command = st.one_of(
    hnp.arrays(np.float64, 2, elements=any_float),
    hnp.arrays(np.float64, 2, elements=st.floats(-1e6, 1e6)),
    hnp.arrays(np.float64, st.integers(0, 4), elements=st.floats(-2, 2)),  # wrong shapes too
    st.none(),  # no command this cycle
)
measured = st.tuples(
    hnp.arrays(np.float64, 2, elements=st.floats(-1.0, 1.0)),  # within the hard limits
    hnp.arrays(np.float64, 2, elements=st.floats(-2.0, 2.0)),  # within the velocity limits
)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(measured, hostile_command), min_size=1, max_size=25))
def test_any_command_leaves_the_supervisor_finite_and_within_limits(mode, steps) -> None:
    spec = mock_spec(mode=mode, rate=5.0)  # slow: the soft limits bind over much of the range
    config = SafetyConfig(watchdog_cycles=3)
    sup = SafetySupervisor(spec, config)
    sup.arm(state([0.0, 0.0]))
    soft_low, soft_high = sup.soft_limits
    slew = config.slew_rate * (spec.command_high - spec.command_low) * spec.period
    previous = safe_command(spec, state([0.0, 0.0]))
    dt = spec.period
    for (q, qd), command in steps:
        s = state(q, qd)
        decision = sup.step(s, command)
        applied = decision.applied
        kinds = {e.kind for e in decision.events}
        assert applied.shape == (2,)
        assert np.all(np.isfinite(applied))
        assert np.all(applied >= spec.command_low)
        assert np.all(applied <= spec.command_high)
        if decision.stop is not None:
            assert decision.stop is Termination.WATCHDOG
            assert EventKind.WATCHDOG in kinds
            np.testing.assert_array_equal(applied, safe_command(spec, s, q))
            return  # the watchdog ended the run
        if mode is ControlMode.POSITION:
            assert np.all(applied >= soft_low - 1e-12)
            assert np.all(applied <= soft_high + 1e-12)
        elif mode is ControlMode.VELOCITY:
            assert np.all(np.abs(applied) <= spec.velocity_limit + 1e-12)
            # No faster than reaches the soft limits in one period (where the range allows).
            reach = q + applied * dt
            up = (soft_high - q) / dt >= spec.command_low
            down = (soft_low - q) / dt <= spec.command_high
            assert np.all(reach[up] <= soft_high[up] + 1e-9)
            assert np.all(reach[down] >= soft_low[down] - 1e-9)
        else:
            assert np.all(np.abs(applied) <= spec.effort_limit)
            outward = (q + qd * dt >= soft_high) & (applied > 0)
            assert not outward.any()
        valid = command is not None and np.shape(command) == (2,) and np.all(np.isfinite(command))
        if valid:
            changed = applied != command
            touched = {e.joint for e in decision.events}
            assert all(j in touched for j in np.flatnonzero(changed))
            if not kinds & LIMIT_KINDS:
                assert np.all(np.abs(applied - previous) <= slew + 1e-9)
        else:
            assert EventKind.MISSED_COMMAND in kinds
            if not kinds & LIMIT_KINDS:  # held, unless a limit had to move the old command
                np.testing.assert_array_equal(applied, previous)
            if command is not None and np.shape(command) == (2,):
                assert EventKind.NON_FINITE in kinds
            elif command is not None:
                assert EventKind.BAD_SHAPE in kinds
        previous = applied


def test_starts_disarmed_and_holds_the_robot_safe() -> None:
    spec = mock_spec(mode=ControlMode.POSITION)
    sup = SafetySupervisor(spec)
    assert not sup.armed
    s = state([0.3, -0.2])
    first = sup.step(s, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(first.applied, [0.3, -0.2])  # holds where it is
    assert [e.kind for e in first.events] == [EventKind.DISARMED]
    second = sup.step(state([0.35, -0.2]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(second.applied, [0.3, -0.2])  # the hold target is latched
    assert second.events == ()  # told once


def test_watchdog_holds_then_stops_after_the_configured_missed_cycles() -> None:
    spec = mock_spec(mode=ControlMode.VELOCITY)
    sup = SafetySupervisor(spec, SafetyConfig(watchdog_cycles=3))
    s = state([0.0, 0.0])
    sup.arm(s)
    assert sup.step(s, np.array([0.2, 0.1])).stop is None
    for _ in range(2):
        held = sup.step(s, None)
        np.testing.assert_array_equal(held.applied, [0.2, 0.1])
        assert held.events[0].kind is EventKind.MISSED_COMMAND
    tripped = sup.step(s, None)
    assert tripped.stop is Termination.WATCHDOG
    np.testing.assert_array_equal(tripped.applied, [0.0, 0.0])  # zero velocity
    assert not sup.armed
    # A valid command in between resets the count.
    sup.arm(s)
    for command in (None, None, np.array([0.1, 0.1]), None, None):
        assert sup.step(s, command).stop is None


def test_estop_latches_until_reset() -> None:
    spec = mock_spec(mode=ControlMode.TORQUE)
    sup = SafetySupervisor(spec)
    s = state([0.0, 0.0], [1.0, -1.0])
    sup.arm(s)
    sup.estop("button pressed")
    decision = sup.step(s, np.array([1.0, 1.0]))
    assert decision.stop is Termination.ESTOP
    np.testing.assert_allclose(decision.applied, [-1.0, 1.0])  # damping: -D q̇
    with pytest.raises(SafetyError, match="e-stop latched"):
        sup.arm(s)
    assert sup.step(s, np.array([1.0, 1.0])).stop is Termination.ESTOP  # still latched
    event = sup.reset_estop()
    assert event.kind is EventKind.ESTOP_RESET
    assert event.detail == "button pressed"
    assert not sup.armed  # reset does not arm
    sup.arm(s)
    assert sup.step(s, np.array([0.5, 0.5])).stop is None


@pytest.mark.parametrize(
    ("q", "qd", "match"),
    [
        ([np.nan, 0.0], [0.0, 0.0], "non-finite"),
        ([1.5, 0.0], [0.0, 0.0], "outside its limits"),
        ([0.0, 0.0], [0.0, 3.5], "exceeds its velocity limit"),
    ],
)
def test_a_state_outside_the_hard_limits_latches_the_estop(q, qd, match) -> None:
    sup = SafetySupervisor(mock_spec())
    sup.arm(state([0.0, 0.0]))
    decision = sup.step(state(q, qd), np.array([0.1, 0.1]))
    assert decision.stop is Termination.STATE_LIMIT
    assert decision.events[0].kind is EventKind.STATE_LIMIT
    assert match in decision.events[0].detail
    assert sup.estopped
    assert np.all(np.isfinite(decision.applied))


def test_soft_margin_slows_a_velocity_command_to_stop_at_the_soft_limit() -> None:
    spec = mock_spec(mode=ControlMode.VELOCITY, rate=50.0)
    sup = SafetySupervisor(spec, SafetyConfig(soft_margin=0.1, slew_rate=None))
    _, high = sup.soft_limits
    np.testing.assert_allclose(high, [0.8, 0.8])  # 10 % of the 2.0 range
    s = state([0.79, 0.0])
    sup.arm(s)
    decision = sup.step(s, np.array([1.0, 1.0]))
    np.testing.assert_allclose(decision.applied, [0.01 / spec.period, 1.0])
    assert [(e.kind, e.joint) for e in decision.events] == [(EventKind.POSITION_LIMIT, 0)]


def test_torque_past_the_soft_limit_brakes_and_never_pushes_outward() -> None:
    spec = mock_spec(mode=ControlMode.TORQUE)
    sup = SafetySupervisor(spec, SafetyConfig(slew_rate=None))
    s = state([0.95, 0.0], [0.5, 0.0])
    sup.arm(s)
    decision = sup.step(s, np.array([1.0, 1.0]))
    assert decision.applied[0] == pytest.approx(-0.5)  # -D q̇ with D = 1
    assert decision.applied[1] == 1.0


def test_slew_limit_bounds_the_change_per_cycle() -> None:
    spec = mock_spec(mode=ControlMode.VELOCITY, rate=100.0)
    sup = SafetySupervisor(spec, SafetyConfig(slew_rate=10.0))  # 10 ranges/s -> 0.2 per cycle
    s = state([0.0, 0.0])
    sup.arm(s)
    applied = [sup.step(s, np.array([1.0, -1.0])).applied for _ in range(6)]
    np.testing.assert_allclose(applied[0], [0.2, -0.2])
    np.testing.assert_allclose(applied[4], [1.0, -1.0])


def test_safe_commands_per_behaviour() -> None:
    s = state([0.2, -0.3], [0.5, -4.0])
    hold = safe_command(mock_spec(mode=ControlMode.POSITION), s)
    np.testing.assert_array_equal(hold, [0.2, -0.3])
    np.testing.assert_array_equal(safe_command(mock_spec(mode=ControlMode.VELOCITY), s), [0, 0])
    damp = safe_command(mock_spec(mode=ControlMode.TORQUE), s)
    np.testing.assert_array_equal(damp, [-0.5, 1.0])  # -D q̇, clipped to the command range
