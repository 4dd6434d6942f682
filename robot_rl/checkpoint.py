"""Checkpoints that hold tensors and JSON metadata only, written atomically.

A checkpoint is a ``torch.save`` of ``{"format": ..., "metadata": <json str>, "tensors":
{name: tensor}}``. Loading uses ``weights_only=True``, so a checkpoint can never execute code;
writing goes to a temporary file in the same folder and is renamed into place, so a crash
never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robot_rl.files import atomic_path

FORMAT = "robot_rl.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match what is loading it."""


def save_checkpoint(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Write ``tensors`` and JSON-serialisable ``metadata`` to ``path`` atomically."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "metadata": json.dumps(metadata, sort_keys=True),
        "tensors": {name: t.detach().cpu().clone() for name, t in tensors.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by ``save_checkpoint``.

    Returns:
        (tensors, metadata)

    Raises:
        CheckpointError: the file is missing, unreadable, or not a robot_rl checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    try:
        metadata = json.loads(payload["metadata"])
        tensors = dict(payload["tensors"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} has malformed contents: {err}") from err
    return tensors, metadata


def require_metadata(
    metadata: Mapping[str, Any], expected: Mapping[str, Any], path: str | Path
) -> None:
    """Raise ``CheckpointError`` when ``metadata`` disagrees with ``expected`` on any key."""
    for key, value in expected.items():
        if metadata.get(key) != value:
            raise CheckpointError(
                f"checkpoint {path} was written for {key}={metadata.get(key)!r}, "
                f"but {key}={value!r} is loading it"
            )


def pack_state(state: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tensors, JSON scalars) into JSON and tensors.

    Optimiser ``state_dict()``s, RNG states and the like mix tensors with Python values and
    integer dict keys; this turns one into a JSON-serialisable tree that names its tensors
    (``{"__tensor__": name}``) plus the ``{name: tensor}`` map, so it fits a checkpoint.
    ``unpack_state`` inverts it exactly (dict key types and tuples are kept).

    Args:
        state: the nested state.
        prefix: prefix of the tensor names (``optim.actor`` -> ``optim.actor.state.0.exp_avg``).
    """
    tensors: dict[str, torch.Tensor] = {}

    def pack(obj: Any, name: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[name] = obj
            return {"__tensor__": name}
        if isinstance(obj, Mapping):
            return {"__items__": [[k, pack(v, f"{name}.{k}")] for k, v in obj.items()]}
        if isinstance(obj, tuple):
            return {"__tuple__": [pack(v, f"{name}.{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [pack(v, f"{name}.{i}") for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, bool | int | float | str):
            return obj
        raise TypeError(f"cannot checkpoint {name}: unsupported type {type(obj).__name__}")

    return pack(state, prefix), tensors


def unpack_state(packed: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuild a state packed by ``pack_state``.

    Raises:
        CheckpointError: a tensor the tree names is missing.
    """

    def unpack(obj: Any) -> Any:
        if isinstance(obj, list):
            return [unpack(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "__tensor__" in obj:
            name = obj["__tensor__"]
            if name not in tensors:
                raise CheckpointError(f"checkpoint is missing tensor {name!r}")
            return tensors[name]
        if "__tuple__" in obj:
            return tuple(unpack(v) for v in obj["__tuple__"])
        return {k: unpack(v) for k, v in obj["__items__"]}

    return unpack(packed)


def sub_tensors(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
