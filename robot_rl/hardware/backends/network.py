"""A robot across the network: the client side of the robot protocol (``PROTOCOL.md``).

``NetworkRobot`` is a ``RobotInterface`` for a robot served by ``RobotServer`` (``robot-rl
robot-server``). The server keeps time: once active, it streams one ``state`` per control
period and ``read()`` blocks until the next one (``paced = True``); each ``write`` answers the
newest state. If no state arrives within ``timeout`` the robot has stopped answering
(``RobotTimeoutError``); if the server stopped the robot itself (its watchdog, e-stop) ``read``
raises ``RobotStoppedError``. The server enforces its own limits and watchdog either way.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import zmq

from robot_rl.hardware.description import RobotSpec
from robot_rl.hardware.events import Event, Termination
from robot_rl.hardware.interface import (
    Lifecycle,
    RobotConnectionError,
    RobotError,
    RobotInterface,
    RobotState,
    RobotStoppedError,
    RobotTimeoutError,
)
from robot_rl.hardware.keys import ClientKeys, require_curve
from robot_rl.hardware.protocol import (
    DEFAULT_ENDPOINT,
    VERSION,
    ErrorCode,
    MessageType,
    ProtocolError,
    decode,
    encode,
    state_from_fields,
)


class NetworkRobot(RobotInterface):
    """Client of a robot server.

    Args:
        keys: this client's key pair and the server's public key.
        endpoint: the server's ZeroMQ endpoint.
        timeout: how long to wait for any answer or state before the robot counts as not
            answering, s.
        name: client name, shown in the server's log.
    """

    paced = True

    def __init__(
        self,
        keys: ClientKeys,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = 1.0,
        name: str = "robot_rl",
    ) -> None:
        super().__init__()
        require_curve()
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.keys = keys
        self.endpoint = endpoint
        self.timeout = timeout
        self.name = name
        self._ctx: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._backend: dict[str, Any] = {}
        self._events: list[Event] = []
        self._seq = -1
        self.dropped_states = 0

    # -- lifecycle hooks -----------------------------------------------------------------------------
    def _on_configure(self) -> RobotSpec:
        ctx = self._ctx = zmq.Context()
        sock = self._socket = ctx.socket(zmq.DEALER)
        sock.curve_publickey = self.keys.pair.public
        sock.curve_secretkey = self.keys.pair.secret
        sock.curve_serverkey = self.keys.server_public
        sock.linger = 0
        sock.connect(self.endpoint)
        try:
            reply = self._request(MessageType.HELLO, {MessageType.WELCOME}, client=self.name)
        except RobotTimeoutError:
            self._close()
            raise RobotConnectionError(
                f"no answer from a robot server at {self.endpoint} within {self.timeout} s: it is "
                "not running, or it does not accept this client's key (CURVE)"
            ) from None
        except RobotError:
            self._close()
            raise
        self._backend = dict(reply.get("backend", {}))
        return RobotSpec.from_dict(reply["spec"])

    def _on_activate(self) -> None:
        self._seq = -1
        self._request(MessageType.ACTIVATE, {MessageType.ACK})

    def _start_episode(self, seed: int | None, task_state: np.ndarray | None) -> RobotState:
        reply = self._request(
            MessageType.START_EPISODE,
            {MessageType.STATE},
            seed=seed,
            task_state=None if task_state is None else np.asarray(task_state, float),
        )
        return self._state(reply)

    def _safe_stop(self) -> None:
        # While inactive the server already holds the robot safe; while active, deactivating
        # runs the server's safe stop and is acknowledged once it is done.
        if self._lifecycle is Lifecycle.ACTIVE:
            self._request(MessageType.DEACTIVATE, {MessageType.ACK})

    def _on_shutdown(self) -> None:
        try:
            if self._socket is not None:
                self._socket.send(encode(MessageType.BYE), flags=zmq.NOBLOCK)
                self._receive({MessageType.ACK}, min(self.timeout, 0.2))
        except (RobotError, zmq.ZMQError):
            pass  # the server closes a silent session by itself
        finally:
            self._close()

    # -- I/O --------------------------------------------------------------------------------------------
    def _read(self) -> RobotState:
        if self._lifecycle is not Lifecycle.ACTIVE:
            return self._state(self._request(MessageType.READ, {MessageType.STATE}))
        # Active: the newest streamed state. Older ones still queued are dropped (a slow
        # client must not act on stale samples).
        reply = self._receive({MessageType.STATE}, self.timeout)
        while self._socket.poll(0):
            newer = self._receive({MessageType.STATE}, self.timeout)
            self.dropped_states += 1
            reply = newer
        state = self._state(reply)
        self._seq = state.seq
        return state

    def _write(self, command: np.ndarray) -> None:
        self._send(MessageType.COMMAND, seq=self._seq, command=command)

    def poll_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def describe(self) -> dict[str, str | float | int]:
        return {"endpoint": self.endpoint, "protocol": VERSION, **self._backend}

    # -- extra requests -------------------------------------------------------------------------------
    def estop(self, reason: str = "client e-stop") -> None:
        """Latch the server's e-stop (works without holding the session)."""
        self._request(MessageType.ESTOP, {MessageType.ACK}, reason=reason)

    def reset_estop(self) -> None:
        """Clear the server's latched e-stop (needs the session, robot inactive)."""
        self._request(MessageType.RESET_ESTOP, {MessageType.ACK})

    def status(self) -> dict[str, Any]:
        """The server's counters and state (see ``ServerStatus``)."""
        return self._request(MessageType.STATUS, {MessageType.STATUS})

    # -- messaging ------------------------------------------------------------------------------------
    def _state(self, message: dict[str, Any]) -> RobotState:
        try:
            state, events = state_from_fields(message)
        except ProtocolError as err:
            raise RobotError(f"bad state from the robot server: {err}") from None
        self._events.extend(events)
        return state

    def _send(self, kind: MessageType, **fields: Any) -> None:
        if self._socket is None:
            raise RobotConnectionError("not connected")
        try:
            self._socket.send(encode(kind, **fields), flags=zmq.NOBLOCK)
        except zmq.Again:
            raise RobotTimeoutError("the link to the robot server is congested") from None

    def _request(
        self, kind: MessageType, expect: set[MessageType], **fields: Any
    ) -> dict[str, Any]:
        self._send(kind, **fields)
        return self._receive(expect, self.timeout)

    def _receive(self, expect: set[MessageType], timeout: float) -> dict[str, Any]:
        """The next message of a type in ``expect`` (states streamed meanwhile are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RobotTimeoutError(
                    f"the robot server at {self.endpoint} sent nothing for {timeout:.3g} s"
                )
            if not self._socket.poll(math.ceil(remaining * 1000)):
                continue
            try:
                kind, message = decode(self._socket.recv())
            except ProtocolError as err:
                raise RobotError(f"bad message from the robot server: {err}") from None
            if kind in expect:
                return message
            if kind is MessageType.ERROR:
                code = message.get("code")
                text = f"robot server refused: {message.get('message', '')} ({code})"
                if code in (ErrorCode.BUSY.value, ErrorCode.VERSION.value):
                    raise RobotConnectionError(text)
                raise RobotError(text)
            if kind is MessageType.STOPPED:
                reason = message.get("reason")
                known = {t.value for t in Termination}
                raise RobotStoppedError(
                    Termination(reason) if reason in known else Termination.ROBOT_STOPPED,
                    str(message.get("detail", "")),
                )
            # A state streamed before the answer we wait for: skip it.

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None


def send_estop(
    keys: ClientKeys,
    endpoint: str = DEFAULT_ENDPOINT,
    reason: str = "e-stop",
    timeout: float = 1.0,
) -> None:
    """Latch a robot server's e-stop from anywhere that holds an authorized key, without
    taking the robot's session (a software e-stop button).

    Raises:
        RobotTimeoutError: the server did not acknowledge in time.
    """
    require_curve()
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as sock:
        sock.curve_publickey = keys.pair.public
        sock.curve_secretkey = keys.pair.secret
        sock.curve_serverkey = keys.server_public
        sock.linger = 0
        sock.connect(endpoint)
        sock.send(encode(MessageType.ESTOP, reason=reason))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if sock.poll(math.ceil(remaining * 1000)):
                kind, message = decode(sock.recv())
                if kind is MessageType.ACK and message.get("of") == MessageType.ESTOP.value:
                    return
        raise RobotTimeoutError(f"the robot server at {endpoint} did not acknowledge the e-stop")
