"""``robot-rl train ALGO``: train an agent; each algorithm's flags come from its config class."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# algorithm -> (module with main(argv, prog), one-line help)
ALGORITHMS: dict[str, tuple[str, str]] = {
    "sac": ("robot_rl.cli.train_sac", "Soft Actor-Critic"),
    "safe-sac": ("robot_rl.cli.train_safe_sac", "SAC with a Lagrangian safety constraint"),
    "reset-free": ("robot_rl.cli.train_reset_free", "reset-free SAC (forward + reset agents)"),
    "gps": ("robot_rl.cli.train_gps", "mirror-descent guided policy search (reaching tasks)"),
    "pets": ("robot_rl.cli.train_pets", "PETS: a learned dynamics ensemble planned on with MPC"),
}


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train an agent.",
        epilog="\n".join(f"  {name:<12}{text}" for name, (_, text) in ALGORITHMS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("algorithm", choices=list(ALGORITHMS), metavar="ALGORITHM")
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    ns = parser.parse_args(argv[:1])
    module = importlib.import_module(ALGORITHMS[ns.algorithm][0])
    return int(module.main(argv[1:], prog=f"{prog} {ns.algorithm}") or 0)
