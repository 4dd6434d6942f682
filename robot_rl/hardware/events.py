"""Events and termination reasons: the vocabulary shared by the supervisor, the loop, the
backends and the run records.

Every intervention of the safety supervisor, every loop overrun and every lifecycle step of a
run is an ``Event``; a run ends with exactly one ``Termination``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventKind(enum.Enum):
    """What happened. The integer values are stored in run records; never renumber them."""

    # The safety supervisor changed or replaced a command.
    COMMAND_RANGE = 1  # clipped into the actuator's command range
    POSITION_LIMIT = 2  # held back at a joint's soft position limit
    VELOCITY_LIMIT = 3  # held to a joint's velocity limit
    EFFORT_LIMIT = 4  # clipped to an actuator's effort limit
    SLEW_LIMIT = 5  # change from the previous command limited
    NON_FINITE = 6  # NaN or inf command rejected
    BAD_SHAPE = 7  # command of the wrong shape rejected
    MISSED_COMMAND = 8  # no valid command this cycle; the previous one was held
    WATCHDOG = 9  # too many cycles without a valid command: stopped
    ESTOP = 10  # emergency stop latched
    ESTOP_RESET = 11  # emergency stop explicitly reset
    DISARMED = 12  # a command arrived while the supervisor was disarmed; robot held safe
    STATE_LIMIT = 13  # a measured state was outside the hard limits or not finite
    # The control loop and the policy.
    OVERRUN = 20  # a cycle's work ran past its deadline
    POLICY_STALL = 21  # the policy did not answer within its time budget
    POLICY_ERROR = 22  # the policy raised
    # The robot and the link to it.
    COMMS_LOST = 30  # the robot stopped answering
    ROBOT_STOPPED = 31  # the robot stopped itself (its own watchdog or e-stop)
    LATE_MESSAGE = 32  # a message arrived after its deadline and was discarded
    # Lifecycle.
    ARMED = 40
    SAFE_STOP = 41
    EPISODE_START = 42
    EPISODE_END = 43


class EventSource(enum.Enum):
    """Who reported an event: this process, or the robot (a robot server's own supervisor)."""

    LOCAL = 0
    ROBOT = 1


@dataclass(frozen=True)
class Event:
    """One event.

    Attributes:
        cycle: control cycle it happened in (-1 outside the loop).
        time: seconds since the run started (host clock), or the robot's clock for events the
            robot reported.
        kind: what happened.
        joint: index of the actuator (command element) concerned, -1 for none.
        detail: a short human-readable explanation.
        source: who reported it.
    """

    cycle: int
    time: float
    kind: EventKind
    joint: int = -1
    detail: str = ""
    source: EventSource = EventSource.LOCAL


class Termination(enum.Enum):
    """Why a run (or a robot session) ended. Every reason except COMPLETED left the robot in
    its safe behaviour because something went wrong."""

    COMPLETED = "completed"  # the requested episodes or duration finished
    WATCHDOG = "watchdog"  # no valid command within the watchdog deadline
    ESTOP = "estop"  # emergency stop
    STATE_LIMIT = "state_limit"  # the robot left its hard limits (e-stop)
    POLICY_ERROR = "policy_error"  # the policy raised
    COMMS_LOST = "comms_lost"  # the robot stopped answering
    ROBOT_STOPPED = "robot_stopped"  # the robot stopped itself
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    ERROR = "error"  # any other exception
