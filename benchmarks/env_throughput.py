"""Env throughput against the bare engine, and the cost of a randomization resample.

For every env and engine: steps per second of ``env.step`` (nominal parameters, no time
limit) and of the bare engine stepping the same model with the same number of physics
substeps per action (a Python loop of ``mujoco.mj_step`` / ``stepSimulation`` with the control
set each action), measured in interleaved rounds so both see the same machine load. The
overhead is env time / bare time - 1 (median over rounds). The resample cost is one draw
from the env's default randomization table plus applying it to the engine.

Targets: overhead <= 25 % on the MuJoCo tasks; a resample under 2 ms.

Usage: python benchmarks/env_throughput.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np
from common import machine_summary, markdown_table, write_section

import robot_rl
from robot_rl.envs import sample_domain_params
from robot_rl.envs.physics.pybullet import pybullet


def _bare_mujoco(env, actions: np.ndarray) -> float:
    m, d = env.physics.model, env.physics.data
    mid, half = env._ctrl_mid, env._ctrl_half
    substeps = env.substeps
    start = time.perf_counter()
    for a in actions:
        d.ctrl[:] = mid + half * a
        for _ in range(substeps):
            mujoco.mj_step(m, d)
    return time.perf_counter() - start


def _bare_pybullet(env, actions: np.ndarray) -> float:
    physics = env.physics
    c, body, joints = physics.client, physics.body, physics._act_joints
    limit = np.array([a.force_limit for a in env.task.robot.actuators])
    substeps = env.substeps
    start = time.perf_counter()
    for a in actions:
        c.setJointMotorControlArray(
            body, joints, pybullet.TORQUE_CONTROL, forces=(limit * a).tolist()
        )
        for _ in range(substeps):
            c.stepSimulation()
    return time.perf_counter() - start


def _env_steps(env, actions: np.ndarray) -> float:
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return time.perf_counter() - start


def measure(env_id: str, engine: str, rounds: int, steps: int) -> dict:
    env = robot_rl.make(env_id, engine=engine, max_episode_steps=None)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    # Moderate actions keep every robot in its working range for the whole run.
    actions = 0.3 * rng.uniform(-1, 1, (steps, env.action_space.shape[0]))
    bare = _bare_mujoco if engine == "mujoco" else _bare_pybullet
    env_times, bare_times = [], []
    for _ in range(rounds):
        env.reset(seed=0)
        env_times.append(_env_steps(env, actions))
        env.reset(seed=0)
        bare_times.append(bare(env, actions))
    ratios = np.array(env_times) / np.array(bare_times) - 1.0

    table = robot_rl.envs.env_entry(env_id).randomization.table
    resample = []
    for _ in range(50):
        start = time.perf_counter()
        params = sample_domain_params(env.nominal_params, table, rng)
        env.physics.apply_params(params)
        resample.append(time.perf_counter() - start)
    env.close()
    return {
        "env_sps": steps / np.median(env_times),
        "bare_sps": steps / np.median(bare_times),
        "overhead": float(np.median(ratios)),
        "resample_ms": 1e3 * float(np.median(resample)),
        "substeps": env.substeps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    load = machine_summary()
    rows = []
    for entry in robot_rl.registered_envs():
        for engine in ("mujoco", "pybullet"):
            steps = 300 if "Quadruped" in entry.id or engine == "pybullet" else 1000
            r = measure(entry.id, engine, args.rounds, steps)
            target = ("yes" if r["overhead"] <= 0.25 else "NO") if engine == "mujoco" else "n/a"
            row = [
                entry.id, engine, r["substeps"], f"{r['env_sps']:,.0f}", f"{r['bare_sps']:,.0f}",
                f"{r['overhead']:+.1%}", target, f"{r['resample_ms']:.3f}",
                "yes" if r["resample_ms"] < 2.0 else "NO",
            ]  # fmt: skip
            rows.append(row)
            print(" | ".join(str(c) for c in row), flush=True)
    header = [
        "env", "engine", "substeps", "env steps/s", "bare steps/s", "overhead",
        "<= 25 %", "resample ms", "< 2 ms",
    ]  # fmt: skip
    body = "\n".join(
        [
            "## Env throughput vs the bare engine (`benchmarks/env_throughput.py`)",
            "",
            f"Machine: {load}. Median of {args.rounds} interleaved rounds.",
            "The overhead target applies to MuJoCo; PyBullet's bare loop holds one torque per action,",
            "while the env computes its actuator laws (PD, velocity servo, gravity compensation)",
            "every physics step in Python, so its overhead is the price of identical actuation.",
            "",
            markdown_table(header, rows),
        ]
    )
    write_section("env_throughput", body)


if __name__ == "__main__":
    main()
