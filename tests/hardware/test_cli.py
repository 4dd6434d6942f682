from __future__ import annotations

import stat
from pathlib import Path

import pytest
import torch

from robot_rl.cli import main
from robot_rl.hardware import read_run
from robot_rl.hardware.export import PolicyMetadata, export_torchscript


def test_deploy_then_show_and_plot_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(10, 2), torch.nn.Tanh())
    policy = export_torchscript(
        module, tmp_path / "reacher.pt", PolicyMetadata(10, 2, "robot_rl/ReacherTwoLink-v0")
    )
    record = tmp_path / "runs" / "reacher.h5"
    code = main(
        ["deploy", "--policy", str(policy), "--episodes", "2", "--no-realtime",
         "--engine", "pybullet", "--record", str(record)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "termination: completed" in out
    assert "episodes: 2" in out
    log = read_run(record)
    assert log.attrs["engine"] == "pybullet"
    assert log.attrs["task"] == "robot_rl/ReacherTwoLink-v0"
    assert log.n_cycles == 102

    assert main(["runs", "show", str(record)]) == 0
    summary = capsys.readouterr().out
    assert "termination: completed" in summary
    assert "reacher" in summary
    assert "episodes:" in summary

    assert main(["runs", "plot", str(record), "--out", str(tmp_path / "plots")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["commands.png", "episodes.png", "joints.png", "timing.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 5000 for p in pngs)


def test_deploy_refuses_a_policy_for_another_robot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = export_torchscript(
        torch.nn.Sequential(torch.nn.Linear(5, 1)), tmp_path / "cart.pt", PolicyMetadata(5, 1)
    )
    with pytest.raises(SystemExit, match="outputs 1 actions but robot reacher takes 2"):
        main(
            [
                "deploy",
                "--policy",
                str(policy),
                "--env",
                "robot_rl/ReacherTwoLink-v0",
                "--no-record",
            ]
        )
    assert main(["deploy", "--policy", "missing.onnx", "--no-record"]) == 2
    assert "neither 'zero'" in capsys.readouterr().err


def test_robot_server_init_keys_writes_private_secrets(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    assert main(["robot-server", "--init-keys", str(folder)]) == 0
    for name in ("server.key_secret", "client.key_secret"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert (folder / "server.key").is_file()
    assert (folder / "authorized_clients" / "client.key").is_file()
    with pytest.raises(FileExistsError):
        main(["robot-server", "--init-keys", str(folder)])
