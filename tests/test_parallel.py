"""Parallel evaluation gives exactly the in-process results, on a local Ray instance too."""

from __future__ import annotations

import functools

import pytest

from robot_rl.evaluation import RandomPolicy
from robot_rl.parallel import InProcessExecutor, evaluate_jobs, make_executor, randomized_jobs


def _random_policy(action_size: int):
    import gymnasium as gym
    import numpy as np

    return RandomPolicy(gym.spaces.Box(-1, 1, (action_size,), dtype=np.float32), seed=0)


def test_jobs_carry_distinct_randomized_parameters() -> None:
    jobs = randomized_jobs("robot_rl/PendulumSwingup-v0", "mujoco", episodes=4, seed=3)
    assert [j.seed for j in jobs] == [3, 4, 5, 6]
    assert len({j.params.link_masses[0] for j in jobs}) == 4


def test_in_process_results_follow_the_jobs() -> None:
    jobs = randomized_jobs("robot_rl/PendulumSwingup-v0", "mujoco", episodes=3, seed=0)
    results = evaluate_jobs(functools.partial(_random_policy, 1), jobs, InProcessExecutor())
    assert [r.seed for r in results] == [0, 1, 2]
    assert all(r.length == 100 for r in results)
    assert [r.params for r in results] == [j.params for j in jobs]


def test_executor_choice() -> None:
    assert isinstance(make_executor(1), InProcessExecutor)
    with pytest.raises(ValueError, match="workers"):
        make_executor(0)


def test_ray_matches_in_process() -> None:
    pytest.importorskip("ray")
    jobs = randomized_jobs("robot_rl/CartpoleSwingup-v0", "mujoco", episodes=4, seed=1)
    make_policy = functools.partial(_random_policy, 1)
    # A fresh policy per chunk: compare per-job results with the same chunking in-process.
    with make_executor(workers=2) as ray_executor:
        assert ray_executor.workers == 2
        parallel = evaluate_jobs(make_policy, jobs, ray_executor)
    serial = evaluate_jobs(make_policy, jobs[:2], InProcessExecutor()) + evaluate_jobs(
        make_policy, jobs[2:], InProcessExecutor()
    )
    assert [(r.seed, r.ret, r.cost) for r in parallel] == [(r.seed, r.ret, r.cost) for r in serial]
