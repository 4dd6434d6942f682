"""Domain randomization: pure, seeded, in range, relative to the defaults, settable exactly,
and physically real (latency delays the actuators, noise perturbs observations, pushes push)."""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl
from robot_rl.envs import Randomization, Relation, sample_domain_params
from robot_rl.envs.randomization import Distribution, ParamDistribution


def _in_range(value, default, dist: ParamDistribution) -> bool:
    low, high = (
        dist.apply(default, np.full(np.shape(default), dist.low)),
        dist.apply(default, np.full(np.shape(default), dist.high)),
    )
    return bool(np.all(value >= low - 1e-12) and np.all(value <= high + 1e-12))


def test_sampler_is_pure_and_seeded() -> None:
    env = robot_rl.make("robot_rl/QuadrupedWalk-v0")
    table = robot_rl.envs.env_entry("robot_rl/QuadrupedWalk-v0").randomization.table
    a = sample_domain_params(env.nominal_params, table, np.random.default_rng(5))
    b = sample_domain_params(env.nominal_params, table, np.random.default_rng(5))
    c = sample_domain_params(env.nominal_params, table, np.random.default_rng(6))
    assert a == b
    assert a != c


def test_samples_stay_in_range_and_never_compound(env_id: str) -> None:
    env = robot_rl.make(env_id, randomization=True)
    nominal = env.nominal_params
    table = env.randomization.table
    seen = []
    for i in range(60):
        _, info = env.reset(seed=i if i == 0 else None)
        params = info["domain_params"]
        seen.append(params)
        for name, dist in table.items():
            assert _in_range(getattr(params, name), getattr(nominal, name), dist), name
    assert env.nominal_params == nominal
    # Relative to the defaults, not to the previous draw: late draws spread like early ones.
    masses = np.array([p.link_masses / nominal.link_masses for p in seen])
    assert 0.9 < masses[30:].mean() < 1.1
    assert masses[30:].std() > 0.05


def test_params_are_reported_and_identical_across_engines() -> None:
    draws = {}
    for engine in ("mujoco", "pybullet"):
        env = robot_rl.make("robot_rl/CartpoleSwingup-v0", engine=engine, randomization=True)
        _, info = env.reset(seed=11)
        _, _, _, _, step_info = env.step(np.zeros(1))
        assert step_info["domain_params"] == info["domain_params"]
        draws[engine] = info["domain_params"]
    assert draws["mujoco"] == draws["pybullet"]


def test_exact_values_can_be_set_and_released() -> None:
    env = robot_rl.make("robot_rl/PendulumSwingup-v0", randomization=True)
    heavy = env.nominal_params.replace(link_masses=[1.5], joint_damping=[0.2], gravity=9.0)
    env.set_domain_params(heavy)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert info["domain_params"] == heavy
    model = env.physics.model
    assert model.body_mass[-1] == pytest.approx(1.5)
    assert model.opt.gravity[2] == pytest.approx(-9.0)
    env.set_domain_params(None)
    _, info = env.reset(seed=0)
    assert info["domain_params"] != heavy
    with pytest.raises(ValueError, match="link_masses"):
        env.nominal_params.replace(link_masses=[-1.0])
    with pytest.raises(ValueError, match="unknown domain parameters"):
        env.nominal_params.replace(mass=2.0)
    with pytest.raises(ValueError, match="shape"):
        env.set_domain_params(env.nominal_params.replace(link_masses=[1.0, 2.0]))


def test_back_to_defaults_gives_the_nominal_robot() -> None:
    nominal = robot_rl.make("robot_rl/ReacherTwoLink-v0")
    randomized = robot_rl.make("robot_rl/ReacherTwoLink-v0", randomization=True)
    randomized.reset(seed=0)
    randomized.set_domain_params(randomized.nominal_params)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (20, 2))
    a, _ = nominal.reset(seed=4)
    b, _ = randomized.reset(seed=4)
    for act in actions:
        a, *_ = nominal.step(act)
        b, *_ = randomized.step(act)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_latency_is_a_real_delay_of_the_actuators(engine: str) -> None:
    """With one control period of latency, a run equals the undelayed run one action late."""
    delayed = robot_rl.make("robot_rl/PendulumSwingup-v0", engine=engine)
    prompt = robot_rl.make("robot_rl/PendulumSwingup-v0", engine=engine)
    delayed.set_domain_params(delayed.nominal_params.replace(latency=delayed.task.control_dt))
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (15, 1))
    delayed.reset(seed=2)
    prompt.reset(seed=2)
    late = [delayed.step(a)[0] for a in actions]
    # The delayed env starts with the neutral command, then each action one period late.
    early = [prompt.step(a)[0] for a in np.vstack([np.zeros((1, 1)), actions[:-1]])]
    np.testing.assert_allclose(late, early, atol=1e-6)
    # Half a period of latency lands in between.
    half = robot_rl.make("robot_rl/PendulumSwingup-v0", engine=engine)
    half.set_domain_params(half.nominal_params.replace(latency=0.5 * half.task.control_dt))
    half.reset(seed=2)
    mid = [half.step(a)[0] for a in actions]
    assert not np.allclose(mid, late)
    assert not np.allclose(mid, early)


def test_observation_noise_has_the_configured_spread() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0")
    env.set_domain_params(env.nominal_params.replace(obs_noise=0.05))
    env.reset(seed=0)
    errors = []
    for _ in range(200):
        obs, *_ = env.step(np.zeros(1))
        errors.append(obs - env.get_state().obs)
    assert np.std(errors) == pytest.approx(0.05, rel=0.1)


def test_pushes_push() -> None:
    calm = robot_rl.make("robot_rl/PendulumSwingup-v0", max_episode_steps=None)
    pushed = robot_rl.make("robot_rl/PendulumSwingup-v0", max_episode_steps=None)
    pushed.set_domain_params(pushed.nominal_params.replace(push_force=5.0))
    calm.reset(seed=0)
    pushed.reset(seed=0)
    pushes = 0
    for _ in range(200):
        a, *_ = calm.step(np.zeros(1))
        b, _, _, _, info = pushed.step(np.zeros(1))
        pushes += "push" in info
        if "push" in info:
            assert np.linalg.norm(info["push"]) == pytest.approx(5.0)
    # Mean interval 2 s over 10 s: a handful of pushes, and the pendulum swings from them.
    assert 1 <= pushes <= 15
    assert np.abs(a - b).max() > 0.05


def test_resampling_within_an_episode() -> None:
    table = {"actuator_strength": ParamDistribution(0.5, 1.5, Distribution.LOG_UNIFORM)}
    env = robot_rl.make(
        "robot_rl/CartpoleSwingup-v0", randomization=Randomization(table, resample_every=10)
    )
    env.reset(seed=0)
    strengths = [env.step(np.zeros(1))[4]["domain_params"].actuator_strength[0] for _ in range(40)]
    assert len(set(strengths)) == 5  # drawn at reset, resampled after steps 10, 20, 30, 40
    assert len(set(strengths[:9])) == 1


def test_offset_relation_adds_to_the_default() -> None:
    dist = ParamDistribution(0.0, 0.02, relation=Relation.OFFSET)
    value = dist.apply(np.array([0.1, 0.0]), np.array([0.01, 0.02]))
    np.testing.assert_allclose(value, [0.11, 0.02])
