"""``robot-rl sweep``: the grid of trials, the same results on Ray workers as in-process,
and a sweep started again resumes instead of redoing its trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from robot_rl.cli import main
from robot_rl.cli.sweep import parse_grid
from robot_rl.config import ConfigError
from robot_rl.pipeline.sweep import make_trials

from .test_run import TINY


def test_the_grid_is_the_product_of_values_and_seeds() -> None:
    grid = parse_grid(["learn.planner.horizon=6,8", "learn.model.hidden=[16],[8,8]"])
    assert grid == {"learn.planner.horizon": [6, 8], "learn.model.hidden": [[16], [8, 8]]}
    trials = make_trials(TINY, [0, 1], grid)
    assert len(trials) == 8
    assert len({t.name for t in trials}) == 8
    first = trials[0]
    assert first.name == "horizon=6-hidden=16-seed=0"
    assert first.config["learn"]["planner"]["horizon"] == 6
    assert first.config["learn"]["model"]["hidden"] == [16]
    assert first.config["learn"]["max_episodes"] == TINY["learn"]["max_episodes"]


def test_a_bad_point_of_the_grid_is_named_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match=r"config\.learn\.planner\.horizon"):
        make_trials(TINY, [0], parse_grid(["learn.planner.horizon=6,many"]))
    with pytest.raises(ConfigError, match="--grid expects KEY=V1,V2"):
        parse_grid(["learn.planner.horizon"])


def _figures(folder: Path) -> list[tuple]:
    rows = json.loads((folder / "sweep.json").read_text())["trials"]
    return [
        (r["trial"], r["episodes"], r["eval_success_rate"], r["eval_mean_return"]) for r in rows
    ]


def test_ray_workers_give_the_in_process_results_and_a_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY | {"evaluate": {"episodes": 1}}))
    common = ["sweep", "--config", str(config), "--seeds", "0", "1", "--until", "evaluate",
              "--runs-dir", str(tmp_path)]  # fmt: skip
    assert main([*common, "--workers", "2", "--name", "ray"]) == 0
    out = capsys.readouterr().out
    assert "2 trials on 2 worker(s)" in out
    assert "| mean ± std |" in out
    assert main([*common, "--workers", "1", "--name", "local"]) == 0
    assert _figures(tmp_path / "ray") == _figures(tmp_path / "local")
    for trial in ("seed=0", "seed=1"):
        manifest = json.loads((tmp_path / "ray" / trial / "manifest.json").read_text())
        assert set(manifest["stages"]) == {"collect", "learn", "evaluate"}

    # Started again: every trial is read back from its folder, nothing is recomputed.
    trial = tmp_path / "local" / "seed=0"
    before = (
        (trial / "manifest.json").read_text(),
        (trial / "learn" / "pets.pt").stat().st_mtime_ns,
    )
    assert main([*common, "--workers", "1", "--name", "local"]) == 0
    after = (
        (trial / "manifest.json").read_text(),
        (trial / "learn" / "pets.pt").stat().st_mtime_ns,
    )
    assert after == before
    assert _figures(tmp_path / "local") == _figures(tmp_path / "ray")


def test_trials_whose_short_names_clash_are_named_by_their_whole_keys() -> None:
    grid = parse_grid(["learn.model.elites=2,3", "learn.planner.elites=4"])
    names = [t.name for t in make_trials(TINY, [0], grid)]
    assert names == [
        "learn.model.elites=2-learn.planner.elites=4-seed=0",
        "learn.model.elites=3-learn.planner.elites=4-seed=0",
    ]
