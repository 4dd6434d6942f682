"""``robot-rl robot-server``: serve a simulated robot over the network, as a real robot would be.

    robot-rl robot-server --init-keys ~/.robot_rl/keys          # once: create CURVE keys
    robot-rl robot-server --robot robot_rl/ArmReach-v0 --engine pybullet

The server binds 127.0.0.1 unless ``--bind`` names another address, accepts only clients whose
public key is in ``KEYS/authorized_clients/``, enforces its own limits and watchdog, and
safe-stops the robot on Ctrl-C or SIGTERM. The protocol is in
``robot_rl/hardware/PROTOCOL.md``.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from robot_rl.cli.common import parse_config
from robot_rl.envs import Engine
from robot_rl.hardware.backends.sim import RealityGap
from robot_rl.hardware.keys import default_key_dir, init_keys, load_server_keys
from robot_rl.hardware.protocol import DEFAULT_ENDPOINT
from robot_rl.hardware.safety import SafetyConfig


@dataclass(frozen=True)
class RobotServerConfig:
    """Serve a simulated robot to authenticated clients."""

    robot: str = "robot_rl/ArmReach-v0"
    """Env id of the simulated robot to serve."""
    engine: Engine = Engine.PYBULLET
    """Physics engine of the served robot."""
    bind: str = DEFAULT_ENDPOINT
    """ZeroMQ endpoint to bind (loopback only unless another address is given)."""
    keys: Path = field(default_factory=default_key_dir)
    """Key folder: server.key_secret and authorized_clients/ (see --init-keys)."""
    init_keys: Path | None = None
    """Create a key folder (server and one client key pair) here, print where, and exit."""
    rate: float | None = None
    """Control rate, Hz (default: the task's; a multiple of the physics step)."""
    gap: RealityGap = field(default_factory=RealityGap)
    """How the served robot differs from its nominal model, a stand-in for the reality gap
    (default: no difference)."""
    randomize: bool = False
    """Randomize the robot's physical parameters every episode (ignored with a gap)."""
    seed: int = 0
    """Seed of the robot's first start state."""
    session_timeout: float = 2.0
    """Close an inactive session whose client has been silent this long, s."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """The server's own limits and watchdog."""
    verbose: bool = True
    """Log sessions, stops and watchdog trips."""


def serve(config: RobotServerConfig) -> int:
    from robot_rl.hardware.backends.server import RobotServer
    from robot_rl.hardware.backends.sim import SimRobot

    robot = SimRobot.make(
        config.robot,
        config.engine,
        randomization=config.randomize or None,
        period=None if config.rate is None else 1.0 / config.rate,
        gap=None if config.gap == RealityGap() else config.gap,
        seed=config.seed,
    )
    server = RobotServer(
        robot,
        load_server_keys(config.keys),
        endpoint=config.bind,
        safety=config.safety,
        session_timeout=config.session_timeout,
    )
    endpoint = server.start()
    print(f"serving {config.robot} ({config.engine.value}) on {endpoint}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        print("stopped: robot safe-stopped", flush=True)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str], prog: str) -> int:
    config = parse_config(RobotServerConfig, argv, prog)
    if config.init_keys is not None:
        folder = init_keys(config.init_keys)
        print(
            f"keys written to {folder}:\n"
            f"  server: server.key_secret (keep on the robot computer), server.key (for clients)\n"
            f"  client: client.key_secret + client.key (for the client), "
            f"authorized_clients/client.key (accepted by the server)"
        )
        return 0
    logging.basicConfig(
        level=logging.INFO if config.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM: safe stop like Ctrl-C
    try:
        return serve(config)
    finally:
        signal.signal(signal.SIGTERM, previous)
