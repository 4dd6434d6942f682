"""Every source of dynamics derivatives against finite differences; models against MuJoCo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.controllers.derivatives import (
    CasadiDynamics,
    DifferentiableDynamics,
    MujocoDynamics,
    MujocoJacobian,
    TorchDynamics,
)
from robot_rl.controllers.models import Cartpole, Pendulum, rk4, semi_implicit_euler
from robot_rl.nn import ensemble_mlp


def finite_difference_jacobians(
    dyn: DifferentiableDynamics, X: np.ndarray, U: np.ndarray, eps: float
):
    """Central differences of ``dyn.step``: (T, n, n), (T, n, m)."""
    n, m = X.shape[1], U.shape[1]
    fx = np.stack(
        [(dyn.step(X + eps * e, U) - dyn.step(X - eps * e, U)) / (2 * eps) for e in np.eye(n)], -1
    )
    fu = np.stack(
        [(dyn.step(X, U + eps * e) - dyn.step(X, U - eps * e)) / (2 * eps) for e in np.eye(m)], -1
    )
    return fx, fu


def random_cartpole_points(T: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, 4)) * np.array([0.5, 2.0, 1.0, 2.0])
    U = rng.uniform(-10.0, 10.0, size=(T, 1))
    return X, U


@pytest.mark.parametrize(
    ("env_id", "model"),
    [("robot_rl/CartpoleSwingup-v0", Cartpole()), ("robot_rl/PendulumSwingup-v0", Pendulum())],
)
def test_analytic_model_reproduces_the_mujoco_env(env_id: str, model) -> None:
    env = robot_rl.make(env_id)
    env.reset(seed=0)
    step = semi_implicit_euler(model, env.unwrapped.task.control_dt, env.unwrapped.substeps)
    data = env.unwrapped.physics.data
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = np.concatenate([data.qpos, data.qvel])
        action = rng.uniform(-1.0, 1.0, 1)
        env.step(action)
        predicted = np.asarray(step(x, action * model.control_limit)).ravel()
        np.testing.assert_allclose(predicted, np.concatenate([data.qpos, data.qvel]), atol=1e-12)


def test_casadi_jacobians_and_second_derivatives_match_finite_differences() -> None:
    dyn = CasadiDynamics(rk4(Cartpole(), 0.05))
    X, U = random_cartpole_points()
    fx, fu = dyn.jacobians(X, U)
    fd_x, fd_u = finite_difference_jacobians(dyn, X, U, 1e-6)
    np.testing.assert_allclose(fx, fd_x, atol=1e-8)
    np.testing.assert_allclose(fu, fd_u, atol=1e-8)
    fxx, fux, fuu = dyn.second_derivatives(X, U)
    h = 1e-5
    for j in range(4):  # ∂fx/∂x_j and ∂fu/∂x_j
        e = h * np.eye(4)[j]
        dfx = (dyn.jacobians(X + e, U)[0] - dyn.jacobians(X - e, U)[0]) / (2 * h)
        dfu = (dyn.jacobians(X + e, U)[1] - dyn.jacobians(X - e, U)[1]) / (2 * h)
        np.testing.assert_allclose(fxx[..., j], dfx, atol=1e-6)
        np.testing.assert_allclose(fux[:, :, :, j], dfu[:, :, :], atol=1e-6)
    dfu = (dyn.jacobians(X, U + h)[1] - dyn.jacobians(X, U - h)[1]) / (2 * h)
    np.testing.assert_allclose(fuu[..., 0], dfu, atol=1e-6)
    assert np.abs(fxx).max() > 0.1  # the check above is not vacuous


@pytest.fixture(scope="module")
def exact_cartpole() -> CasadiDynamics:
    """The env's cart-pole physics as an exact CasADi model (50 Euler substeps)."""
    return CasadiDynamics(semi_implicit_euler(Cartpole(), 0.05, 50))


@pytest.mark.parametrize("mode", list(MujocoJacobian))
@pytest.mark.parametrize("centered", [False, True])
def test_mujoco_jacobians_match_the_exact_model_and_finite_differences(
    mode: MujocoJacobian, centered: bool, exact_cartpole: CasadiDynamics
) -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0")
    assert env.unwrapped.substeps == 50
    dyn = MujocoDynamics.from_env(env, jacobian=mode, centered=centered)
    exact = exact_cartpole
    X, U = random_cartpole_points(T=6)
    fx, fu = dyn.jacobians(X, U)
    ex, eu = exact.jacobians(X, U)
    tol = 1e-7 if centered else 2e-6
    np.testing.assert_allclose(fx, ex, atol=tol)
    np.testing.assert_allclose(fu, eu, atol=tol)
    fd_x, fd_u = finite_difference_jacobians(dyn, X, U, 1e-5)
    np.testing.assert_allclose(fx, fd_x, atol=1e-5)
    np.testing.assert_allclose(fu, fd_u, atol=1e-5)
    # At the control limits MuJoCo clamps ctrl: the difference must look inwards.
    U_edge = np.where(np.arange(6)[:, None] % 2 == 0, 10.0, -10.0)
    fx, fu = dyn.jacobians(X, U_edge)
    ex, eu = exact.jacobians(X, U_edge)
    np.testing.assert_allclose(fu, eu, atol=tol)
    np.testing.assert_allclose(fx, ex, atol=tol)


def test_mujoco_planning_leaves_the_env_untouched() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=True)
    env.reset(seed=3)
    env.step(np.array([0.7]))
    before = env.unwrapped.get_state()
    params = env.unwrapped.domain_params
    dyn = MujocoDynamics.from_env(env)
    X, U = random_cartpole_points(T=5)
    dyn.jacobians(X, U)
    dyn.rollout(X[0], U)
    MujocoDynamics(env.unwrapped.physics.model, env.unwrapped.substeps).step(X, U)
    after = env.unwrapped.get_state()
    np.testing.assert_array_equal(before.physics, after.physics)
    np.testing.assert_array_equal(before.obs, after.obs)
    assert env.unwrapped.domain_params == params
    # The nominal planning model keeps the default parameters whatever the env drew.
    pole = dyn.model.body("pole").id
    assert dyn.model.body_mass[pole] == pytest.approx(0.1)
    assert env.unwrapped.physics.model.body_mass[pole] != pytest.approx(0.1)


def test_mujoco_rejects_robots_it_cannot_plan_for() -> None:
    env = robot_rl.make("robot_rl/QuadrupedWalk-v0")
    with pytest.raises(ValueError, match="nq == nv"):
        MujocoDynamics.from_env(env)


def test_torch_jacobians_of_an_ensemble_mean_match_finite_differences() -> None:
    torch.manual_seed(0)
    net = ensemble_mlp(3, 5 + 1, 5, (32, 32)).double()

    def mean_next_state(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([state, action], dim=-1).expand(3, -1, -1)
        return state + 0.1 * net(inputs).mean(0)

    dyn = TorchDynamics(mean_next_state, 5, 1, dtype=torch.float64)
    rng = np.random.default_rng(0)
    X, U = rng.normal(size=(20, 5)), rng.uniform(-1, 1, size=(20, 1))
    fx, fu = dyn.jacobians(X, U)
    fd_x, fd_u = finite_difference_jacobians(dyn, X, U, 1e-6)
    np.testing.assert_allclose(fx, fd_x, atol=1e-8)
    np.testing.assert_allclose(fu, fd_u, atol=1e-8)
    assert fx.shape == (20, 5, 5)


def test_native_rollouts_match_the_generic_step_loop() -> None:
    torch.manual_seed(1)
    net = ensemble_mlp(3, 6, 5, (16,)).double()

    def fn(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return state + 0.1 * net(torch.cat([state, action], -1).expand(3, -1, -1)).mean(0)

    rng = np.random.default_rng(0)
    T = 8
    U = rng.uniform(-1, 1, (T, 1))
    K, k = rng.normal(size=(T, 1, 5)), rng.normal(size=(T, 1))
    low, high = -np.ones((T, 1)), np.ones((T, 1))
    for dyn, x0, X_dim in (
        (TorchDynamics(fn, 5, 1, dtype=torch.float64), 0.1 * np.ones(5), 5),
        (CasadiDynamics(rk4(Cartpole(), 0.05)), np.array([0.0, 0.3, 0.0, 0.0]), 4),
    ):
        K_ = K[:, :, :X_dim]
        X = DifferentiableDynamics.rollout(dyn, x0, U)
        np.testing.assert_allclose(dyn.rollout(x0, U), X, atol=1e-12)
        alphas, betas = np.array([1.0, 0.5, 0.0]), np.array([1.0, 0.3, 0.0])
        native = dyn.rollout_feedback(x0 + 0.01, X, U, K_, k, alphas, low, high, betas)
        generic = DifferentiableDynamics.rollout_feedback(
            dyn, x0 + 0.01, X, U, K_, k, alphas, low, high, betas
        )
        np.testing.assert_allclose(native[0], generic[0], atol=1e-12)
        np.testing.assert_allclose(native[1], generic[1], atol=1e-12)
        assert np.all(np.abs(native[1]) <= 1.0)
        # β = 0 and α = 0 is the open-loop rollout of the nominal controls.
        np.testing.assert_allclose(native[0][2], dyn.rollout(x0 + 0.01, U), atol=1e-12)
