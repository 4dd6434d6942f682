"""LQR balance controller on the simulated cart-pole."""

from __future__ import annotations

import numpy as np
import pytest

import robot_rl
from robot_rl.controllers.derivatives import CasadiDynamics
from robot_rl.controllers.models import Cartpole, rk4
from robot_rl.controllers.problems import SwingupObserver
from robot_rl.controllers.receding_horizon import ActionScaling
from robot_rl.controllers.stabilizer import LQRController
from robot_rl.envs import JointConfiguration
from robot_rl.types import Policy


def balance_controller(env) -> LQRController:
    return LQRController.around(
        CasadiDynamics(rk4(Cartpole(), 0.05)),
        np.array([0.0, np.pi, 0.0, 0.0]),
        np.zeros(1),
        np.diag([1.0, 10.0, 0.1, 0.1]),
        np.array([[0.01]]),
        SwingupObserver.cartpole(),
        ActionScaling.from_env(env),
        wrap=(1,),
    )


def test_lqr_balances_the_cartpole_from_near_upright() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0")
    controller = balance_controller(env)
    assert isinstance(controller, Policy)
    env.reset(seed=0)
    base = env.unwrapped
    base.physics.set_configuration(
        JointConfiguration(np.array([0.1, np.pi - 0.15]), np.array([0.0, 0.3]))
    )
    obs = base.task.observe(base.physics.measure(), base.task_state)
    controller.reset()
    for _ in range(100):
        obs, _, _, _, info = env.step(controller.act(obs))
        assert np.all(np.isfinite(obs))
    assert info["success"]
    assert abs(obs[0]) < 0.05  # back to the centre
    # The closed loop of the linearisation is stable.
    fx, fu = CasadiDynamics(rk4(Cartpole(), 0.05)).jacobians(
        controller.x_eq[None], np.zeros((1, 1))
    )
    assert np.abs(np.linalg.eigvals(fx[0] + fu[0] @ controller.K)).max() < 1.0


def test_a_non_equilibrium_is_rejected() -> None:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0")
    with pytest.raises(ValueError, match="not an equilibrium"):
        LQRController.around(
            CasadiDynamics(rk4(Cartpole(), 0.05)), np.array([0.0, 1.0, 0.0, 0.0]), np.zeros(1),
            np.eye(4), np.eye(1), SwingupObserver.cartpole(), ActionScaling.from_env(env),
        )  # fmt: skip
