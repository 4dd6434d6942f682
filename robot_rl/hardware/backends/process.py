"""A robot server in its own process: the stand-in real robot of experiments and the main job.

``ServedRobot`` starts ``robot-rl robot-server`` for an env on an engine (with a reality gap
if given) on a free loopback port, waits until it serves, hands out authenticated
``NetworkRobot`` clients, and stops the process on ``close`` (also on exceptions, as a
context manager).
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

from robot_rl.envs.physics.base import Engine
from robot_rl.hardware.backends.network import NetworkRobot
from robot_rl.hardware.backends.sim import RealityGap
from robot_rl.hardware.keys import load_client_keys

START_TIMEOUT = 60.0
"""Longest wait for a server to come up, s (it builds its env and loads the robot)."""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedRobot:
    """``robot-rl robot-server`` for ``env_id`` in a child process.

    Args:
        env_id: the robot's env.
        keys: key folder from ``init_keys`` (the server's keys and an authorized client's).
        engine: the server's physics engine.
        gap: how the served robot differs from its model (None: nominal).
        watchdog_cycles: the server's own watchdog, in missed control cycles.

    Raises:
        RuntimeError: the server did not start (its first output line is in the message).
    """

    def __init__(
        self,
        env_id: str,
        keys: Path,
        engine: Engine = Engine.PYBULLET,
        gap: RealityGap | None = None,
        watchdog_cycles: int = 3,
    ) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.keys = Path(keys)
        flags: list[str] = []
        for name, value in dataclasses.asdict(gap or RealityGap()).items():
            values = value if isinstance(value, tuple) else (value,)
            flags += [f"--gap.{name.replace('_', '-')}", *(str(v) for v in values)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "robot_rl", "robot-server", "--robot", env_id,
             "--engine", Engine(engine).value, "--bind", self.endpoint, "--keys", str(self.keys),
             "--no-verbose", "--safety.watchdog-cycles", str(watchdog_cycles), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        if "serving" not in line:
            self.process.kill()
            _, err = self.process.communicate()
            raise RuntimeError(
                f"the robot server did not start: {line.strip()!r} {err.strip()[-2000:]}"
            )

    def client(self) -> NetworkRobot:
        """A new authenticated client of this server."""
        return NetworkRobot(load_client_keys(self.keys), self.endpoint)

    def close(self) -> None:
        """Stop the server (it ends in its safe stop) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> ServedRobot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
