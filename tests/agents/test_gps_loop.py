"""The mirror-descent GPS loop on the two-link reacher."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import robot_rl
from robot_rl.agents.gps import (
    GPS,
    Features,
    GPSConfig,
    LinearGaussianController,
    Sampling,
    make_features,
    reaching_cost,
    spread_goals,
)
from robot_rl.agents.gps.algorithm import Samples, teacher_actions


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Multithreaded BLAS on a busy machine makes the mixture fits many times slower."""
    with threadpool_limits(1):
        yield


GOALS = [np.array([0.12, 0.06]), np.array([-0.05, 0.15])]
CONFIG = GPSConfig(samples_per_condition=5, sstep_steps=300, hidden=(32, 32))


def _gps(seed: int = 0, config: GPSConfig = CONFIG) -> GPS:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    features = make_features(Features.BASE_FRAME, env.task, 10)
    return GPS(env, GOALS, reaching_cost(env.task), config, seed=seed, features=features)


@pytest.mark.parametrize("sampling", [Sampling.POLICY, Sampling.LOCAL])
def test_gps_lowers_the_reacher_cost_over_a_few_iterations(sampling: Sampling) -> None:
    gps = _gps(config=dataclasses.replace(CONFIG, sampling=sampling))
    history = gps.train(5)
    first, last = np.mean(history[0].sample_cost), np.mean(history[-1].sample_cost)
    assert last < 0.5 * first
    assert history[-1].sample_return > history[0].sample_return
    assert gps.env_steps == 5 * len(GOALS) * 5 * 50
    for state in gps.states:
        assert np.isfinite(state.controller.K).all()


def test_same_seed_same_run() -> None:
    a, b = _gps(seed=3), _gps(seed=3)
    la, lb = a.iteration(), b.iteration()
    assert la.sample_cost == lb.sample_cost
    assert la.kl == lb.kl
    np.testing.assert_array_equal(a.states[0].controller.K, b.states[0].controller.K)


def test_an_ill_conditioned_fit_is_logged_and_shrinks_the_step() -> None:
    gps = _gps(config=dataclasses.replace(CONFIG, max_condition=1.0, sstep_steps=10))
    entry = gps.iteration()
    assert sum("ill-conditioned" in e for e in entry.events) == len(GOALS)
    assert entry.step_mult == pytest.approx((0.5,) * len(GOALS))
    assert entry.kl_bound == pytest.approx((0.5 * CONFIG.base_kl_step * 50,) * len(GOALS))
    for state in gps.states:
        assert np.isfinite(state.controller.K).all()
        assert np.isfinite(state.controller.covariance).all()


def test_a_cost_increase_is_logged_and_the_step_shrinks() -> None:
    gps = _gps(config=dataclasses.replace(CONFIG, sstep_steps=10))
    gps.iteration()
    # Pretend the last C-step promised a large improvement that the new samples will not show.
    for state in gps.states:
        state.sample_cost = 1.0
        state.predicted_cost = -1e6
    before = [s.step_mult for s in gps.states]
    entry = gps.iteration()
    assert sum("cost rose" in e for e in entry.events) == len(GOALS)
    assert all(s.step_mult < b for s, b in zip(gps.states, before, strict=True))


def test_gps_rejects_bad_setups() -> None:
    env = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    with pytest.raises(ValueError, match="condition"):
        GPS(env, [], reaching_cost(env.task), CONFIG)
    with pytest.raises(ValueError, match="samples_per_condition"):
        GPS(
            env,
            GOALS,
            reaching_cost(env.task),
            dataclasses.replace(CONFIG, samples_per_condition=1),
        )
    with pytest.raises(ValueError, match="rest state"):  # the raw observation has none
        GPS(env, GOALS, reaching_cost(env.task), dataclasses.replace(CONFIG, rest_anchor=True))
    with pytest.raises(ValueError, match="no cost model"):
        reaching_cost(robot_rl.make("robot_rl/PendulumSwingup-v0").task)


@pytest.mark.parametrize("env_id", ["robot_rl/ReacherTwoLink-v0", "robot_rl/ArmReach-v0"])
def test_spread_goals_are_valid_task_states_and_seeded(env_id: str) -> None:
    task = robot_rl.make(env_id).task
    goals = spread_goals(task, 6, np.random.default_rng(4))
    again = spread_goals(task, 6, np.random.default_rng(4))
    assert len(goals) == 6
    for goal, same in zip(goals, again, strict=True):
        task.check_task_state(goal)
        np.testing.assert_array_equal(goal, same)
    with pytest.raises(ValueError, match="at least one"):
        spread_goals(task, 0, np.random.default_rng(0))


def test_reacher_goals_put_small_radii_in_front_of_the_start_pose() -> None:
    goals = spread_goals(
        robot_rl.make("robot_rl/ReacherTwoLink-v0").task, 4, np.random.default_rng(0)
    )
    radius = [float(np.linalg.norm(g)) for g in goals]
    bearing = [abs(float(np.arctan2(g[1], g[0]))) for g in goals]
    assert [radius[i] for i in np.argsort(bearing)] == sorted(radius)


def test_best_policy_is_the_iterate_with_the_cheapest_own_samples() -> None:
    gps = _gps(config=dataclasses.replace(CONFIG, sstep_steps=20))
    first = gps.iteration()  # sampled by the initial controllers: no policy to select yet
    assert gps.best_sample_cost == float("inf")
    second = gps.iteration()  # sampled by the policy, which the S-step then changed
    assert gps.best_sample_cost == pytest.approx(np.mean(second.sample_cost))
    assert first.iteration == 1
    obs = np.linspace(-0.5, 0.5, 10).astype(np.float32)
    best, latest = gps.best_policy(), gps.deterministic_policy()
    assert not np.allclose(best.act(obs), latest.act(obs))
    gps.network.mean.body[0].weight.data.zero_()  # the selected policy is a copy
    assert not np.allclose(best.act(obs), gps.deterministic_policy().act(obs))


def test_teacher_actions_are_clipped_to_the_action_bounds() -> None:
    T, n = 3, 4
    K = np.zeros((T, 2, n))
    K[:, 0, 0] = 10.0
    controller = LinearGaussianController(
        K, np.tile([0.0, -0.5], (T, 1)), np.tile(np.eye(2), (T, 1, 1))
    )
    X = np.zeros((2, T, n))
    X[0, :, 0] = 0.05  # 10 * 0.05 = 0.5: inside the bounds, unchanged
    X[1, :, 0] = 0.3  # 10 * 0.3 = 3: executed as 1
    actions = teacher_actions(controller, X)
    np.testing.assert_allclose(actions[0], np.tile([0.5, -0.5], (T, 1)))
    np.testing.assert_allclose(actions[1], np.tile([1.0, -0.5], (T, 1)))


def test_s_step_regresses_onto_what_the_teacher_executes() -> None:
    """A teacher asking for 3 (executed as 1) teaches the policy 1, not 3."""
    gps = _gps(config=dataclasses.replace(CONFIG, sstep_steps=500))
    T, n, N = gps.horizon, gps.obs_size, 4
    rng = np.random.default_rng(0)
    X = 0.1 * rng.standard_normal((N, T + 1, n))
    samples = Samples(X, np.zeros((N, T, 2)), np.zeros(N), np.zeros(N, dtype=bool))
    teacher = LinearGaussianController(
        np.zeros((T, 2, n)), np.tile([3.0, -0.5], (T, 1)), np.tile(0.25 * np.eye(2), (T, 1, 1))
    )
    gps._s_step([samples] * len(GOALS), [teacher] * len(GOALS))
    mean = gps.network.mean_actions(X[:, :-1].reshape(-1, n))
    np.testing.assert_allclose(mean.mean(0), [1.0, -0.5], atol=0.05)
