"""Shared command-line plumbing: configs from frozen dataclasses through tyro."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import tyro

T = TypeVar("T")


def parse_config(
    config_type: type[T], argv: Sequence[str], prog: str, description: str | None = None
) -> T:
    """Build ``config_type`` from ``argv``; ``--help`` lists every field with its docstring.

    Enums take their values on the command line (``--engine pybullet``).
    """
    return tyro.cli(
        config_type,
        args=list(argv),
        prog=prog,
        description=description,
        config=(tyro.conf.EnumChoicesFromValues,),
    )
