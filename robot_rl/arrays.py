"""Write one vectorised function for NumPy arrays and torch tensors alike.

Task rewards and costs are scored both on single env steps (NumPy) and on batches of
imagined states inside a planner (torch). ``namespace(x)`` returns the module that holds the
element-wise functions for ``x`` (``numpy`` or ``torch``) without importing torch for NumPy
callers, so the envs stay torch-free.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (checked without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*xs: Any) -> ModuleType:
    """The array module (``numpy`` or ``torch``) for the given arrays.

    Raises:
        TypeError: when NumPy arrays and torch tensors are mixed.
    """
    if len(xs) == 1 and type(xs[0]) is np.ndarray:  # the env's hot path
        return np
    kinds = {is_torch(x) for x in xs if x is not None and not np.isscalar(x)}
    if len(kinds) > 1:
        raise TypeError("cannot mix NumPy arrays and torch tensors in one call")
    if kinds == {True}:
        return sys.modules["torch"]
    return np


def stack(xp: ModuleType, arrays: list[Any], axis: int = -1) -> Any:
    """``numpy.stack`` / ``torch.stack`` with one signature."""
    if xp is np:
        return np.stack(arrays, axis=axis)
    return xp.stack(arrays, dim=axis)


def concat(xp: ModuleType, arrays: list[Any], axis: int = -1) -> Any:
    """``numpy.concatenate`` / ``torch.cat`` with one signature."""
    if xp is np:
        return np.concatenate(arrays, axis=axis)
    return xp.cat(arrays, dim=axis)


def norm(x: Any, axis: int = -1) -> Any:
    """Euclidean norm along ``axis`` for either kind of array."""
    return ((x * x).sum(axis)) ** 0.5


def wrap_angle(xp: ModuleType, angle: Any) -> Any:
    """Wrap angles to [-pi, pi)."""
    return xp.remainder(angle + np.pi, 2 * np.pi) - np.pi
