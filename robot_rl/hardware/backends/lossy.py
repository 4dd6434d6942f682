"""A lossy link between a client and a robot server, for fault-injection tests and drills.

``LossyLink`` sits where the network would, holding the server's key pair (to face the client)
and an authorized client key pair (to face the server), and forwards every message except the
commands it is told to drop or delay. It shows what a real network fault does to a run: the
server holds the previous command, counts the tick as missed, discards late commands, and its
watchdog stops the robot after too many in a row.
"""

from __future__ import annotations

import heapq
import threading
import time

import numpy as np
import zmq

from robot_rl.hardware.keys import ClientKeys, ServerKeys, require_curve
from robot_rl.hardware.protocol import MessageType, ProtocolError, decode


class LossyLink:
    """Forwards client <-> server traffic, dropping or delaying chosen commands.

    Args:
        server_keys: the server's key pair (the link poses as the server to the client).
        client_keys: an authorized client key pair and the server's public key.
        upstream: the robot server's endpoint.
        drop: command sequence numbers to drop.
        delay: command sequence numbers to deliver ``delay_by`` seconds late.
        delay_by: how late, s.
        drop_rate: probability of dropping any other command.
        seed: seed of the random drops.

    Attributes:
        endpoint: where clients connect instead of the server.
        dropped, delayed: sequence numbers of the commands dropped and delayed so far.
    """

    def __init__(
        self,
        server_keys: ServerKeys,
        client_keys: ClientKeys,
        upstream: str,
        drop: set[int] | None = None,
        delay: set[int] | None = None,
        delay_by: float = 0.0,
        drop_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        require_curve()
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"drop_rate must be in [0, 1], got {drop_rate}")
        self._ctx = zmq.Context()
        front = self._front = self._ctx.socket(zmq.ROUTER)
        front.curve_server = True
        front.curve_publickey = server_keys.pair.public
        front.curve_secretkey = server_keys.pair.secret
        front.linger = 0
        front.bind("tcp://127.0.0.1:*")
        self.endpoint = front.getsockopt_string(zmq.LAST_ENDPOINT)
        back = self._back = self._ctx.socket(zmq.DEALER)
        back.curve_publickey = client_keys.pair.public
        back.curve_secretkey = client_keys.pair.secret
        back.curve_serverkey = client_keys.server_public
        back.linger = 0
        back.connect(upstream)
        self._drop, self._delay = set(drop or ()), set(delay or ())
        self.delay_by, self.drop_rate = delay_by, drop_rate
        self._rng = np.random.default_rng(seed)
        self.dropped: list[int] = []
        self.delayed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy-link", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop forwarding and release the sockets."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> LossyLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _verdict(self, frame: bytes) -> str:
        try:
            kind, message = decode(frame)
        except ProtocolError:
            return "pass"
        if kind is not MessageType.COMMAND:
            return "pass"
        seq = message.get("seq")
        if seq in self._drop or (self.drop_rate and self._rng.random() < self.drop_rate):
            self._drop.discard(seq)
            self.dropped.append(seq)
            return "drop"
        if seq in self._delay:
            self._delay.discard(seq)
            self.delayed.append(seq)
            return "delay"
        return "pass"

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._back, zmq.POLLIN)
        identity: bytes | None = None
        held: list[tuple[float, int, bytes]] = []
        count = 0
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(1):
                    if sock is self._front:
                        identity, frame = self._front.recv_multipart()
                        verdict = self._verdict(frame)
                        if verdict == "pass":
                            self._back.send(frame)
                        elif verdict == "delay":
                            count += 1
                            heapq.heappush(held, (time.monotonic() + self.delay_by, count, frame))
                    elif identity is not None:
                        self._front.send_multipart([identity, self._back.recv()])
                    else:
                        self._back.recv()  # nobody to forward to yet
                while held and held[0][0] <= time.monotonic():
                    self._back.send(heapq.heappop(held)[2])
        finally:
            self._front.close(0)
            self._back.close(0)
            self._ctx.term()
