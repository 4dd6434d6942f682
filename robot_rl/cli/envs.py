"""``robot-rl envs``: every registered env with its engines, spaces and randomizable parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import robot_rl
from robot_rl.cli.common import parse_config


@dataclass(frozen=True)
class EnvsArgs:
    """List the registered envs."""

    json: bool = False
    """Print machine-readable JSON instead of a table."""


def describe_envs() -> list[dict]:
    """One record per env: id, summary, engines, spaces, timing and randomization table."""
    records = []
    for entry in robot_rl.registered_envs():
        env = robot_rl.make(entry.id)
        task = env.task
        records.append(
            {
                "id": entry.id,
                "summary": entry.summary,
                "robot": task.robot.name,
                "engines": [e.value for e in entry.engines],
                "observation": list(env.observation_space.shape),
                "action": list(env.action_space.shape),
                "control_dt": task.control_dt,
                "episode_steps": task.episode_steps,
                "randomization": robot_rl.envs.table_to_dict(entry.randomization.table),
            }
        )
        env.close()
    return records


def main(argv: Sequence[str], prog: str) -> int:
    args = parse_config(EnvsArgs, argv, prog)
    records = describe_envs()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for r in records:
        print(f"{r['id']}  ({r['robot']}; engines: {', '.join(r['engines'])})")
        print(f"  {r['summary']}")
        print(
            f"  observation {tuple(r['observation'])}, action {tuple(r['action'])} in [-1, 1], "
            f"{r['episode_steps']} steps of {r['control_dt']} s"
        )
        print("  randomizable:")
        for name, d in r["randomization"].items():
            op = "x" if d["relation"] == "scale" else "+"
            print(f"    {name:<18} default {op} {d['distribution']}[{d['low']:g}, {d['high']:g}]")
        print()
    return 0
