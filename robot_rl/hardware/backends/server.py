"""The robot server: serves one ``RobotInterface`` to authenticated network clients.

The server owns the robot and keeps it safe on its own, whatever its clients do: it runs
the robot's control loop in real time at the robot's rate, puts every command through its
own ``SafetySupervisor``, and its watchdog stops the robot when commands stop arriving, so a
client that dies or loses its link leaves the robot in its safe behaviour. Clients speak the
protocol in ``PROTOCOL.md`` over CURVE-authenticated ZeroMQ; unauthenticated peers never get
a message through. ``robot-rl robot-server`` runs one around a simulated robot.

Timing: at tick ``k`` the server samples the robot and sends ``state`` ``k``; the command for
it is applied as soon as it arrives (a simulated robot then advances one period), or, if none
has arrived by tick ``k + 1``, the previous command is held and the tick counts as missed.
Outside an active session the robot is not stepped: a simulated robot stands still after its
safe stop, as a real one would with its brakes engaged. A simulated robot's safe stop runs in
simulated time, at once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq
from zmq.auth.thread import ThreadAuthenticator

from robot_rl.hardware.events import Event, EventKind, Termination
from robot_rl.hardware.interface import Lifecycle, RobotInterface
from robot_rl.hardware.keys import ServerKeys, require_curve
from robot_rl.hardware.protocol import (
    DEFAULT_ENDPOINT,
    ErrorCode,
    MessageType,
    ProtocolError,
    decode,
    encode,
    field,
    state_fields,
    vector,
)
from robot_rl.hardware.safety import SafetyConfig, SafetySupervisor

log = logging.getLogger(__name__)

IDLE_POLL = 0.05
"""How often an idle server checks for stop requests and expired sessions, s."""


@dataclasses.dataclass
class ServerStatus:
    """Counters a server reports in ``status`` messages.

    Attributes:
        ticks: control ticks run (all sessions).
        missed: ticks without a valid command in time.
        late: commands that arrived after their tick and were discarded.
        watchdog_trips: times the watchdog stopped the robot.
        sessions: sessions opened.
        last_stop: reason of the last stop (a ``Termination`` value or 'deactivate').
    """

    ticks: int = 0
    missed: int = 0
    late: int = 0
    watchdog_trips: int = 0
    sessions: int = 0
    last_stop: str = ""


class _ServerError(Exception):
    """A request refused with an error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class RobotServer:
    """Serves ``robot`` on ``endpoint`` to clients holding an authorized CURVE key.

    Args:
        robot: the robot, unconfigured; the server configures it and shuts it down.
        keys: the server's key pair and authorized client keys.
        endpoint: ZeroMQ endpoint to bind (loopback by default; ``tcp://127.0.0.1:*`` picks a
            free port, see ``endpoint`` after ``start``).
        safety: the server-side limits and watchdog.
        session_timeout: an inactive session whose client sent nothing for this long is
            closed, s.
        clock: monotonic clock, s.
    """

    def __init__(
        self,
        robot: RobotInterface,
        keys: ServerKeys,
        endpoint: str = DEFAULT_ENDPOINT,
        safety: SafetyConfig | None = None,
        session_timeout: float = 2.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        require_curve()
        self.robot = robot
        self.keys = keys
        self.endpoint = endpoint
        self.safety = safety or SafetyConfig()
        self.session_timeout = session_timeout
        self.clock = clock
        self.status = ServerStatus()
        self._ctx: zmq.Context | None = None
        self._auth: ThreadAuthenticator | None = None
        self._socket: zmq.Socket | None = None
        self._owner: bytes | None = None
        self._last_heard = 0.0
        self._active = False
        self._ready = threading.Event()
        self._last_applied: np.ndarray | None = None
        self._sent_at = math.nan
        self._events: list[Event] = []

    # -- running -------------------------------------------------------------------------------------
    def start(self) -> str:
        """Configure the robot, start authentication and bind; returns the bound endpoint."""
        spec = self.robot.configure()
        self.spec = spec
        self.period = spec.period
        self.supervisor = SafetySupervisor(spec, self.safety)
        ctx = self._ctx = zmq.Context()
        self._auth = ThreadAuthenticator(ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(self.keys.authorized))
        sock = self._socket = ctx.socket(zmq.ROUTER)
        sock.curve_server = True
        sock.curve_publickey = self.keys.pair.public
        sock.curve_secretkey = self.keys.pair.secret
        sock.linger = 0
        sock.router_mandatory = False
        sock.bind(self.endpoint)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._ready.set()
        log.info("robot %s served on %s at %.1f Hz", spec.name, self.endpoint, spec.rate)
        return self.endpoint

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until ``start`` has bound the socket (for servers run in a thread)."""
        return self._ready.wait(timeout)

    def serve(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set or Ctrl-C; the robot is always safe-stopped and shut down."""
        stop = stop or threading.Event()
        try:
            if self._socket is None:
                self.start()
            while not stop.is_set():
                if self._active:
                    self._tick_once()
                else:
                    self._poll_until(self.clock() + IDLE_POLL)
                    self._expire_session()
        finally:
            self.close()

    def close(self) -> None:
        """Safe-stop and shut down the robot, then release the network."""
        try:
            if self._active:
                self._end_active("server shutdown")
            self.robot.shutdown()
        finally:
            if self._socket is not None:
                self._socket.close(0)
                self._socket = None
            if self._auth is not None:
                self._auth.stop()
                self._auth = None
            if self._ctx is not None:
                self._ctx.term()
                self._ctx = None

    # -- the active control loop -----------------------------------------------------------------------
    def _begin_active(self) -> None:
        robot = self.robot
        robot.activate()
        self._active = True
        self._tick = 0
        self._state = robot.read()
        self._events = []
        self._last_applied = None
        self.supervisor.arm(self._state, 0, self._state.time)
        self._applied = False
        self._session_missed = 0
        self._round_trip = math.nan
        self._send_state()
        self._next_tick = self.clock() + self.period

    def _tick_once(self) -> None:
        """Wait for the command of the current tick (or the deadline), then start the next."""
        self._poll_until(self._next_tick, while_active=True)
        if not self._active:
            return
        if not self._applied:
            self._session_missed += 1
            self.status.missed += 1
            self._round_trip = math.nan
            if not self._apply(None):
                return
        self.status.ticks += 1
        self._tick += 1
        self._state = self.robot.read()
        self._applied = False
        self._send_state()
        now = self.clock()
        self._next_tick += self.period
        if self._next_tick < now:  # the server itself fell behind: keep phase, skip ticks
            self._next_tick += math.ceil((now - self._next_tick) / self.period) * self.period

    def _apply(self, command: np.ndarray | None) -> bool:
        """Supervise and apply a command (None: none arrived); False if the robot stopped."""
        decision = self.supervisor.step(self._state, command, self._tick, self._state.time)
        self._events.extend(decision.events)
        if decision.stop is not None:
            if decision.stop is Termination.WATCHDOG:
                self.status.watchdog_trips += 1
            detail = decision.events[-1].detail if decision.events else ""
            self._end_active(decision.stop.value, notify=(decision.stop, detail))
            return False
        self.robot.write(decision.applied)
        self._last_applied = decision.applied
        self._applied = True
        return True

    def _send_state(self) -> None:
        state = dataclasses.replace(
            self._state,
            seq=self._tick,
            applied=self._state.applied if self._last_applied is None else self._last_applied,
            round_trip=self._round_trip,
            missed=self._session_missed,
        )
        frame = encode(MessageType.STATE, **state_fields(state, self._events))
        self._events = []
        self._sent_at = self.clock()
        self._send_frame(self._owner, frame, MessageType.STATE)

    def _end_active(self, reason: str, notify: tuple[Termination, str] | None = None) -> None:
        """Safe stop and leave the active phase; tell the client why when it did not ask."""
        self._active = False
        self.supervisor.disarm()
        try:
            if self.robot.lifecycle is Lifecycle.ACTIVE:
                self.robot.deactivate()
        finally:
            self.status.last_stop = reason
            self._last_applied = None
            log.info("robot stopped: %s", reason)
            if notify is not None and self._owner is not None:
                self._send(MessageType.STOPPED, reason=notify[0].value, detail=notify[1])

    # -- messages ---------------------------------------------------------------------------------------
    def _poll_until(self, deadline: float, while_active: bool = False) -> None:
        """Handle messages until ``deadline``, or until the robot leaves the active phase when
        ``while_active``.

        Messages already queued are always handled before the deadline is checked, so a
        command that arrived in time is never counted missing because the server was slow to
        wake up. Between messages the server waits on the socket's file descriptor with
        ``select``, which wakes on a message or at the deadline to the microsecond (ZeroMQ's
        own poll has millisecond resolution; its descriptor is edge-triggered, hence the
        drain before each wait)."""
        sock = self._socket
        fd = sock.getsockopt(zmq.FD)
        while True:
            while sock.poll(0):
                identity, frame = sock.recv_multipart()[:2]
                self._handle(identity, frame)
                if while_active and not self._active:
                    return
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            select.select([fd], [], [], remaining)

    def _handle(self, identity: bytes, frame: bytes) -> None:
        now = self.clock()
        try:
            kind, msg = decode(frame)
        except ProtocolError as err:
            self._send(MessageType.ERROR, identity=identity, code=err.code.value, message=str(err))
            return
        try:
            self._dispatch(identity, kind, msg, now)
        except (_ServerError, ProtocolError) as err:
            self._send(MessageType.ERROR, identity=identity, code=err.code.value, message=str(err))
        except NotImplementedError as err:
            self._send(
                MessageType.ERROR,
                identity=identity,
                code=ErrorCode.NOT_SUPPORTED.value,
                message=str(err),
            )

    def _dispatch(
        self, identity: bytes, kind: MessageType, msg: dict[str, Any], now: float
    ) -> None:
        if kind is MessageType.HELLO:
            self._hello(identity, msg, now)
            return
        if kind is MessageType.STATUS:
            self._send(MessageType.STATUS, identity=identity, **self._status())
            return
        if kind is MessageType.ESTOP:
            reason = str(msg.get("reason", "client e-stop"))
            self.supervisor.estop(reason)
            if self._active:
                self._end_active(Termination.ESTOP.value, notify=(Termination.ESTOP, reason))
            self._send(MessageType.ACK, identity=identity, of=kind.value)
            return
        if identity != self._owner:
            raise _ServerError(ErrorCode.NO_SESSION, "no session: say hello first")
        self._last_heard = now
        if kind is MessageType.COMMAND:
            self._command(msg, now)
        elif kind is MessageType.DEACTIVATE:
            if self._active:
                self._end_active("deactivate")
            self._ack(kind)
        elif kind is MessageType.BYE:
            if self._active:
                self._end_active("bye")
            self._ack(kind)
            self._owner = None
        elif self._active:
            raise _ServerError(ErrorCode.LIFECYCLE, f"{kind.value} is not allowed while active")
        elif kind is MessageType.READ:
            self._send(MessageType.STATE, **state_fields(self.robot.read()))
        elif kind is MessageType.START_EPISODE:
            task_state = msg.get("task_state")
            state = self.robot.start_episode(
                seed=msg.get("seed"),
                task_state=None if task_state is None else vector(msg, "task_state"),
            )
            self._send(MessageType.STATE, **state_fields(state))
        elif kind is MessageType.ACTIVATE:
            if self.supervisor.estopped:
                raise _ServerError(
                    ErrorCode.ESTOP, f"e-stop latched: {self.supervisor.estop_reason}"
                )
            self._ack(kind)
            self._begin_active()
        elif kind is MessageType.RESET_ESTOP:
            self.supervisor.reset_estop()
            self._ack(kind)
        else:
            raise _ServerError(ErrorCode.BAD_MESSAGE, f"a client cannot send {kind.value}")

    def _hello(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self._expire_session()
        if self._owner not in (None, identity):
            raise _ServerError(ErrorCode.BUSY, "another client holds the robot's session")
        if self._owner is None:
            self.status.sessions += 1
        self._owner, self._last_heard = identity, now
        log.info("session opened by %s", msg.get("client", "?"))
        self._send(
            MessageType.WELCOME,
            spec=self.spec.to_dict(),
            server="robot_rl",
            backend=self.robot.describe(),
        )

    def _command(self, msg: dict[str, Any], now: float) -> None:
        if not self._active:
            raise _ServerError(ErrorCode.LIFECYCLE, "command while inactive: activate first")
        seq = int(field(msg, "seq"))
        if seq != self._tick or self._applied:
            self.status.late += 1
            self._events.append(
                Event(
                    self._tick,
                    self._state.time,
                    EventKind.LATE_MESSAGE,
                    detail=f"command {seq} at tick {self._tick}",
                )
            )
            return
        try:
            command = vector(msg, "command")
        except ProtocolError:
            command = np.full(self.spec.n_act + 1, np.nan)  # the supervisor rejects the shape
        self._round_trip = now - self._sent_at
        self._apply(command)

    def _status(self) -> dict[str, Any]:
        return {
            "owner": self._owner is not None,
            "active": self._active,
            "estop": self.supervisor.estop_reason,
            **dataclasses.asdict(self.status),
        }

    def _expire_session(self) -> None:
        if (
            self._owner is not None
            and not self._active
            and self.clock() - self._last_heard > self.session_timeout
        ):
            log.info("session expired")
            self._owner = None

    def _ack(self, kind: MessageType) -> None:
        self._send(MessageType.ACK, of=kind.value)

    def _send(self, kind: MessageType, identity: bytes | None = None, **fields: Any) -> None:
        self._send_frame(
            identity if identity is not None else self._owner, encode(kind, **fields), kind
        )

    def _send_frame(self, to: bytes | None, frame: bytes, kind: MessageType) -> None:
        if to is None or self._socket is None:
            return
        try:
            self._socket.send_multipart([to, frame], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("dropped a %s message: the client is not reading", kind.value)
