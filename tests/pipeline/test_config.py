"""The main job's config is validated before anything runs, naming the bad field; run folders
that cannot be resumed say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from robot_rl.cli import main
from robot_rl.config import build
from robot_rl.pipeline import RunConfig, RunDir, RunDirError


def test_default_config_round_trips_through_print_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert build(RunConfig, printed) == RunConfig()
    assert printed["env"] == "robot_rl/CartpoleSwingup-v0"
    assert printed["robot"]["backend"] == "network"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learn.max_episodes=1", "learn.max_episodes must be >= 2"),
        ("learn.model.hidden=abc", "config.learn.model.hidden: expected a list"),
        ("learn.planner.horizonn=5", "config.learn.planner.horizonn: unknown key"),
        ("robot.backend=serial", "config.robot.backend: 'serial' is not one of"),
        ("env=robot_rl/Nope-v0", "unknown env id 'robot_rl/Nope-v0'"),
        ("identify.fit=[masses]", "identify.fit must be a non-empty subset"),
        ("robot.link_mass_scales=[1.0, -2.0]", "robot.link_mass_scales must be positive"),
        (
            "robot.link_mass_scales=[1.0, 1.1, 1.2]",
            "mass_scale has 3 values; this robot needs 1 or 2",
        ),
        ("randomization.bogus={low: 1, high: 2}", "unknown randomization parameter 'bogus'"),
        ("randomization.link_masses={low: 2, high: 1}", "'link_masses': range [2.0, 1.0]"),
        ("collect.episodes=15", "learn.max_episodes must exceed collect.episodes"),
        ("evaluate.workers=0", "evaluate.episodes and evaluate.workers must be >= 1"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(
    override: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--set", override, "--runs-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "a rejected config must not create a run folder"


def test_toml_and_yaml_files_are_read_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('seed = 3\n[learn.planner]\nhorizon = 12\n[robot]\nbackend = "sim"\n')
    assert main(["run", "--config", str(good), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["seed"], printed["learn"]["planner"]["horizon"]) == (3, 12)
    assert printed["robot"]["backend"] == "sim"

    bad = tmp_path / "bad.yaml"
    bad.write_text("learn:\n  planner:\n    population: many\n")
    assert main(["run", "--config", str(bad), "--print-config"]) == 2
    assert "config.learn.planner.population" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_resume_refuses_what_it_cannot_safely_continue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err

    run = RunDir.create(tmp_path, {"seed": 0}, "r")
    manifest = run.path / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(data | {"robot_rl_version": "0.0.0-other"}))
    with pytest.raises(RunDirError, match="cannot safely resume"):
        RunDir.open(run.path)
    manifest.write_text(json.dumps(data | {"format": "someone.else/9"}))
    with pytest.raises(RunDirError, match=r"format 'someone\.else/9'"):
        RunDir.open(run.path)
    manifest.write_text(manifest.read_text()[:20])
    assert main(["run", "--resume", str(run.path)]) == 2
    assert "is damaged" in capsys.readouterr().err


def test_run_folders_are_never_overwritten(tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, {}, "same")
    second = RunDir.create(tmp_path, {}, "same")
    assert first.path != second.path
    assert (first.path / "manifest.json").is_file()
    assert (second.path / "manifest.json").is_file()


def test_a_section_given_in_part_keeps_the_rest_of_the_lean_default() -> None:
    config = build(RunConfig, {"learn": {"planner": {"horizon": 15}, "max_episodes": 9}})
    assert config.learn.planner.horizon == 15
    assert config.learn.planner.iterations == RunConfig().learn.planner.iterations
    assert config.learn.model == RunConfig().learn.model
    assert config.learn.max_episodes == 9


def test_a_running_robot_server_needs_the_network_backend(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["run", "--set", "robot.backend=sim", "--set", "robot.endpoint=tcp://127.0.0.1:5555"]
    assert main([*args, "--print-config"]) == 2
    assert "robot.endpoint needs robot.backend: network" in capsys.readouterr().err


def test_every_env_gets_a_reality_gap_that_fits_its_robot() -> None:
    import robot_rl

    for entry in robot_rl.envs.registered_envs():
        config = build(RunConfig, {"env": entry.id})
        nominal = robot_rl.make(entry.id).nominal_params
        robot = config.reality_gap().apply(nominal)
        assert (robot.link_masses > nominal.link_masses).all(), entry.id
        assert (robot.joint_damping > nominal.joint_damping).all(), entry.id
