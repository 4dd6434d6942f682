"""The safety supervisor between a policy and a robot.

Every control cycle the supervisor takes the command the policy asks for (``desired``) and
the robot's measured state, and returns the command the robot gets (``applied``) with an
``Event`` for every intervention. In order:

1. **E-stop** (latched until ``reset_estop``) and **disarmed** (the initial state): the robot
   gets its safe behaviour, whatever was asked.
2. **State check**: a non-finite measurement, a joint outside its hard position limits (with
   a tolerance) or faster than ``overspeed`` × its velocity limit latches the e-stop.
3. **Validation**: a missing command (the policy stalled), a wrong shape or a NaN/inf is
   rejected (the whole command, if any element is); the previous applied command is held,
   and after ``watchdog_cycles`` such cycles in a row the **watchdog** trips: safe
   behaviour, disarmed, and the run ends.
4. **Slew limit**: each element changes by at most ``slew_rate`` command ranges per second
   from the previous applied command.
5. **Joint limits**, by command mode, with a soft margin inside the position limits:

   - POSITION: targets inside the soft limits; a target moves at most velocity-limit × period.
   - VELOCITY: speed within the velocity limit, and no faster than reaches the soft position
     limit within one period.
   - TORQUE: within the effort limit; no torque that speeds a joint past its velocity limit;
     a joint that will be past its soft position limit within one period gets no outward
     torque and is braked (damping). A torque-controlled joint coasts on its momentum, so
     size the margin for the robot's stopping distance; a measured position past the hard
     limit (plus tolerance) latches the e-stop.

6. **Command range**: clipped into each actuator's command range.

Safe behaviour (``safe_command``) is per robot (``RobotSpec.safe_behaviour``): hold position,
zero velocity, or damping torque.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware.description import RobotSpec, SafeBehaviour
from robot_rl.hardware.events import Event, EventKind, Termination
from robot_rl.hardware.interface import RobotState


class SafetyError(RuntimeError):
    """A request the supervisor refuses (e.g. arming while the e-stop is latched)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits the supervisor enforces on top of the robot's description."""

    soft_margin: float = 0.05
    """Fraction of each limited joint's position range kept free at either end."""
    velocity_scale: float = 1.0
    """Fraction of the description's velocity limits commands may use."""
    effort_scale: float = 1.0
    """Fraction of the description's effort limits torque commands may use."""
    slew_rate: float | None = 20.0
    """Largest rate of change of a command element, in command ranges per second (20: a full
    sweep from one end of the range to the other in 50 ms, the envs' control period, so it
    does not bind at 20 Hz but smooths a faster loop; None: no slew limit)."""
    watchdog_cycles: int = 3
    """Consecutive cycles without a valid command before the watchdog stops the robot."""
    overspeed: float = 1.5
    """A measured speed above this multiple of the velocity limit latches the e-stop."""
    position_tolerance: float = 0.02
    """A measured position this fraction of the range beyond a hard limit latches the e-stop."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.soft_margin < 0.5:
            raise ValueError(f"soft_margin must be in [0, 0.5), got {self.soft_margin}")
        for name in ("velocity_scale", "effort_scale"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.slew_rate is not None and self.slew_rate <= 0:
            raise ValueError(f"slew_rate must be positive or None, got {self.slew_rate}")
        if self.watchdog_cycles < 1:
            raise ValueError(f"watchdog_cycles must be >= 1, got {self.watchdog_cycles}")
        if self.overspeed < 1.0:
            raise ValueError(f"overspeed must be >= 1, got {self.overspeed}")
        if self.position_tolerance < 0.0:
            raise ValueError(f"position_tolerance must be >= 0, got {self.position_tolerance}")


@dataclass(frozen=True)
class Decision:
    """The supervisor's verdict for one cycle.

    Attributes:
        desired: (n_act,) the command asked for (NaN where none or of the wrong shape).
        applied: (n_act,) the command to send, always finite and within limits.
        events: every intervention this cycle.
        stop: set when the run must end (watchdog, e-stop); ``applied`` is then the safe
            command.
    """

    desired: np.ndarray
    applied: np.ndarray
    events: tuple[Event, ...]
    stop: Termination | None = None


def safe_command(spec: RobotSpec, state: RobotState, hold: np.ndarray | None = None) -> np.ndarray:
    """The robot's safe behaviour as a command (n_act,).

    Args:
        spec: the robot.
        state: its current state.
        hold: position targets to hold (POSITION mode); default the measured positions.
    """
    idx = list(spec.actuated)
    if spec.mode is ControlMode.POSITION:
        target = state.position[idx] if hold is None else hold
        return np.clip(target, spec.command_low, spec.command_high)
    if spec.mode is ControlMode.VELOCITY:
        return np.clip(np.zeros(spec.n_act), spec.command_low, spec.command_high)
    if spec.safe_behaviour is SafeBehaviour.DAMP:
        velocity = np.nan_to_num(state.velocity[idx])
        torque = np.clip(-spec.damping * velocity, -spec.effort_limit, spec.effort_limit)
    else:
        torque = np.zeros(spec.n_act)
    return np.clip(torque, spec.command_low, spec.command_high)


class SafetySupervisor:
    """Limits, slew limits, watchdog and a latched e-stop for one robot.

    Starts disarmed: until ``arm`` every cycle applies the safe command.

    Args:
        spec: the robot.
        config: the limits to enforce.
        period: the control period the supervisor is stepped at, s (default: the robot's).
    """

    def __init__(
        self, spec: RobotSpec, config: SafetyConfig | None = None, period: float | None = None
    ) -> None:
        self.spec = spec
        self.config = config = config or SafetyConfig()
        self.period = spec.period if period is None else float(period)
        if self.period <= 0:
            raise ValueError(f"period must be positive, got {self.period}")
        idx = list(spec.actuated)
        low, high = spec.position_low[idx], spec.position_high[idx]
        span = np.where(np.isfinite(high - low), high - low, 0.0)
        self._soft_low = low + config.soft_margin * span
        self._soft_high = high - config.soft_margin * span
        tol = config.position_tolerance * np.where(
            np.isfinite(spec.position_high - spec.position_low),
            spec.position_high - spec.position_low,
            0.0,
        )
        self._hard_low = spec.position_low - tol
        self._hard_high = spec.position_high + tol
        self._vmax = spec.velocity_limit[idx] * config.velocity_scale
        self._effort = spec.effort_limit * config.effort_scale
        if config.slew_rate is None:
            self._slew = np.full(spec.n_act, np.inf)
        else:
            span = spec.command_high - spec.command_low
            self._slew = config.slew_rate * span * self.period
        self._idx = idx
        self._armed = False
        self._estop: str | None = None
        self._missed = 0
        self._previous: np.ndarray | None = None
        self._hold: np.ndarray | None = None
        self._told_disarmed = False

    # -- state ------------------------------------------------------------------------------------
    @property
    def armed(self) -> bool:
        return self._armed

    @property
    def estopped(self) -> bool:
        return self._estop is not None

    @property
    def estop_reason(self) -> str | None:
        return self._estop

    @property
    def soft_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) soft position limits of the actuated joints, (n_act,) each."""
        return self._soft_low.copy(), self._soft_high.copy()

    def arm(self, state: RobotState, cycle: int = -1, now: float = 0.0) -> Event:
        """Let commands through from the next cycle, starting the slew limit from the safe
        command at ``state``.

        Raises:
            SafetyError: while the e-stop is latched.
        """
        if self._estop is not None:
            raise SafetyError(f"cannot arm: e-stop latched ({self._estop}); reset_estop() first")
        self._armed = True
        self._missed = 0
        self._hold = None
        self._previous = safe_command(self.spec, state)
        self._told_disarmed = False
        return Event(cycle, now, EventKind.ARMED)

    def disarm(self) -> None:
        """Apply the safe behaviour from the next cycle until armed again."""
        self._armed = False
        self._told_disarmed = False

    def estop(self, reason: str, cycle: int = -1, now: float = 0.0) -> Event:
        """Latch the emergency stop: safe behaviour until ``reset_estop``."""
        if self._estop is None:
            self._estop = reason
        self._armed = False
        return Event(cycle, now, EventKind.ESTOP, detail=reason)

    def reset_estop(self, cycle: int = -1, now: float = 0.0) -> Event:
        """Clear a latched e-stop. The supervisor stays disarmed until ``arm``."""
        reason, self._estop = self._estop, None
        return Event(cycle, now, EventKind.ESTOP_RESET, detail=reason or "not latched")

    # -- the cycle ----------------------------------------------------------------------------------
    def step(
        self,
        state: RobotState,
        desired: np.ndarray | None,
        cycle: int = -1,
        now: float = 0.0,
    ) -> Decision:
        """Supervise one cycle.

        Args:
            state: the robot's state this cycle.
            desired: the command asked for (n_act,) in physical units, or None when no
                command arrived this cycle.
            cycle: cycle index, for the events.
            now: time, s, for the events.
        """
        events: list[Event] = []

        def event(kind: EventKind, joint: int = -1, detail: str = "") -> None:
            events.append(Event(cycle, now, kind, joint, detail))

        recorded, problems = self._validate(desired)

        violation = self._state_violation(state)
        if violation is not None and self._estop is None:
            event(EventKind.STATE_LIMIT, detail=violation)
            events.append(self.estop(violation, cycle, now))
            return self._safe(state, recorded, events, Termination.STATE_LIMIT)
        if self._estop is not None:
            return self._safe(state, recorded, events, Termination.ESTOP)
        if not self._armed:
            if desired is not None and not self._told_disarmed:
                event(EventKind.DISARMED, detail="commands are ignored until arm()")
                self._told_disarmed = True
            return self._safe(state, recorded, events, None)

        if desired is None or problems:
            for kind, joint, detail in problems:
                event(kind, joint, detail)
            self._missed += 1
            if self._missed >= self.config.watchdog_cycles:
                event(EventKind.WATCHDOG, detail=f"no valid command for {self._missed} cycles")
                self._armed = False
                return self._safe(state, recorded, events, Termination.WATCHDOG)
            event(EventKind.MISSED_COMMAND, detail=f"holding the previous command ({self._missed})")
            command = self._previous.copy()
        else:
            self._missed = 0
            command = recorded.copy()

        command = self._limit(command, state, event)
        self._previous = command
        return Decision(recorded, command.copy(), tuple(events))

    # -- internals ------------------------------------------------------------------------------------
    def _validate(
        self, desired: np.ndarray | None
    ) -> tuple[np.ndarray, list[tuple[EventKind, int, str]]]:
        """(the command as recorded, NaN where unusable; the reasons it is rejected)."""
        n = self.spec.n_act
        if desired is None:
            return np.full(n, np.nan), []
        try:
            arr = np.asarray(desired, dtype=np.float64)
        except (TypeError, ValueError):
            return np.full(n, np.nan), [(EventKind.BAD_SHAPE, -1, "command is not numeric")]
        if arr.shape != (n,):
            detail = f"command shape {arr.shape}, expected ({n},)"
            return np.full(n, np.nan), [(EventKind.BAD_SHAPE, -1, detail)]
        bad = np.flatnonzero(~np.isfinite(arr))
        return arr, [(EventKind.NON_FINITE, int(j), f"{arr[j]} rejected") for j in bad]

    def _state_violation(self, state: RobotState) -> str | None:
        q, qd = np.asarray(state.position), np.asarray(state.velocity)
        if not (np.isfinite(q).all() and np.isfinite(qd).all()):
            return "non-finite joint measurement"
        names = self.spec.joint_names
        outside = (q < self._hard_low) | (q > self._hard_high)
        if outside.any():
            j = int(np.argmax(outside))
            return f"joint {names[j]} at {q[j]:.4g} is outside its limits"
        fast = np.abs(qd) > self.config.overspeed * self.spec.velocity_limit
        if fast.any():
            j = int(np.argmax(fast))
            return f"joint {names[j]} moving at {qd[j]:.4g} exceeds its velocity limit"
        return None

    def _safe(
        self,
        state: RobotState,
        desired: np.ndarray,
        events: list[Event],
        stop: Termination | None,
    ) -> Decision:
        if self._hold is None:
            self._hold = np.asarray(state.position)[self._idx].copy()
        applied = safe_command(self.spec, state, self._hold)
        self._previous = applied
        return Decision(desired, applied, tuple(events), stop)

    def _limit(
        self,
        command: np.ndarray,
        state: RobotState,
        event: Callable[[EventKind, int, str], None],
    ) -> np.ndarray:
        """Slew, joint and range limits; calls ``event`` for each change."""
        spec = self.spec
        q = np.asarray(state.position)[self._idx]
        qd = np.asarray(state.velocity)[self._idx]
        dt = self.period

        def clip(
            values: np.ndarray, low: np.ndarray, high: np.ndarray, kind: EventKind
        ) -> np.ndarray:
            out = np.clip(values, low, high)
            for j in np.flatnonzero(out != values):
                event(kind, int(j), f"{values[j]:.6g} -> {out[j]:.6g}")
            return out

        previous = self._previous
        command = clip(command, previous - self._slew, previous + self._slew, EventKind.SLEW_LIMIT)
        if spec.mode is ControlMode.POSITION:
            step = self._vmax * dt
            command = clip(command, previous - step, previous + step, EventKind.VELOCITY_LIMIT)
            command = clip(command, self._soft_low, self._soft_high, EventKind.POSITION_LIMIT)
        elif spec.mode is ControlMode.VELOCITY:
            command = clip(
                command,
                (self._soft_low - q) / dt,
                (self._soft_high - q) / dt,
                EventKind.POSITION_LIMIT,
            )
            command = clip(command, -self._vmax, self._vmax, EventKind.VELOCITY_LIMIT)
        else:
            upper = np.where(qd >= self._vmax, 0.0, np.inf)
            lower = np.where(qd <= -self._vmax, 0.0, -np.inf)
            command = clip(command, lower, upper, EventKind.VELOCITY_LIMIT)
            brake = -spec.damping * qd
            ahead = q + qd * dt  # look one period ahead: a torque acts through momentum
            upper = np.where(ahead >= self._soft_high, np.minimum(brake, 0.0), np.inf)
            lower = np.where(ahead <= self._soft_low, np.maximum(brake, 0.0), -np.inf)
            command = clip(command, lower, upper, EventKind.POSITION_LIMIT)
            command = clip(command, -self._effort, self._effort, EventKind.EFFORT_LIMIT)
        return clip(command, spec.command_low, spec.command_high, EventKind.COMMAND_RANGE)
