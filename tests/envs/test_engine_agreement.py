"""MuJoCo and PyBullet agree on every task: with randomization off, the same start and the
same open-loop actions give the same trajectory over the first second, within a tolerance
stated per task (max absolute difference of each observation over that second).

Why the tolerances differ: the cart-pole has no damping and no contacts, so the two
semi-implicit Euler integrators match to rounding; joint damping is implicit in MuJoCo and
explicit in PyBullet, which costs the lightly-built reacher a few hundredths of a rad/s; the
quadruped's ground contacts are modelled differently (soft constraints vs. a stiff LCP), so it
is compared under moderate joint targets (±0.3 of the range) where the gait stays regular;
there, poses agree to millimetres and a few hundredths of a radian, while joint velocities
differ by up to several rad/s for the few milliseconds around each foot impact.
"""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl

# env id -> (action amplitude, per-observation tolerance over the first second)
AGREEMENT = {
    "robot_rl/PendulumSwingup-v0": (1.0, np.array([3e-4, 3e-4, 2e-3])),
    "robot_rl/CartpoleSwingup-v0": (1.0, np.full(5, 1e-9)),
    # cos q, sin q (4); q̇ (2, rad/s); goal (2); tip - goal (2, m)
    "robot_rl/ReacherTwoLink-v0": (
        1.0,
        np.array([0.005] * 4 + [0.08] * 2 + [0.0] * 2 + [0.001] * 2),
    ),
    # q (7, rad); q̇ (7, rad/s); flange, target, flange - target (9, m)
    "robot_rl/ArmReach-v0": (1.0, np.array([1e-3] * 7 + [2e-3] * 7 + [2e-4] * 9)),
    # height (m); up vector (3); body velocity (3, m/s); body rates (3, rad/s); q (12, rad); q̇ (12)
    "robot_rl/QuadrupedWalk-v0": (
        0.3,
        np.array([0.004] + [0.03] * 3 + [0.06] * 3 + [1.0] * 3 + [0.04] * 12 + [8.0] * 12),
    ),
}


@pytest.mark.parametrize("env_id", list(AGREEMENT))
@pytest.mark.parametrize("seed", [0, 1])
def test_engines_agree_over_the_first_second(env_id: str, seed: int) -> None:
    amplitude, tolerance = AGREEMENT[env_id]
    mj = robot_rl.make(env_id, engine="mujoco")
    pb = robot_rl.make(env_id, engine="pybullet")
    obs_mj, _ = mj.reset(seed=seed)
    obs_pb, _ = pb.reset(seed=seed)
    np.testing.assert_allclose(obs_mj, obs_pb, atol=1e-5)
    rng = np.random.default_rng(seed + 100)
    worst = np.zeros_like(tolerance)
    for _ in range(round(1.0 / mj.task.control_dt)):
        action = amplitude * rng.uniform(-1.0, 1.0, mj.action_space.shape)
        obs_mj, *_ = mj.step(action)
        obs_pb, *_ = pb.step(action)
        worst = np.maximum(worst, np.abs(obs_mj.astype(np.float64) - obs_pb))
    assert np.all(worst <= tolerance + 1e-6), f"worst difference {worst} exceeds {tolerance}"


def test_engines_agree_on_randomized_parameters() -> None:
    """The same domain parameters mean the same thing on both engines."""
    env_id = "robot_rl/ArmReach-v0"
    mj = robot_rl.make(env_id, engine="mujoco")
    pb = robot_rl.make(env_id, engine="pybullet")
    params = mj.nominal_params.replace(
        link_masses=mj.nominal_params.link_masses * np.linspace(0.8, 1.2, 7),
        joint_damping=mj.nominal_params.joint_damping * 1.5,
        actuator_strength=np.linspace(0.8, 1.2, 7),
        gravity=9.6,
    )
    for env in (mj, pb):
        env.set_domain_params(params)
    obs_mj, _ = mj.reset(seed=3)
    obs_pb, _ = pb.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 7)
        obs_mj, *_ = mj.step(action)
        obs_pb, *_ = pb.step(action)
    np.testing.assert_allclose(obs_mj, obs_pb, atol=3e-3)
    # ... and differ from the nominal robot.
    nominal = robot_rl.make(env_id, engine="mujoco")
    obs_nom, _ = nominal.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs_nom, *_ = nominal.step(rng.uniform(-1, 1, 7))
    assert np.abs(obs_nom - obs_mj).max() > 0.01
