"""``robot-rl run`` end to end on a tiny budget: every stage leaves its artifacts, the
identification recovers the robot's hidden parameters, re-planning with them does better on
the robot, and a run killed mid-stage resumes to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from robot_rl.cli import main
from robot_rl.config import build
from robot_rl.pipeline import RunConfig, RunDir, execute, start

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "learn": {
        "max_episodes": 4,
        "model": {"hidden": [32, 32], "members": 3, "elites": 2, "max_epochs": 3},
        "planner": {"horizon": 8, "population": 20, "elites": 4, "iterations": 1, "particles": 2},
    },
    "evaluate": {"episodes": 2},
}
"""Every stage of the default job, with a model and planner small enough to run in seconds
(it does not learn the swing-up; the pipeline around it is what is tested)."""


def _tiny_file(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY | changes))
    return path


def test_run_end_to_end_identifies_the_robot_and_replans_better(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--config", str(_tiny_file(tmp_path)), "--runs-dir", str(tmp_path),
                 "--name", "e2e"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    run = RunDir.open(tmp_path / "e2e")
    for stage in ("collect", "learn", "evaluate", "deploy", "identify", "report"):
        assert run.done(stage), stage
    report = run.path / "report" / "report.md"
    assert f"report: {report}" in out
    assert "identified link_masses[1]" in out
    text = report.read_text()
    for plot in ("learning_curve", "model_error", "planning_time", "returns", "loop_timing"):
        assert f"({plot}.png)" in text
        assert (run.path / "report" / f"{plot}.png").stat().st_size > 5000

    evaluate = run.summary("evaluate")
    assert len(evaluate["returns"]) == 2
    assert len(set(map(tuple, evaluate["link_masses"]))) == 2
    error = evaluate["model_error"]
    assert error["horizons"][0] == 1
    assert len(error["rmse"]) == len(error["horizons"])

    deploy = run.summary("deploy")
    assert deploy["backend"] == "network"
    for result in deploy["controllers"].values():
        robot = result["robot"]
        assert robot["termination"] == "completed"
        assert robot["events"]["SAFE_STOP"] >= 1  # every run ends in a safe stop
        assert Path(robot["record"]).is_file()

    identify = run.summary("identify")
    for p in identify["parameters"]:
        assert abs(p["identified"] - p["true"]) <= 0.05 * abs(p["true"]) + 2e-3, p
    nominal = deploy["controllers"]["planner-nominal"]["robot"]["mean_return"]
    identified = identify["replanned"]["robot"]["mean_return"]
    assert identified > nominal, (identified, nominal)


def _learn_checkpoint_writes(path: Path) -> int:
    checkpoint = path / "learn" / "pets.pt"
    return checkpoint.stat().st_mtime_ns if checkpoint.is_file() else 0


def test_a_run_killed_mid_stage_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    config_file = _tiny_file(tmp_path, robot={"backend": "sim"})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot_rl", "run", "--config", str(config_file),
         "--runs-dir", str(tmp_path), "--name", "killed"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    path = tmp_path / "killed"
    deadline = time.monotonic() + 120
    try:
        # Kill once the learn stage has written a checkpoint of its own (after collect's).
        while time.monotonic() < deadline and proc.poll() is None:
            if (path / "manifest.json").is_file() and RunDir.open(path).done("collect"):
                first = _learn_checkpoint_writes(path)
                while _learn_checkpoint_writes(path) == first and proc.poll() is None:
                    time.sleep(0.01)
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    killed = RunDir.open(path)
    assert killed.done("collect")
    assert not killed.done("learn")
    collect_seconds = json.loads((path / "manifest.json").read_text())["stages"]["collect"]

    assert main(["run", "--resume", str(path)]) == 0
    resumed = RunDir.open(path)
    assert resumed.done("report")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["stages"]["collect"] == collect_seconds  # not run again

    config = build(RunConfig, resumed.config)
    reference = start(config, tmp_path, "reference")
    execute(reference, config, until="learn", quiet=True)
    assert [h["ret"] for h in resumed.summary("learn")["history"]] == [
        h["ret"] for h in reference.summary("learn")["history"]
    ]


def test_a_robot_server_that_is_not_running_is_a_clear_error_and_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from robot_rl.hardware import init_keys
    from robot_rl.hardware.backends.process import free_port

    keys = init_keys(tmp_path / "keys")
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    config = _tiny_file(
        tmp_path,
        learn=TINY["learn"] | {"max_episodes": 2},
        evaluate={"episodes": 1},
        robot={"endpoint": endpoint, "keys": str(keys)},
    )
    code = main(["run", "--config", str(config), "--runs-dir", str(tmp_path), "--name", "gone"])
    assert code == 3
    err = capsys.readouterr().err
    assert "the robot is not available" in err
    assert f"--resume {tmp_path / 'gone'}" in err
    run = RunDir.open(tmp_path / "gone")
    assert [s for s in ("collect", "learn", "evaluate", "deploy") if run.done(s)] == [
        "collect", "learn", "evaluate"
    ]  # fmt: skip
    assert (run.path / "learn" / "pets.pt").is_file()


def test_sac_can_be_the_learner_of_the_main_job(tmp_path: Path) -> None:
    config = {
        "learn": {"agent": "sac", "sac_steps": 1500, "sac_eval_every": 500,
                  "sac": {"hidden": [32, 32]}},
        "evaluate": {"episodes": 1},
        "robot": {"backend": "sim", "episodes": 1},
    }  # fmt: skip
    path = tmp_path / "sac.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path), "--runs-dir", str(tmp_path), "--name", "s"]) == 0
    run = RunDir.open(tmp_path / "s")
    learn = run.summary("learn")
    assert learn["agent"] == "sac"
    assert learn["env_steps"] == 1500
    assert [c["env_steps"] for c in learn["curve"]] == [500, 1000, 1500]
    assert run.summary("collect")["skipped"]
    assert run.summary("evaluate")["model_error"] is None
    assert run.summary("deploy")["controllers"]["learned"]["robot"]["termination"] == "completed"
    report = (run.path / "report" / "report.md").read_text()
    assert "env steps of SAC" in report
    assert "model_error.png" not in report
