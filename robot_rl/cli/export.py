"""``robot-rl export CHECKPOINT OUT``: export a trained policy to TorchScript or ONNX.

    robot-rl export runs/sac/checkpoint.pt policy.onnx     # ONNX (needs the [onnx] extra)
    robot-rl export runs/sac/checkpoint.pt policy.pt       # TorchScript

The checkpoint is loaded with ``weights_only=True`` by the loader its algorithm registered in
``robot_rl.hardware.policies.CHECKPOINT_LOADERS``; the exported file carries the policy's
metadata and runs without any training code (``robot-rl deploy --policy OUT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from robot_rl.cli.common import parse_config


@dataclass(frozen=True)
class ExportCommand:
    """Export a trained policy to TorchScript (.pt) or ONNX (.onnx)."""

    checkpoint: Annotated[Path, tyro.conf.Positional]
    """A robot_rl checkpoint of a neural policy."""
    out: Annotated[Path, tyro.conf.Positional]
    """The file to write; .onnx for ONNX, anything else for TorchScript."""


def main(argv: Sequence[str], prog: str) -> int:
    from robot_rl.hardware.export import TorchPolicy, export_onnx, export_torchscript
    from robot_rl.hardware.policies import load_policy

    cmd = parse_config(ExportCommand, argv, prog)
    policy, _ = load_policy(str(cmd.checkpoint))
    if not isinstance(policy, TorchPolicy):
        raise ValueError(
            f"{cmd.checkpoint} loads as a {type(policy).__name__}, not a neural policy that "
            "can be exported"
        )
    export = export_onnx if cmd.out.suffix == ".onnx" else export_torchscript
    path = export(policy.module, cmd.out, policy.metadata)
    print(f"exported {cmd.checkpoint} ({policy.metadata.algorithm or '?'}) to {path}")
    return 0
