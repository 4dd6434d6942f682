"""``robot-rl plan`` runs a planner in an env and reports it; bad input is a clear error."""

from __future__ import annotations

import pytest

from robot_rl.cli import main


def test_plan_swings_up_the_pendulum(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--env", "robot_rl/PendulumSwingup-v0", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "success True" in out
    assert "success rate 1.00 over 1 episode(s)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "robot_rl/Nope-v0"], "unknown env id"),
        (["--env", "robot_rl/QuadrupedWalk-v0"], "no MPC preset"),
        (["--env", "robot_rl/ArmReach-v0", "--model", "ANALYTIC"], "no analytic model"),
        (["--episodes", "0"], "--episodes"),
    ],
)
def test_plan_rejects_bad_input(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", *args]) == 2
    assert message in capsys.readouterr().err
