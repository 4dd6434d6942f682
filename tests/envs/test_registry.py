from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import robot_rl
from robot_rl.envs import Randomization
from robot_rl.envs.randomization import ParamDistribution


def test_every_env_is_versioned_and_known_to_gymnasium() -> None:
    for entry in robot_rl.registered_envs():
        assert entry.id.startswith("robot_rl/")
        assert entry.id.rsplit("-v", 1)[1].isdigit()
        env = gym.make(entry.id, engine="mujoco")
        assert env.observation_space.shape == (env.unwrapped.task.observation_size,)
        env.close()


def test_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"registered ids: .*CartpoleSwingup"):
        robot_rl.make("robot_rl/Nope-v0")


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown engine 'bullet'"):
        robot_rl.make("robot_rl/CartpoleSwingup-v0", engine="bullet")


def test_unknown_task_argument() -> None:
    with pytest.raises(ValueError, match="bad task arguments"):
        robot_rl.make("robot_rl/CartpoleSwingup-v0", track_bnd=0.5)


def test_task_argument_is_validated() -> None:
    with pytest.raises(ValueError, match="track_band"):
        robot_rl.make("robot_rl/CartpoleSwingup-v0", track_band=-1.0)
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", track_band=0.5)
    assert env.task.track_band == 0.5


def test_unknown_reset_option() -> None:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goal": [0.1, 0.0]})


def test_exact_goal_and_goal_out_of_reach() -> None:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    obs, _ = env.reset(seed=0, options={"task_state": np.array([0.1, -0.05])})
    np.testing.assert_allclose(obs[6:8], [0.1, -0.05], atol=1e-6)
    with pytest.raises(ValueError, match="out of the reacher's"):
        env.reset(options={"task_state": np.array([0.5, 0.0])})
    with pytest.raises(ValueError, match="shape"):
        env.reset(options={"task_state": np.array([0.1])})


def test_step_before_reset_raises() -> None:
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1))


def test_time_limit_and_continuing_mode() -> None:
    env = robot_rl.make("robot_rl/PendulumSwingup-v0")
    env.reset(seed=0)
    truncations = [env.step(np.zeros(1))[3] for _ in range(env.task.episode_steps)]
    assert truncations[-1]
    assert not any(truncations[:-1])
    endless = robot_rl.make("robot_rl/PendulumSwingup-v0", max_episode_steps=None)
    endless.reset(seed=0)
    assert not any(endless.step(np.zeros(1))[3] for _ in range(250))


def test_bad_randomization_is_rejected_up_front() -> None:
    negative_mass = Randomization({"link_masses": ParamDistribution(0.0, 1.2)})
    with pytest.raises(ValueError, match="link_masses"):
        robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=negative_mass)
    too_late = Randomization(
        {"latency": ParamDistribution(0.0, 2.0, relation=robot_rl.envs.Relation.OFFSET)}
    )
    with pytest.raises(ValueError, match="latency"):
        robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=too_late)
    with pytest.raises(ValueError, match="unknown randomization parameter 'mass'"):
        robot_rl.make(
            "robot_rl/CartpoleSwingup-v0",
            randomization=Randomization({"mass": ParamDistribution(1, 2)}),
        )
    with pytest.raises(ValueError, match="low > high"):
        ParamDistribution(1.2, 0.8)
    with pytest.raises(ValueError, match="resample_every"):
        Randomization({}, resample_every=0)
