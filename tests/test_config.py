from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from robot_rl.config import ConfigError, build, load_file, to_dict


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclass(frozen=True)
class Inner:
    episodes: int = 3
    rate: float = 1.0
    mode: Mode = Mode.FAST

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    verbose: bool = False
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (64, 64)
    out: Path | None = None
    table: dict[str, float] = field(default_factory=dict)


def test_builds_nested_typed_configs() -> None:
    cfg = build(
        Outer, {"inner": {"episodes": 5, "rate": 2, "mode": "slow"}, "sizes": [8], "out": "a/b"}
    )
    assert cfg.inner == Inner(episodes=5, rate=2.0, mode=Mode.SLOW)
    assert cfg.sizes == (8,)
    assert cfg.out == Path("a/b")
    assert build(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"inner": {"episodez": 5}},
            r"config\.inner\.episodez: unknown key; known keys: episodes, rate, mode",
        ),
        ({"inner": {"episodes": "5"}}, r"config\.inner\.episodes: expected an integer, got '5'"),
        ({"inner": {"episodes": True}}, r"config\.inner\.episodes: expected an integer"),
        ({"verbose": 1}, r"config\.verbose: expected true or false"),
        ({"inner": {"mode": "medium"}}, r"config\.inner\.mode: 'medium' is not one of: fast, slow"),
        ({"inner": {"episodes": 0}}, r"config\.inner: episodes must be >= 1, got 0"),
        ({"sizes": [8, "x"]}, r"config\.sizes\[1\]: expected an integer"),
        ({"table": {"a": "b"}}, r"config\.table\.a: expected a number"),
        ({"inner": 3}, r"config\.inner: expected a mapping"),
    ],
)
def test_bad_values_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(Outer, data)


def test_yaml_and_toml_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: y\ninner:\n  episodes: 2\n")
    (tmp_path / "a.toml").write_text('name = "y"\n[inner]\nepisodes = 2\n')
    assert load_file(tmp_path / "a.yaml") == load_file(tmp_path / "a.toml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_file(tmp_path / "missing.toml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_file(tmp_path / "list.yaml")
