"""A robot server in a child process: starts, serves an authenticated client, stops."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.hardware import init_keys
from robot_rl.hardware.backends.process import ServedRobot
from robot_rl.hardware.backends.sim import RealityGap


def test_served_robot_answers_and_stops(tmp_path) -> None:
    keys = init_keys(tmp_path / "keys")
    gap = RealityGap(mass_scale=(1.0, 1.3))
    with ServedRobot("robot_rl/CartpoleSwingup-v0", keys, gap=gap) as served:
        robot = served.client()
        with robot:  # the context manager configures it
            state = robot.read()
            assert state.position.shape == (2,)
            assert np.all(np.isfinite(state.position))
        process = served.process
    assert process.poll() is not None  # stopped on exit


def test_a_bad_robot_fails_to_start_with_the_reason(tmp_path) -> None:
    keys = init_keys(tmp_path / "keys")
    with pytest.raises(RuntimeError, match=r"did not start.*unknown env id"):
        ServedRobot("robot_rl/Nope-v0", keys)
