"""``robot-rl run``: the main job (see ``robot_rl.pipeline``), resumable."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from robot_rl.config import ConfigError, build, load_file, set_dotted


def apply_overrides(data: dict[str, Any], assignments: Sequence[str]) -> None:
    """Apply ``--set dotted.key=value`` overrides (values parsed as YAML) to ``data``."""
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {assignment!r}")
        try:
            set_dotted(data, key, yaml.safe_load(raw))
        except (ValueError, yaml.YAMLError) as err:
            raise ConfigError(f"--set {assignment}: {err}") from err


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the whole sim-to-real loop on the cart-pole (or a configured task): "
        "collect, learn (PETS), evaluate, deploy to a robot server, identify, report.",
    )
    parser.add_argument("--config", type=Path, help="YAML or TOML file overriding the defaults")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one field, e.g. --set learn.max_episodes=5 (repeatable)",
    )
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue an interrupted run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go")
    parser.add_argument("--name", help="run folder name (default: the start time)")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration as YAML and exit",
    )
    args = parser.parse_args(list(argv))

    # Imported here: validating the arguments above should not wait for torch.
    from robot_rl.config import to_dict
    from robot_rl.pipeline import RunConfig, execute, resume, start

    if args.resume is not None:
        if args.config is not None or args.set:
            parser.error("--resume continues a run with its own configuration; drop --config/--set")
        run, config = resume(args.resume)
    else:
        data = load_file(args.config) if args.config is not None else {}
        apply_overrides(data, args.set)
        config = build(RunConfig, data)
        if args.print_config:
            print(yaml.safe_dump(to_dict(config), sort_keys=False))
            return 0
        run = start(config, args.runs_dir, args.name)
        print(f"run folder: {run.path}")
    from robot_rl.hardware import RobotError

    try:
        execute(run, config)
    except RobotError as err:
        print(
            f"{prog}: error: the robot is not available: {err}\n"
            f"Finished stages are kept; when the robot answers, continue with "
            f"`{prog} --resume {run.path}`.",
            file=sys.stderr,
        )
        return 3
    return 0
