from __future__ import annotations

import json

import pytest

from robot_rl.cli import main


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "rollout" in capsys.readouterr().out


def test_envs_lists_every_env_with_spaces_and_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["envs", "--json"]) == 0
    records = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    cartpole = records["robot_rl/CartpoleSwingup-v0"]
    assert cartpole["engines"] == ["mujoco", "pybullet"]
    assert cartpole["observation"] == [5]
    assert cartpole["action"] == [1]
    assert "latency" in cartpole["randomization"]
    assert len(records) == 5


def test_rollout_reports_and_films(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "episode.gif"
    code = main(
        [
            "rollout", "--env", "robot_rl/PendulumSwingup-v0", "--engine", "pybullet",
            "--episodes", "2", "--randomize", "--video", str(video), "--log-dir", str(tmp_path),
            "--log", "stdout", "csv",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "2 episodes: return" in out
    assert video.stat().st_size > 1000
    rows = (tmp_path / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("step,")
    assert "rollout/return" in rows[0]
    assert len(rows) == 3


def test_rollout_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "--env", "robot_rl/Nope-v0"]) == 2
    assert "unknown env id 'robot_rl/Nope-v0'" in capsys.readouterr().err
    assert main(["rollout", "--policy", "clever"]) == 2
    assert (
        "policy 'clever' is neither 'zero', 'random[:SEED]' nor an existing file"
        in capsys.readouterr().err
    )
