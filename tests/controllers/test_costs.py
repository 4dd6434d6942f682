"""Costs and kinematics: compiled derivatives against finite differences, terms read back."""

from __future__ import annotations

import casadi as ca
import mujoco
import numpy as np
import pytest

import robot_rl
from robot_rl.controllers.costs import Cost, quadratic
from robot_rl.controllers.kinematics import site_position
from robot_rl.controllers.models import CartpoleParams, PendulumParams
from robot_rl.controllers.problems import cartpole_reference, reach_cost


def nonlinear_cost() -> Cost:
    return Cost(
        3,
        2,
        running={
            "track": lambda x, u, p: ca.sin(x[0]) * u[1] + ca.sumsqr(x - p) * (1 + u[0] ** 2),
            "effort": lambda x, u, p: quadratic([0.1, 0.2])(u),
        },
        terminal={"final": lambda x, p: ca.exp(0.3 * x[2]) + ca.sumsqr(x - p)},
        parameter_size=3,
        default_parameters=np.array([0.1, -0.2, 0.3]),
    )


def test_cost_derivatives_match_finite_differences() -> None:
    cost = nonlinear_cost()
    rng = np.random.default_rng(0)
    X, U = rng.normal(size=(7, 3)), rng.normal(size=(6, 2))
    p = np.array([0.5, 0.0, -0.5])
    d = cost.derivatives(X, U, p)
    h = 1e-5

    def running(X, U):  # per-step running costs (T,)
        terms = cost.term_values(X, U, p)
        return terms["track"] + terms["effort"]

    def terminal(X):
        return cost.term_values(X, U, p)["final"][0]

    for i in range(3):
        e = np.zeros((7, 3))
        e[:, i] = h
        np.testing.assert_allclose(
            d.lx[:, i], (running(X + e, U) - running(X - e, U)) / (2 * h), atol=1e-7
        )
        np.testing.assert_allclose(
            d.vx[i], (terminal(X + e) - terminal(X - e)) / (2 * h), atol=1e-7
        )
        # Hessian columns from differences of the analytic gradient.
        dp, dm = cost.derivatives(X + e, U, p), cost.derivatives(X - e, U, p)
        np.testing.assert_allclose(d.lxx[:, :, i], (dp.lx - dm.lx) / (2 * h), atol=1e-6)
        np.testing.assert_allclose(d.lux[:, :, i], (dp.lu - dm.lu) / (2 * h), atol=1e-6)
        np.testing.assert_allclose(d.vxx[:, i], (dp.vx - dm.vx) / (2 * h), atol=1e-6)
    for j in range(2):
        e = np.zeros((6, 2))
        e[:, j] = h
        np.testing.assert_allclose(
            d.lu[:, j], (running(X, U + e) - running(X, U - e)) / (2 * h), atol=1e-7
        )
        dp, dm = cost.derivatives(X, U + e, p), cost.derivatives(X, U - e, p)
        np.testing.assert_allclose(d.luu[:, :, j], (dp.lu - dm.lu) / (2 * h), atol=1e-6)


def test_totals_of_a_batch_equal_the_sum_of_the_terms() -> None:
    cost = nonlinear_cost()
    rng = np.random.default_rng(1)
    X, U = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 5, 2))
    totals = cost.total(X, U)
    for a in range(4):
        terms = cost.term_values(X[a], U[a])
        assert totals[a] == pytest.approx(sum(float(v.sum()) for v in terms.values()), rel=1e-12)


def test_bad_cost_definitions_and_parameters_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="scalar"):
        Cost(2, 1, running={"vector": lambda x, u, p: x})
    cost = nonlinear_cost()
    with pytest.raises(ValueError, match="shape"):
        cost.total(np.zeros((1, 3, 3)), np.zeros((1, 2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        cost.check_parameters(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="pole_mass"):
        CartpoleParams(pole_mass=-1.0)
    with pytest.raises(ValueError, match="damping"):
        PendulumParams(damping=np.inf)


def test_reference_cost_integrates_with_the_rk4_stage_weights() -> None:
    problem = cartpole_reference()
    x, u = np.array([0.1, 0.2, 0.3, 0.4]), np.array([1.0])
    # For a constant state the quadrature is exactly dt * rate; with motion it differs.
    still = np.array([0.0, np.pi, 0.0, 0.0])
    stage = problem.cost.term_values(np.stack([still, still]), np.zeros((1, 1)))["stage"][0]
    assert stage == pytest.approx(0.0, abs=1e-12)
    moving = problem.cost.term_values(np.stack([x, x]), u[None])["stage"][0]
    rate = 0.5 * np.sum(np.array([1, 1, 0.1, 0.1]) * (x - [0, np.pi, 0, 0]) ** 2) + 0.005
    assert moving == pytest.approx(0.05 * rate, rel=0.05)
    assert moving != pytest.approx(0.05 * rate, rel=1e-6)


def test_forward_kinematics_match_mujoco_sites() -> None:
    for env_id, site in (
        ("robot_rl/ArmReach-v0", "ee"),
        ("robot_rl/ReacherTwoLink-v0", "fingertip"),
    ):
        base = robot_rl.make(env_id).unwrapped
        fk = site_position(base.task.robot, site)
        rng = np.random.default_rng(0)
        for _ in range(10):
            q = rng.uniform(-2.0, 2.0, len(base.task.robot.joints))
            base.physics.data.qpos[:] = q
            mujoco.mj_forward(base.physics.model, base.physics.data)
            np.testing.assert_allclose(
                np.asarray(fk(q)).ravel(), base.physics.data.site(site).xpos, atol=1e-12
            )
    with pytest.raises(ValueError, match="no site"):
        site_position(base.task.robot, "nose")


def test_reach_cost_is_zero_at_the_target_at_rest() -> None:
    robot = robot_rl.make("robot_rl/ArmReach-v0").unwrapped.task.robot
    cost = reach_cost(robot, "ee")
    q = np.array([0.0, 0.6, 0.0, -1.2, 0.0, 0.8, 0.0])
    target = np.asarray(site_position(robot, "ee")(q)).ravel()
    X = np.tile(np.concatenate([q, np.zeros(7)]), (3, 1))
    assert cost.total(X[None], np.zeros((1, 2, 7)), target)[0] == pytest.approx(0.0, abs=1e-12)
    assert cost.total(X[None], np.zeros((1, 2, 7)), target + 0.1)[0] > 0.1
