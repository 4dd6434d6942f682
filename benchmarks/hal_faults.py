"""Fault-injection drill: inject each fault the hardware layer must survive, several times, and
count the safe stops achieved and the cycles lost (read back from the run records).

Faults (each injected ``--repeats`` times at a random cycle, seeded):

- policy raises; policy stalls (0.5 s); NaN/inf action bursts of 1 to 4 cycles (the
  watchdog trips at 3); actions 1e6 out of range;
- the robot stops answering; every cycle overruns its deadline (a slow robot);
- the client is killed mid-run (the robot server's watchdog must stop the robot);
- the robot server is killed mid-run (the client must end the run as comms lost);
- commands dropped (5 % at random) and delayed past their tick, through a lossy link;
- a client without an authorized key tries to connect.

A safe stop is achieved when the robot ended in its safe behaviour (its last command is the
safe command and it was safe-stopped), or, for a killed server, when the client shut down
cleanly without hanging (the robot process itself is gone). A record is complete when it reads
back with its termination reason. Cycles lost: deadlines skipped plus commands the robot counted
missing; commands held: cycles in which the supervisor held the previous command because none
valid arrived (stalls, rejected NaN/inf).

Usage: python benchmarks/hal_faults.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq.auth
from common import machine_summary, markdown_table, write_section

from robot_rl.hardware import (
    DeployConfig,
    EventKind,
    Lifecycle,
    MockFaults,
    MockRobot,
    NetworkRobot,
    Pacing,
    RobotConnectionError,
    RobotServer,
    SafetyConfig,
    SimRobot,
    deploy,
    init_keys,
    load_client_keys,
    load_server_keys,
    mock_spec,
    read_run,
    safe_command,
)
from robot_rl.hardware.backends.lossy import LossyLink
from robot_rl.hardware.keys import ClientKeys, KeyPair

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    termination: str
    safe: bool
    complete: bool
    lost: int = 0
    held: int = 0


class Scripted:
    """A constant action; from step ``at`` on, ``fault(k)`` (k = steps since ``at``) replaces
    it when it returns an array."""

    def __init__(self, act_dim: int, at: int, fault: Callable[[int], np.ndarray | None]) -> None:
        self.act_dim, self.at, self.fault, self.step = act_dim, at, fault, 0

    def reset(self) -> None:
        self.step = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        k, self.step = self.step - self.at, self.step + 1
        out = self.fault(k) if k >= 0 else None
        return np.full(self.act_dim, 0.3) if out is None else out


def mock_safe(robot: MockRobot) -> bool:
    last = robot.last_command
    return (
        robot.lifecycle is Lifecycle.FINALIZED
        and robot.safe_stops >= 1
        and last is not None
        and np.array_equal(last, safe_command(robot.spec, robot._state()))
    )


def outcome_from(record: Path, safe: bool) -> Outcome:
    log = read_run(record)
    held = sum(e.kind is EventKind.MISSED_COMMAND for e in log.events)
    return Outcome(log.termination, safe, log.complete, log.lost_cycles(), held)


def on_mock(tmp: Path, policy, faults: MockFaults | None = None, pacing=Pacing.NONE) -> Outcome:
    robot = MockRobot(mock_spec(rate=100.0), faults)
    record = tmp / f"{time.monotonic_ns()}.h5"
    deploy(robot, policy, DeployConfig(episode_steps=100, pacing=pacing), record=record)
    return outcome_from(record, mock_safe(robot))


def on_sim(tmp: Path, env_id: str, act_dim: int, policy) -> Outcome:
    record = tmp / f"{time.monotonic_ns()}.h5"
    result = deploy(
        SimRobot.make(env_id), policy, DeployConfig(episodes=1, pacing=Pacing.NONE), record=record
    )
    log = read_run(record)
    applied = log.cycles["applied"][np.isfinite(log.cycles["applied"]).all(axis=1)]
    spec = log.spec
    within = np.all((applied >= spec.command_low) & (applied <= spec.command_high))
    stopped = result.event_counts.get("SAFE_STOP", 0) >= 1
    return Outcome(log.termination, bool(within and stopped), log.complete, log.lost_cycles(),
                   sum(e.kind is EventKind.MISSED_COMMAND for e in log.events))  # fmt: skip


def serve_mock(keys: Path, watchdog: int = 3) -> tuple[RobotServer, MockRobot, Callable[[], None]]:
    import threading

    robot = MockRobot(mock_spec(rate=50.0))
    server = RobotServer(
        robot,
        load_server_keys(keys),
        "tcp://127.0.0.1:*",
        SafetyConfig(watchdog_cycles=watchdog),
        session_timeout=1.0,
    )
    server.start()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=10)

    return server, robot, close


def client_killed(tmp: Path, keys: Path, rng: np.random.Generator) -> Outcome:
    server, robot, close = serve_mock(keys)
    record = tmp / f"{time.monotonic_ns()}.h5"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from robot_rl.hardware import DeployConfig, NetworkRobot, deploy, load_client_keys
        class Push:
            def reset(self): pass
            def act(self, obs): return np.array([0.4, -0.4])
        deploy(NetworkRobot(load_client_keys({str(keys)!r}), {server.endpoint!r}), Push(),
               DeployConfig(episodes=None, duration=60.0, chunk_cycles=10), record={str(record)!r})
        """
    )
    client = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    try:
        ticks = int(rng.integers(20, 100))
        deadline = time.monotonic() + 60
        while server.status.ticks < ticks and time.monotonic() < deadline:
            time.sleep(0.005)
        client.kill()
        client.wait()
        deadline = time.monotonic() + 5
        while server.status.watchdog_trips == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        safe = (  # judged before the server shuts down (which safe-stops again)
            server.status.watchdog_trips == 1
            and robot.safe_stops == 1
            and np.array_equal(robot.last_command, [0.0, 0.0])
        )
    finally:
        client.kill()
        close()
    log = read_run(record)
    return Outcome(
        f"server watchdog ({log.termination} client record)",
        safe,
        log.n_cycles > 0,
        server.status.missed,
        0,
    )


def server_killed(tmp: Path, keys: Path, rng: np.random.Generator) -> Outcome:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from robot_rl.cli import main; sys.exit(main())",
         "robot-server", "--robot", "robot_rl/CartpoleSwingup-v0", "--engine", "pybullet",
         "--bind", endpoint, "--keys", str(keys), "--no-verbose"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        server.stdout.readline()
        at = int(rng.integers(5, 60))
        policy = Scripted(1, at, lambda k: os.kill(server.pid, signal.SIGKILL) if k == 0 else None)
        robot = NetworkRobot(load_client_keys(keys), endpoint, timeout=0.5)
        record = tmp / f"{time.monotonic_ns()}.h5"
        start = time.monotonic()
        deploy(robot, policy, DeployConfig(episodes=1), record=record)
        clean = robot.lifecycle is Lifecycle.FINALIZED and time.monotonic() - start < 30
    finally:
        server.kill()
        server.wait()
    return outcome_from(record, clean)


def lossy(tmp: Path, keys: Path, rng: np.random.Generator, delay: bool) -> Outcome:
    server, robot, close = serve_mock(keys, watchdog=3)
    seqs = set(rng.choice(np.arange(10, 190), size=8, replace=False).tolist())
    link = LossyLink(
        load_server_keys(keys), load_client_keys(keys), server.endpoint,
        delay=seqs if delay else None, delay_by=0.03, drop_rate=0.0 if delay else 0.05,
        seed=int(rng.integers(1 << 31)),
    )  # fmt: skip
    record = tmp / f"{time.monotonic_ns()}.h5"
    try:
        deploy(NetworkRobot(load_client_keys(keys), link.endpoint), Scripted(2, 10**9, lambda k: None),
               DeployConfig(episode_steps=200), record=record)  # fmt: skip
    finally:
        link.close()
        close()
    safe = robot.safe_stops >= 1 and np.array_equal(robot.last_command, [0.0, 0.0])
    return outcome_from(record, safe)


def unauthorized(tmp: Path, keys: Path) -> Outcome:
    server, robot, close = serve_mock(keys)
    folder = tmp / f"stranger{time.monotonic_ns()}"
    folder.mkdir()
    public, secret = zmq.auth.load_certificate(zmq.auth.create_certificates(folder, "x")[1])
    stranger = ClientKeys(KeyPair(public, secret), load_client_keys(keys).server_public)
    try:
        NetworkRobot(stranger, server.endpoint, timeout=0.5).configure()
        refused = False
    except RobotConnectionError:
        refused = True
    untouched = robot.commands == [] and server.status.sessions == 0  # before the shutdown stop
    close()
    return Outcome("refused" if refused else "ACCEPTED", refused and untouched, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    load_before = machine_summary()
    print(load_before, flush=True)
    nan_or_inf = [np.nan, np.inf, -np.inf]

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        keys = init_keys(tmp / "keys")

        def raises(k: int) -> np.ndarray:
            raise RuntimeError("policy bug")

        def stalls(k: int) -> None:
            if k == 0:
                time.sleep(0.5)

        bursts = itertools.count()

        def burst(length: int) -> Callable[[int], np.ndarray | None]:
            return lambda k: np.array([nan_or_inf[k % 3]]) if k < length else None

        faults: dict[str, Callable[[], Outcome]] = {
            "policy raises": lambda: on_mock(tmp, Scripted(2, int(rng.integers(5, 95)), raises)),
            "policy stalls 0.5 s": lambda: on_mock(
                tmp, Scripted(2, int(rng.integers(5, 95)), stalls), pacing=Pacing.TIMER
            ),
            "NaN/inf action burst (1, 2, 3, 4, 1 ... cycles)": lambda: on_sim(
                tmp,
                "robot_rl/CartpoleSwingup-v0",
                1,
                Scripted(1, int(rng.integers(5, 90)), burst(1 + next(bursts) % 4)),
            ),
            "actions ±1e6": lambda: on_sim(
                tmp,
                "robot_rl/ReacherTwoLink-v0",
                2,
                Scripted(2, int(rng.integers(0, 40)), lambda k: rng.choice([-1e6, 1e6], 2)),
            ),
            "robot stops answering": lambda: on_mock(
                tmp,
                Scripted(2, 10**9, lambda k: None),
                MockFaults(stop_answering_after=int(rng.integers(5, 95))),
            ),
            "every cycle overruns (slow robot)": lambda: on_mock(
                tmp, Scripted(2, 10**9, lambda k: None), MockFaults(read_delay=0.015), Pacing.TIMER
            ),
            "client killed": lambda: client_killed(tmp, keys, rng),
            "server killed": lambda: server_killed(tmp, keys, rng),
            "5 % of commands dropped": lambda: lossy(tmp, keys, rng, delay=False),
            "8 commands delayed 1.5 periods": lambda: lossy(tmp, keys, rng, delay=True),
            "client without an authorized key": lambda: unauthorized(tmp, keys),
        }
        rows = []
        totals = np.zeros(3, dtype=int)
        for name, inject in faults.items():
            outcomes = [inject() for _ in range(args.repeats)]
            terminations = sorted({o.termination for o in outcomes})
            row = [
                name, len(outcomes), sum(o.safe for o in outcomes),
                sum(o.complete for o in outcomes), sum(o.lost for o in outcomes),
                sum(o.held for o in outcomes), ", ".join(terminations),
            ]  # fmt: skip
            totals += [len(outcomes), row[2], row[3]]
            rows.append(row)
            print(" | ".join(str(c) for c in row), flush=True)
    load_after = machine_summary()
    header = [
        "fault", "injected", "safe stops", "records complete", "cycles lost", "commands held",
        "how the runs ended",
    ]  # fmt: skip
    body = "\n".join(
        [
            "## Fault drill (`benchmarks/hal_faults.py`)",
            "",
            f"Load before: {load_before}. Load after: {load_after}.",
            "",
            f"{totals[0]} faults injected, {totals[1]} safe stops achieved, {totals[2]} "
            "complete run records (a killed client's record is read back up to its last "
            "chunk and counted when readable). Cycles lost: deadlines skipped plus commands "
            "the robot counted missing, from the records (for a killed client: the server's "
            "missed ticks before its watchdog stopped the robot). Commands held: cycles where "
            "the supervisor held the previous command because no valid one arrived. Mock "
            "robots at 100 Hz (50 Hz behind a server), simulated robots on MuJoCo; the killed "
            "server serves the cart-pole on PyBullet.",
            "",
            markdown_table(header, rows),
        ]
    )
    write_section("hal_faults", body)


if __name__ == "__main__":
    main()
