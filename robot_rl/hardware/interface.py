"""``RobotInterface``: one lifecycle for every robot, simulated, networked or mocked.

The lifecycle follows ros2_control's hardware components::

    UNCONFIGURED --configure()--> INACTIVE --activate()--> ACTIVE
                                  INACTIVE <--deactivate()-- ACTIVE   (safe stop first)
    any state --shutdown()--> FINALIZED                               (safe stop first)

``configure`` connects and is read-only: ``read()`` works, ``write()`` does not. ``activate``
lets commands through. Used as a context manager, an interface is configured on entry and
always shut down on exit -- normally, on an exception and on Ctrl-C -- so every run ends in
the robot's safe behaviour (``SafeBehaviour``). A second Ctrl-C during that safe stop is held
back until the stop has been sent.

Backends implement the ``_on_*`` hooks; the base class enforces the lifecycle.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

import numpy as np

from robot_rl.hardware.description import RobotSpec
from robot_rl.hardware.events import Event, Termination


class Lifecycle(enum.Enum):
    """ros2_control's primary states of a hardware component."""

    UNCONFIGURED = "unconfigured"
    INACTIVE = "inactive"
    ACTIVE = "active"
    FINALIZED = "finalized"


class LifecycleError(RuntimeError):
    """A call that the interface's lifecycle state does not allow (e.g. write while inactive)."""


class RobotError(RuntimeError):
    """The robot or the link to it failed."""


class RobotConnectionError(RobotError):
    """The robot could not be reached or refused this client."""


class RobotTimeoutError(RobotError):
    """The robot stopped answering."""


class RobotStoppedError(RobotError):
    """The robot stopped itself (its own watchdog, e-stop or limits) and ended the session.

    Attributes:
        reason: why it stopped.
    """

    def __init__(self, reason: Termination, detail: str = "") -> None:
        super().__init__(
            f"robot stopped itself: {reason.value}" + (f" ({detail})" if detail else "")
        )
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class BaseState:
    """Pose and velocity of a floating base (what an IMU plus state estimator reports).

    Attributes:
        position: (3,) m, world frame.
        orientation: (4,) quaternion (w, x, y, z).
        linear_velocity: (3,) m/s, world frame.
        angular_velocity: (3,) rad/s, world frame.
    """

    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


@dataclass(frozen=True)
class RobotState:
    """One time-stamped sample of a robot.

    Attributes:
        time: the robot's clock, s.
        seq: sample counter; increases by one per robot cycle.
        position: (n_joints,) joint positions, rad or m.
        velocity: (n_joints,) joint velocities, rad/s or m/s.
        effort: (n_joints,) joint efforts applied by the actuators, N·m or N (0 where a joint
            has no actuator).
        observation: (observation_size,) the task observation, what a policy trained in
            simulation acts on; None when the robot reports none.
        base: floating-base pose and velocities; None for a fixed base.
        applied: (n_act,) the command in force on the robot, as the robot reports it (after
            its own limits); None when the robot does not report it.
        round_trip: time from the robot sending the previous sample to it receiving the
            command for that sample, s; NaN when not measured.
        missed: commands the robot has counted as missing or late so far.
    """

    time: float
    seq: int
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    observation: np.ndarray | None = None
    base: BaseState | None = None
    applied: np.ndarray | None = None
    round_trip: float = float("nan")
    missed: int = 0


@contextlib.contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration of the block, then re-raise it.

    Used around a safe stop so that an impatient second Ctrl-C cannot cut it short. Only the
    main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class RobotInterface(abc.ABC):
    """A robot behind the configure/activate/read/write/deactivate/shutdown lifecycle.

    Subclasses implement:

    - ``_on_configure() -> RobotSpec``: connect; the robot must not move.
    - ``_on_activate()``: prepare to accept commands.
    - ``_read() -> RobotState``: the newest sample.
    - ``_write(command)``: send a command (n_act,) in physical units, already supervised.
    - ``_safe_stop()``: bring the robot to its safe behaviour; must be idempotent and work in
      any connected state.
    - ``_on_shutdown()``: disconnect and release resources.

    and may override ``_start_episode`` when the robot can put itself into a start state.

    Attributes:
        paced: True when ``read()`` blocks until the robot's next sample, so the robot, not
            the caller, keeps the control rate (a networked robot). Otherwise every
            ``write()`` is one robot cycle and the caller keeps time.
    """

    paced: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lifecycle = Lifecycle.UNCONFIGURED
        self._spec: RobotSpec | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def lifecycle(self) -> Lifecycle:
        return self._lifecycle

    @property
    def spec(self) -> RobotSpec:
        """The robot's description (available once configured)."""
        if self._spec is None:
            raise LifecycleError("the robot's spec is known only after configure()")
        return self._spec

    def configure(self) -> RobotSpec:
        """Connect (read-only). UNCONFIGURED -> INACTIVE."""
        self._require(Lifecycle.UNCONFIGURED, "configure")
        self._spec = self._on_configure()
        self._lifecycle = Lifecycle.INACTIVE
        return self._spec

    def activate(self) -> None:
        """Start accepting commands. INACTIVE -> ACTIVE."""
        self._require(Lifecycle.INACTIVE, "activate")
        self._on_activate()
        self._lifecycle = Lifecycle.ACTIVE

    def deactivate(self) -> None:
        """Safe stop, then stop accepting commands. ACTIVE -> INACTIVE."""
        self._require(Lifecycle.ACTIVE, "deactivate")
        try:
            with deferred_sigint():
                self._safe_stop()
        finally:
            self._lifecycle = Lifecycle.INACTIVE

    def shutdown(self) -> None:
        """Safe stop (when connected) and disconnect. Any state -> FINALIZED; idempotent."""
        if self._lifecycle is Lifecycle.FINALIZED:
            return
        try:
            with deferred_sigint():
                if self._lifecycle is not Lifecycle.UNCONFIGURED:
                    self._safe_stop()
        finally:
            self._lifecycle = Lifecycle.FINALIZED
            self._on_shutdown()

    def safe_stop(self) -> None:
        """Bring the robot to its safe behaviour now (stays in the current lifecycle state)."""
        if self._lifecycle not in (Lifecycle.INACTIVE, Lifecycle.ACTIVE):
            raise LifecycleError(f"safe_stop needs a connected robot, not {self._lifecycle.value}")
        with deferred_sigint():
            self._safe_stop()

    # -- I/O ----------------------------------------------------------------------------------------
    def read(self) -> RobotState:
        """The robot's newest state (INACTIVE or ACTIVE)."""
        if self._lifecycle not in (Lifecycle.INACTIVE, Lifecycle.ACTIVE):
            raise LifecycleError(f"read needs a configured robot, not {self._lifecycle.value}")
        return self._read()

    def write(self, command: np.ndarray) -> None:
        """Send ``command`` (n_act,) in the robot's command mode and physical units (ACTIVE).

        This is the raw driver call: use it behind a ``SafetySupervisor`` (as ``deploy`` and
        the robot server do). It still refuses wrong shapes and non-finite values.
        """
        self._require(Lifecycle.ACTIVE, "write")
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.spec.n_act,):
            raise ValueError(f"command must have shape ({self.spec.n_act},), got {command.shape}")
        if not np.isfinite(command).all():
            raise ValueError(f"command must be finite, got {command.tolist()}")
        self._write(command)

    def start_episode(
        self, seed: int | None = None, task_state: np.ndarray | None = None
    ) -> RobotState:
        """Put the robot into a start state for a new episode (INACTIVE only).

        A simulated robot resets its env (``seed``, optional exact goal ``task_state``); a
        physical robot would run its homing routine. Robots that cannot do either raise
        ``NotImplementedError``.
        """
        self._require(Lifecycle.INACTIVE, "start_episode")
        return self._start_episode(seed, task_state)

    def describe(self) -> dict[str, str | float | int]:
        """Facts about the backend for run records (engine, endpoint, protocol ...)."""
        return {}

    def poll_events(self) -> list[Event]:
        """Events the robot reported since the last call (e.g. a server's interventions)."""
        return []

    # -- context manager ---------------------------------------------------------------------------
    def __enter__(self) -> RobotInterface:
        if self._lifecycle is Lifecycle.UNCONFIGURED:
            self.configure()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.shutdown()
            return
        # Already unwinding: a failing shutdown must not hide the original exception.
        with contextlib.suppress(Exception):
            self.shutdown()

    # -- hooks ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _on_configure(self) -> RobotSpec: ...

    def _on_activate(self) -> None:
        """Prepare to accept commands."""

    @abc.abstractmethod
    def _read(self) -> RobotState: ...

    @abc.abstractmethod
    def _write(self, command: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _safe_stop(self) -> None: ...

    def _on_shutdown(self) -> None:
        """Disconnect and release resources."""

    def _start_episode(self, seed: int | None, task_state: np.ndarray | None) -> RobotState:
        raise NotImplementedError(f"{type(self).__name__} cannot put itself into a start state")

    def _require(self, state: Lifecycle, action: str) -> None:
        if self._lifecycle is not state:
            raise LifecycleError(
                f"{action}() needs the robot {state.value}, but it is {self._lifecycle.value}"
            )
