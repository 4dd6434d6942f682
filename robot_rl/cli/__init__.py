"""The ``robot-rl`` command line.

Each subcommand lives in its own module with ``main(argv, prog) -> int`` and is imported
only when called, so ``robot-rl envs`` does not pay for torch. Configuration flags are built
from the frozen config dataclasses with tyro, so ``--help`` lists every hyperparameter with
its meaning.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "robot_rl.cli.run",
        "the main job: learn, evaluate, deploy, identify, report (resumable)",
    ),
    "sweep": (
        "robot_rl.cli.sweep",
        "the main job over seeds and hyperparameters, in parallel on Ray (or in-process)",
    ),
    "envs": (
        "robot_rl.cli.envs",
        "list every env with its engines, spaces and randomizable parameters",
    ),
    "rollout": ("robot_rl.cli.rollout", "run a policy in an env and report returns and costs"),
    "train": ("robot_rl.cli.train", "train an agent (robot-rl train ALGO --help)"),
    "plan": (
        "robot_rl.cli.plan",
        "run an MPC planner (iLQR or NMPC) in an env; report return, success, solve times",
    ),
    "deploy": (
        "robot_rl.cli.deploy",
        "run a policy on a robot (simulated, networked, mock) safely and record every cycle",
    ),
    "robot-server": (
        "robot_rl.cli.robot_server",
        "serve a simulated robot over the network (ZeroMQ + CURVE keys)",
    ),
    "export": (
        "robot_rl.cli.export",
        "export a trained policy to TorchScript or ONNX for deployment without training code",
    ),
    "runs": ("robot_rl.cli.runs", "summarise or plot a deployment's run record (show|plot RUN)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robot-rl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="robot-rl",
        description="Sim-to-real robot learning and model-based control.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  {name:<14}{text}" for name, (_, text) in COMMANDS.items()),
    )
    parser.add_argument(
        "command",
        choices=list(COMMANDS),
        metavar="COMMAND",
        help="one of the commands below; `robot-rl COMMAND --help` for its flags",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    if not argv:
        parser.print_help()
        return 2
    ns = parser.parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[ns.command][0])
    try:
        return int(module.main(argv[1:], prog=f"robot-rl {ns.command}") or 0)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        # Bad input (a config, an id, a file, an address): say what is wrong, no traceback.
        print(f"robot-rl {ns.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
