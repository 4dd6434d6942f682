"""Round-trip latency and sustainable rate of the networked robot; jitter of the control loop.

1. Network. A robot server (``robot-rl robot-server``, ``robot_rl/ArmReach-v0``: the 7-DoF
   iiwa on PyBullet) runs in its own process on loopback; this process deploys the zero
   policy to it through ``NetworkRobot`` with the full deployment path (supervisor, run
   record) for ``--seconds`` at each rate. The server measures every round trip: from sending
   state k to receiving the command for state k (two network legs, JSON encoding both ways,
   and the client's whole cycle). A rate is sustained when at most 0.1 % of the commands
   miss their tick and the p99 round trip is under the period.
   Target: 500 Hz with p99 round trip < 2 ms.
2. Loop. The same deployment path on a mock 7-joint robot with a timer-paced loop
   (``Pacing.TIMER``) at 100 Hz and 500 Hz, busy-waiting the last 0.2 ms before each
   deadline and sleeping only: lateness of each cycle start after its deadline (jitter) and
   overruns.

The machine is shared; its load is printed and written next to the figures.

Usage: python benchmarks/hal_latency.py [--seconds 10] [--rates 100 250 500 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import machine_summary, markdown_table, write_section

from robot_rl.hardware import (
    DeployConfig,
    MockRobot,
    NetworkRobot,
    Pacing,
    deploy,
    init_keys,
    load_client_keys,
    mock_spec,
    read_run,
)
from robot_rl.hardware.policies import ZeroPolicy
from robot_rl.hardware.protocol import MessageType, encode, state_fields

REPO = Path(__file__).resolve().parent.parent
ROBOT = "robot_rl/ArmReach-v0"
WATCHDOG_CYCLES = 50
"""The benchmark server's watchdog allows this many missed ticks in a row, so that a rate the
machine cannot sustain shows up as a count of misses rather than as a stopped run."""


def start_server(keys: Path, rate: float, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from robot_rl.cli import main; sys.exit(main())",
         "robot-server", "--robot", ROBOT, "--engine", "pybullet", "--rate", str(rate),
         "--bind", f"tcp://127.0.0.1:{port}", "--keys", str(keys), "--no-verbose",
         "--safety.watchdog-cycles", str(WATCHDOG_CYCLES)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = server.stdout.readline()
    if "serving" not in line:
        server.kill()
        raise RuntimeError(f"robot server did not start: {line!r}")
    return server


def network(keys: Path, rate: float, seconds: float, folder: Path, port: int) -> dict:
    server = start_server(keys, rate, port)
    try:
        record = folder / f"net-{rate:g}.h5"
        result = deploy(
            NetworkRobot(load_client_keys(keys), f"tcp://127.0.0.1:{port}"),
            ZeroPolicy(7),
            DeployConfig(episodes=None, duration=seconds, policy_timeout=0.0),
            record=record,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = read_run(record)
    # Round trips of every tick after the first; a tick whose command missed it counts as
    # infinitely late, so the percentiles are not flattered by leaving the misses out.
    rtt = np.nan_to_num(log.cycles["round_trip"][1:] * 1e3, nan=np.inf)
    missed = int(log.cycles["robot_missed"].sum())
    cycles = log.n_cycles
    p99 = float(np.percentile(rtt, 99, method="higher"))
    return {
        "rate": rate,
        "cycles": cycles,
        "termination": result.termination.value,
        "p50": float(np.percentile(rtt, 50, method="higher")),
        "p99": p99,
        "max": float(rtt[np.isfinite(rtt)].max()),
        "missed": missed,
        "missed_frac": missed / max(cycles, 1),
        "period_std": float(np.std(np.diff(log.cycles["t_start"]))) * 1e3,
        "compute_p99": float(np.percentile(log.cycles["compute"], 99)) * 1e3,
        "sustained": result.termination.value == "completed"
        and missed <= 0.001 * cycles
        and p99 < 1e3 / rate,
    }


def loop_jitter(rate: float, spin: float, seconds: float) -> dict:
    result = deploy(
        MockRobot(mock_spec(n_joints=7, rate=rate, observation_size=23)),
        ZeroPolicy(7),
        DeployConfig(
            episodes=None, duration=seconds, pacing=Pacing.TIMER, spin=spin, policy_timeout=0.0
        ),
    )
    s = result.loop
    return {
        "rate": rate,
        "spin": spin,
        "cycles": s.cycles,
        "p50": s.lateness_p50 * 1e3,
        "p99": s.lateness_p99 * 1e3,
        "max": s.lateness_max * 1e3,
        "period_std": s.period_std * 1e3,
        "overruns": s.overruns,
        "lost": result.lost_cycles,
    }


def state_message_bytes() -> int:
    from robot_rl.hardware import SimRobot

    with SimRobot.make(ROBOT, "pybullet") as robot:
        state = robot.read()
    return len(encode(MessageType.STATE, **state_fields(state)))


def _ms(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0, 500.0, 1000.0])
    parser.add_argument("--port", type=int, default=5599)
    args = parser.parse_args()
    load_before = machine_summary()
    print(load_before, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = init_keys(folder / "keys")
        net = []
        for rate in args.rates:
            r = network(keys, rate, args.seconds, folder, args.port)
            net.append(r)
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
    loops = []
    for rate in (100.0, 500.0):
        for spin in (2e-4, 0.0):
            r = loop_jitter(rate, spin, args.seconds)
            loops.append(r)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
    load_after = machine_summary()
    print(load_after, flush=True)

    sustained = [r["rate"] for r in net if r["sustained"]]
    at500 = next((r for r in net if r["rate"] == 500.0), None)
    verdict = (
        "not measured"
        if at500 is None
        else ("met" if at500["sustained"] and at500["p99"] < 2.0 else "NOT met")
    )
    net_rows = [
        [f"{r['rate']:g}", r["cycles"], f"{r['p50']:.3f}", _ms(r["p99"]), f"{r['max']:.2f}",
         f"{r['missed']} ({r['missed_frac']:.2%})", f"{r['period_std']:.3f}",
         f"{r['compute_p99']:.3f}", "yes" if r["sustained"] else "no"]
        for r in net
    ]  # fmt: skip
    loop_rows = [
        [f"{r['rate']:g}", f"{r['spin'] * 1e3:g}", r["cycles"], f"{r['p50']:.3f}",
         f"{r['p99']:.3f}", f"{r['max']:.2f}", f"{r['period_std']:.3f}", r["overruns"], r["lost"]]
        for r in loops
    ]  # fmt: skip
    net_header = [
        "rate Hz", "cycles", "RTT p50 ms", "RTT p99 ms", "RTT max ms (arrived)", "missed",
        "state period std ms", "client cycle p99 ms", "sustained",
    ]  # fmt: skip
    loop_header = [
        "rate Hz", "spin ms", "cycles", "lateness p50 ms", "p99 ms", "max ms",
        "period std ms", "overruns", "cycles lost",
    ]  # fmt: skip
    body = "\n".join(
        [
            "## Networked robot latency and control-loop jitter (`benchmarks/hal_latency.py`)",
            "",
            f"Load before: {load_before}.",
            f"Load after: {load_after}.",
            "",
            f"Robot server: `{ROBOT}` (7-DoF iiwa, PyBullet) in its own process on loopback, "
            f"CURVE-encrypted; state message {state_message_bytes()} bytes of JSON. Client: the "
            f"full deployment path (supervisor, HDF5 record) with the zero policy, "
            f"{args.seconds:g} s per rate, the policy called inline. Round trip: "
            "server-measured, state k sent to command k received; a tick whose command missed "
            "it counts as infinitely late in the percentiles ('missed'); max is over the "
            "commands that arrived. Sustained: at most 0.1 % of commands missed and p99 round trip under "
            f"the period (the server's watchdog is relaxed to {WATCHDOG_CYCLES} missed ticks "
            "so a rate that cannot be sustained is counted, not stopped). Sustained rates: "
            f"{', '.join(f'{r:g} Hz' for r in sustained) or 'none'}. "
            f"Target (500 Hz, p99 < 2 ms): **{verdict}**.",
            "",
            markdown_table(net_header, net_rows),
            "",
            "Timer-paced loop on a mock 7-joint robot (same deployment path, policy inline): "
            "lateness of each cycle start after its deadline.",
            "",
            markdown_table(loop_header, loop_rows),
        ]
    )
    write_section("hal_latency", body)


if __name__ == "__main__":
    main()
