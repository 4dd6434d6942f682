"""The quadruped can fall without the episode ending, and get up again."""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl


@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_gets_up_from_lying_with_the_stance_command(engine: str) -> None:
    env = robot_rl.make(
        "robot_rl/QuadrupedWalk-v0", engine=engine, start="lying", terminate_when_fallen=False
    )
    obs, _ = env.reset(seed=0)
    assert env.task.fallen(obs)
    for _ in range(100):  # 2 s of the neutral action: the stance targets
        obs, _, terminated, _, info = env.step(np.zeros(12))
        assert not terminated
    assert info["success"]  # standing: trunk above 0.2 m, tilt under the limit
    assert obs[0] > 0.2


def test_a_fall_ends_the_episode_only_when_asked() -> None:
    collapse = np.tile([0.0, 0.0, -1.0], 4)  # calves folded fully: the trunk drops
    episodic = robot_rl.make("robot_rl/QuadrupedWalk-v0")
    continuing = robot_rl.make("robot_rl/QuadrupedWalk-v0", terminate_when_fallen=False)
    for env in (episodic, continuing):
        env.reset(seed=0)
    ended = [episodic.step(collapse)[2] for _ in range(100)]
    assert any(ended)
    assert not any(continuing.step(collapse)[2] for _ in range(100))


def test_lying_start_needs_continuing_mode() -> None:
    with pytest.raises(ValueError, match="terminate_when_fallen=False"):
        robot_rl.make("robot_rl/QuadrupedWalk-v0", start="lying")
