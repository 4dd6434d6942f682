"""Where deployable policies come from: a name or a file, turned into a ``Policy``.

``load_policy(source, act_dim)`` accepts:

- ``zero``: always the zero action (a robot holding its neutral command);
- ``random`` or ``random:SEED``: uniform random actions;
- a ``.onnx`` file or a TorchScript archive written by ``robot_rl.hardware.export``;
- a robot_rl checkpoint (``robot_rl.checkpoint``, loaded with ``weights_only=True``) whose
  metadata names its ``algorithm`` (or ``kind``): the loader registered for it in
  ``CHECKPOINT_LOADERS`` builds the policy (for an MPC controller, with its model). GPS
  policy checkpoints (``robot-rl train gps``) and SAC-family training checkpoints
  (``robot-rl train sac | safe-sac | reset-free``: the deterministic actor) are registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from robot_rl.checkpoint import CheckpointError, load_checkpoint
from robot_rl.evaluation import RandomPolicy
from robot_rl.hardware.export import (
    OnnxPolicy,
    PolicyMetadata,
    TorchPolicy,
    TorchScriptPolicy,
    is_torchscript,
)
from robot_rl.types import Policy

CHECKPOINT_LOADERS: dict[str, str | Callable[[Path], Policy]] = {
    "gps_policy": "robot_rl.hardware.policies:load_gps_policy",
    "sac": "robot_rl.hardware.policies:load_sac_policy",
    "safe-sac": "robot_rl.hardware.policies:load_sac_policy",
    "reset-free": "robot_rl.hardware.policies:load_sac_policy",
}
"""Checkpoint ``algorithm`` metadata -> ``"module:function"`` (imported when first needed) or
the function itself; the function takes the checkpoint
path and returns a ``Policy`` -- a ``TorchPolicy`` for neural policies, which ``robot-rl
export`` can then export. Agents register themselves here."""


class ZeroPolicy:
    """Always the zero action: the middle of every command range."""

    def __init__(self, act_dim: int) -> None:
        self.act_dim = act_dim

    def reset(self) -> None:
        """No memory."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(self.act_dim)


def is_builtin(source: str) -> bool:
    """Whether ``source`` names a built-in policy rather than a file."""
    return source == "zero" or source == "random" or source.startswith("random:")


def load_policy(source: str, act_dim: int | None = None) -> tuple[Policy, PolicyMetadata | None]:
    """The policy named by ``source`` (see the module docstring) and its metadata, if any.

    Args:
        source: a built-in policy name or a file.
        act_dim: action size, needed by the built-in policies only.

    Raises:
        ValueError: ``source`` names nothing loadable (the message says what was tried).
    """
    if is_builtin(source) and act_dim is None:
        raise ValueError(f"the built-in policy {source!r} needs the action size")
    if source == "zero":
        return ZeroPolicy(act_dim), None
    if source == "random" or source.startswith("random:"):
        seed = int(source.split(":", 1)[1]) if ":" in source else 0
        space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float64)
        return RandomPolicy(space, seed=seed), None
    path = Path(source)
    if not path.is_file():
        raise ValueError(
            f"policy {source!r} is neither 'zero', 'random[:SEED]' nor an existing file"
        )
    if path.suffix == ".onnx":
        policy = OnnxPolicy(path)
        return policy, policy.metadata
    if is_torchscript(path):
        policy = TorchScriptPolicy(path)
        return policy, policy.metadata
    try:
        _, metadata = load_checkpoint(path)
    except CheckpointError as err:
        raise ValueError(
            f"{path} is not an ONNX file, a TorchScript archive or a robot_rl checkpoint: {err}"
        ) from err
    algorithm = metadata.get("algorithm", metadata.get("kind"))
    if algorithm not in CHECKPOINT_LOADERS:
        known = ", ".join(sorted(CHECKPOINT_LOADERS)) or "none registered"
        raise ValueError(
            f"checkpoint {path} is for algorithm {algorithm!r}, which has no policy loader "
            f"(known: {known}); export the policy to ONNX or TorchScript instead"
        )
    loader = CHECKPOINT_LOADERS[algorithm]
    if isinstance(loader, str):
        module, _, name = loader.partition(":")
        loader = getattr(importlib.import_module(module), name)
    policy = loader(path)
    return policy, getattr(policy, "metadata", None)


def load_gps_policy(path: Path) -> TorchPolicy:
    """A GPS global policy checkpoint as a deterministic, exportable ``TorchPolicy``."""
    from robot_rl.agents.gps.policy import DeterministicPolicy, GPSPolicy

    network = GPSPolicy.load(path).network
    env_id = load_checkpoint(path)[1].get("env", "")
    metadata = PolicyMetadata(network.obs_size, network.act_size, env_id, algorithm="gps")
    return TorchPolicy(DeterministicPolicy(network.mean), metadata)


def load_sac_policy(path: Path) -> TorchPolicy:
    """The deterministic actor of a SAC-family training checkpoint as a ``TorchPolicy``."""
    from robot_rl.agents.sac import load_actor

    actor = load_actor(path)
    metadata = load_checkpoint(path)[1]
    info = PolicyMetadata(
        int(metadata["obs_dim"]), int(metadata["act_dim"]), metadata.get("env_id", ""),
        algorithm=str(metadata["algorithm"]),
    )  # fmt: skip
    return TorchPolicy(actor, info)
