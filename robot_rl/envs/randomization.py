"""Domain randomization as pure functions of (defaults, table, rng).

``DomainParams`` holds the physical parameters in force, in physical units. A randomization
table maps parameter names to distributions that are always applied to the stored defaults
(``SCALE``: default x sample, ``OFFSET``: default + sample), so resampling never compounds
across resets. ``sample_domain_params`` is pure: the same defaults, table and generator state
give the same parameters on either engine.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class Distribution(enum.Enum):
    """Shape of a parameter's distribution between ``low`` and ``high``."""

    UNIFORM = "uniform"
    LOG_UNIFORM = "log_uniform"


class Relation(enum.Enum):
    """How a sample relates to the stored default."""

    SCALE = "scale"  # value = default * sample
    OFFSET = "offset"  # value = default + sample


@dataclass(frozen=True)
class DomainParams:
    """The physical parameters an episode runs with.

    Attributes:
        link_masses: (n_links,) mass of each link in ``RobotDescription``'s massive-link order,
            kg; inertias scale with them.
        friction: sliding friction coefficient of robot-ground contacts.
        joint_damping: (n_joints,) viscous damping of each measured joint, N·m·s/rad or N·s/m.
        actuator_strength: (n_actuators,) multiplier on each actuator's force (and its limit).
        gravity: gravitational acceleration along -z, m/s².
        latency: delay between an action and its effect on the actuators, s.
        obs_noise: standard deviation of Gaussian noise added to observations (obs units).
        push_force: magnitude of random horizontal pushes, N (0 disables them).
    """

    link_masses: np.ndarray
    friction: float
    joint_damping: np.ndarray
    actuator_strength: np.ndarray
    gravity: float
    latency: float = 0.0
    obs_noise: float = 0.0
    push_force: float = 0.0

    def __post_init__(self) -> None:
        for name in ("link_masses", "joint_damping", "actuator_strength"):
            value = np.array(getattr(self, name), dtype=np.float64)
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        for name in ("friction", "gravity", "latency", "obs_noise", "push_force"):
            object.__setattr__(self, name, float(getattr(self, name)))
        _check_physical(self)

    def replace(self, **changes: Any) -> DomainParams:
        """A copy with some fields set to exact values (for evaluation)."""
        unknown = set(changes) - set(PARAMETER_NAMES)
        if unknown:
            raise ValueError(
                f"unknown domain parameters {sorted(unknown)}; known: {PARAMETER_NAMES}"
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float | list[float]]:
        """Plain Python values, for ``info`` and logs."""
        out: dict[str, float | list[float]] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DomainParams):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        )

    __hash__ = None  # type: ignore[assignment]


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DomainParams))

# Physical validity of each parameter: (lower bound, lower bound is exclusive).
_VALID: dict[str, tuple[float, bool]] = {
    "link_masses": (0.0, True),
    "friction": (0.0, True),
    "joint_damping": (0.0, False),
    "actuator_strength": (0.0, False),
    "gravity": (0.0, False),
    "latency": (0.0, False),
    "obs_noise": (0.0, False),
    "push_force": (0.0, False),
}
MAX_LATENCY = 0.5
"""Longest action latency accepted, s."""


def _check_physical(params: DomainParams) -> None:
    for name, (bound, exclusive) in _VALID.items():
        value = np.asarray(getattr(params, name))
        bad = ~np.isfinite(value) | ((value <= bound) if exclusive else (value < bound))
        if bad.any():
            relation = ">" if exclusive else ">="
            raise ValueError(
                f"domain parameter {name}={value.tolist()} must be finite and {relation} {bound}"
            )
    if params.latency > MAX_LATENCY:
        raise ValueError(f"latency {params.latency} s exceeds the maximum of {MAX_LATENCY} s")


@dataclass(frozen=True)
class ParamDistribution:
    """How one parameter is drawn relative to its default.

    Attributes:
        low, high: range of the sample (a factor for ``SCALE``, an addend for ``OFFSET``).
        distribution: uniform or log-uniform between ``low`` and ``high``.
        relation: scale or offset the default.
    """

    low: float
    high: float
    distribution: Distribution = Distribution.UNIFORM
    relation: Relation = Relation.SCALE

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            raise ValueError(f"range [{self.low}, {self.high}] must be finite")
        if self.low > self.high:
            raise ValueError(f"range [{self.low}, {self.high}] has low > high")
        if self.distribution is Distribution.LOG_UNIFORM and self.low <= 0:
            raise ValueError(f"log-uniform range [{self.low}, {self.high}] must be positive")
        if self.relation is Relation.SCALE and self.low < 0:
            raise ValueError(f"scale range [{self.low}, {self.high}] must be non-negative")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.distribution is Distribution.LOG_UNIFORM:
            return np.exp(rng.uniform(np.log(self.low), np.log(self.high), size=shape))
        return rng.uniform(self.low, self.high, size=shape)

    def apply(self, default: np.ndarray | float, sample: np.ndarray) -> np.ndarray:
        if self.relation is Relation.SCALE:
            return np.asarray(default) * sample
        return np.asarray(default) + sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "distribution": self.distribution.value,
            "relation": self.relation.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamDistribution:
        unknown = set(data) - {"low", "high", "distribution", "relation"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in a parameter distribution")
        return cls(
            low=float(data["low"]),
            high=float(data["high"]),
            distribution=Distribution(data.get("distribution", "uniform")),
            relation=Relation(data.get("relation", "scale")),
        )


RandomizationTable = Mapping[str, ParamDistribution]
"""Parameter name (a ``DomainParams`` field) -> its distribution. Missing names stay at default."""


def validate_table(table: RandomizationTable, defaults: DomainParams) -> None:
    """Raise ``ValueError`` naming the first entry that is unknown or can leave physical range.

    Both ends of every range are applied to the defaults and checked, so a table that could
    ever produce a negative mass or an excessive latency is rejected before any episode runs.
    """
    for name, dist in table.items():
        if name not in PARAMETER_NAMES:
            raise ValueError(f"unknown randomization parameter {name!r}; known: {PARAMETER_NAMES}")
        if not isinstance(dist, ParamDistribution):
            raise TypeError(f"randomization entry {name!r} must be a ParamDistribution")
        default = getattr(defaults, name)
        for end in (dist.low, dist.high):
            value = dist.apply(default, np.full(np.shape(default), end))
            try:
                defaults.replace(**{name: value if np.ndim(default) else float(value)})
            except ValueError as err:
                raise ValueError(
                    f"randomization range of {name!r} [{dist.low}, {dist.high}] "
                    f"is out of physical range: {err}"
                ) from err


def sample_domain_params(
    defaults: DomainParams, table: RandomizationTable, rng: np.random.Generator
) -> DomainParams:
    """Draw one set of parameters: each entry of ``table`` applied to ``defaults``.

    Entries are drawn in ``PARAMETER_NAMES`` order (not the table's), so the result depends
    only on the defaults, the table's contents and the generator state.
    """
    changes: dict[str, Any] = {}
    for name in PARAMETER_NAMES:
        dist = table.get(name)
        if dist is None:
            continue
        default = getattr(defaults, name)
        value = dist.apply(default, dist.sample(rng, np.shape(default)))
        changes[name] = value if np.ndim(default) else float(value)
    return defaults.replace(**changes)


def table_to_dict(table: RandomizationTable) -> dict[str, dict[str, Any]]:
    return {name: dist.to_dict() for name, dist in table.items()}


def table_from_dict(data: Mapping[str, Mapping[str, Any]]) -> dict[str, ParamDistribution]:
    """Parse a table from config data, naming the entry at fault on error."""
    table: dict[str, ParamDistribution] = {}
    for name, entry in data.items():
        if name not in PARAMETER_NAMES:
            raise ValueError(f"unknown randomization parameter {name!r}; known: {PARAMETER_NAMES}")
        try:
            table[name] = ParamDistribution.from_dict(entry)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"randomization entry {name!r}: {err}") from err
    return table
