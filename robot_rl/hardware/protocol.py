"""The robot protocol, version 1: JSON messages over CURVE-authenticated ZeroMQ.

The reference is ``PROTOCOL.md`` next to this module. This module encodes and decodes the
messages; ``backends/network.py`` (client) and ``backends/server.py`` (robot server) speak it.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_rl.hardware.events import Event, EventKind, EventSource
from robot_rl.hardware.interface import BaseState, RobotState

VERSION = 1
"""The protocol version every message carries."""
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
"""Where the robot server binds and clients connect by default (loopback only)."""


class MessageType(enum.Enum):
    """Message types; see PROTOCOL.md for their fields."""

    HELLO = "hello"
    READ = "read"
    START_EPISODE = "start_episode"
    ACTIVATE = "activate"
    COMMAND = "command"
    DEACTIVATE = "deactivate"
    ESTOP = "estop"
    RESET_ESTOP = "reset_estop"
    STATUS = "status"
    BYE = "bye"
    WELCOME = "welcome"
    STATE = "state"
    ACK = "ack"
    STOPPED = "stopped"
    ERROR = "error"


class ErrorCode(enum.Enum):
    """Why the server refused a request."""

    VERSION = "version"
    BUSY = "busy"
    NO_SESSION = "no_session"
    LIFECYCLE = "lifecycle"
    ESTOP = "estop"
    BAD_MESSAGE = "bad_message"
    NOT_SUPPORTED = "not_supported"


class ProtocolError(ValueError):
    """A message that is not valid protocol-1 JSON.

    Attributes:
        code: the error code a server answers it with.
    """

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_MESSAGE) -> None:
        super().__init__(message)
        self.code = code


def encode(kind: MessageType, **fields: Any) -> bytes:
    """One message as a frame."""
    message = {"protocol": VERSION, "type": kind.value, **fields}
    return json.dumps(message, separators=(",", ":"), default=_default).encode()


def decode(frame: bytes) -> tuple[MessageType, dict[str, Any]]:
    """(type, fields) of a frame.

    Raises:
        ProtocolError: not JSON, not an object, unknown type, or another protocol version
            (code ``VERSION``).
    """
    try:
        message = json.loads(frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProtocolError(f"message is not JSON: {err}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    version = message.pop("protocol", None)
    if version != VERSION:
        raise ProtocolError(
            f"protocol version {version!r} is not supported (this side speaks {VERSION})",
            ErrorCode.VERSION,
        )
    try:
        kind = MessageType(message.pop("type", None))
    except ValueError:
        raise ProtocolError(f"unknown message type {message.get('type')!r}") from None
    return kind, message


def field(message: Mapping[str, Any], name: str) -> Any:
    """A required field; ``ProtocolError`` naming it if absent."""
    try:
        return message[name]
    except KeyError:
        raise ProtocolError(f"message is missing the field {name!r}") from None


def vector(message: Mapping[str, Any], name: str, size: int | None = None) -> np.ndarray:
    """A required numeric list field as float64 (NaN and inf allowed), optionally of ``size``."""
    value = field(message, name)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProtocolError(f"field {name!r} is not a list of numbers") from None
    if array.ndim != 1 or (size is not None and array.shape != (size,)):
        raise ProtocolError(f"field {name!r} must be a list of {size or 'some'} numbers")
    return array


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- states and events ---------------------------------------------------------------------------
def state_fields(state: RobotState, events: list[Event] | tuple[Event, ...] = ()) -> dict[str, Any]:
    """The fields of a ``state`` message."""
    base = state.base
    return {
        "seq": state.seq,
        "time": state.time,
        "position": state.position,
        "velocity": state.velocity,
        "effort": state.effort,
        "observation": state.observation,
        "base": None
        if base is None
        else {
            "position": base.position,
            "orientation": base.orientation,
            "linear_velocity": base.linear_velocity,
            "angular_velocity": base.angular_velocity,
        },
        "applied": state.applied,
        "round_trip": None if math.isnan(state.round_trip) else state.round_trip,
        "missed": state.missed,
        "events": [
            {
                "cycle": e.cycle,
                "time": e.time,
                "kind": e.kind.name,
                "joint": e.joint,
                "detail": e.detail,
            }
            for e in events
        ],
    }


def state_from_fields(message: Mapping[str, Any]) -> tuple[RobotState, list[Event]]:
    """The ``RobotState`` and the robot-reported events of a ``state`` message."""
    base = message.get("base")
    observation = message.get("observation")
    applied = message.get("applied")
    round_trip = message.get("round_trip")
    try:
        state = RobotState(
            time=float(field(message, "time")),
            seq=int(field(message, "seq")),
            position=vector(message, "position"),
            velocity=vector(message, "velocity"),
            effort=vector(message, "effort"),
            observation=None if observation is None else np.asarray(observation, dtype=np.float32),
            base=None
            if base is None
            else BaseState(
                vector(base, "position", 3),
                vector(base, "orientation", 4),
                vector(base, "linear_velocity", 3),
                vector(base, "angular_velocity", 3),
            ),
            applied=None if applied is None else np.asarray(applied, dtype=np.float64),
            round_trip=math.nan if round_trip is None else float(round_trip),
            missed=int(message.get("missed", 0)),
        )
        events = [
            Event(
                int(e["cycle"]),
                float(e["time"]),
                EventKind[e["kind"]],
                int(e.get("joint", -1)),
                str(e.get("detail", "")),
                EventSource.ROBOT,
            )
            for e in message.get("events", [])
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise ProtocolError(f"malformed state message: {err}") from None
    return state, events
