"""The receding-horizon controller: warm starts, the Policy contract, safety, real plans."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.controllers import ICEM, MPC, DynamicsEvaluator, Optimizer, Solution
from robot_rl.evaluation import run_episode
from robot_rl.models import GaussianEnsemble, ModelEnv, SimulatorDynamics
from robot_rl.types import Policy


class ScriptedOptimizer(Optimizer):
    """Returns preset plans and records the initial sequence of each call."""

    def __init__(self, plans: list[torch.Tensor]) -> None:
        super().__init__(len(plans[0]), torch.tensor([-1.0]), torch.tensor([1.0]))
        self.plans, self.initials, self.advanced = list(plans), [], 0

    def optimize(self, objective, initial):
        self.initials.append(initial.clone())
        plan = self.plans.pop(0)
        objective(plan[None])
        return Solution(plan, 0.0, 1)

    def advance(self, steps: int = 1) -> None:
        self.advanced += steps


class ConstantEvaluator:
    def __init__(self, value: float) -> None:
        self.value = value

    def evaluate(self, obs, actions):
        return torch.full((len(actions),), self.value)


def ramp(start: float) -> torch.Tensor:
    return torch.linspace(start, start + 0.3, 4)[:, None]


def test_mpc_is_a_policy_and_shifts_its_warm_start():
    opt = ScriptedOptimizer([ramp(0.1), ramp(-0.5)])
    mpc = MPC(ConstantEvaluator(0.0), opt)
    assert isinstance(mpc, Policy)
    mpc.reset()
    a0 = mpc.act(np.zeros(2))
    assert a0.dtype == np.float32
    assert a0.shape == (1,)
    np.testing.assert_allclose(a0, [0.1])
    torch.testing.assert_close(opt.initials[0], torch.zeros(4, 1))  # the box centre
    mpc.act(np.zeros(2))
    # The second call starts from the first plan shifted by one, padded with the centre.
    torch.testing.assert_close(opt.initials[1], torch.cat([ramp(0.1)[1:], torch.zeros(1, 1)]))
    assert opt.advanced == 2
    assert mpc.last is not None
    assert mpc.last.evaluations == 1


def test_replanning_every_k_steps_plays_the_plan_in_between():
    opt = ScriptedOptimizer([ramp(0.0), ramp(0.5)])
    mpc = MPC(ConstantEvaluator(0.0), opt, replan_every=2)
    actions = [float(mpc.act(np.zeros(2))[0]) for _ in range(3)]
    np.testing.assert_allclose(actions, [0.0, 0.1, 0.5], atol=1e-6)
    assert len(opt.initials) == 2


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_plan_falls_back_to_the_box_centre(bad):
    mpc = MPC(ConstantEvaluator(0.0), ScriptedOptimizer([torch.full((4, 1), bad)]))
    action = mpc.act(np.zeros(2))
    np.testing.assert_array_equal(action, [0.0])
    assert mpc.last.fallback


def test_non_finite_model_outputs_never_give_a_non_finite_action():
    model = GaussianEnsemble(2, 1, members=3, elites=2, hidden=(8,))
    with torch.no_grad():
        for layer in model.linears:
            layer.weight.fill_(math.nan)
    evaluator = ModelEnv(model, lambda o, a, n: -(n[..., 0] ** 2), particles=4)
    mpc = MPC(
        evaluator, ICEM(5, torch.tensor([-1.0]), torch.tensor([1.0]), population=20, elites=4)
    )
    for _ in range(3):
        action = mpc.act(np.ones(2, dtype=np.float32))
        assert np.isfinite(action).all()
        assert -1.0 <= action[0] <= 1.0
    assert mpc.last.value == -math.inf
    with pytest.raises(ValueError, match="observation must be finite"):
        mpc.act(np.array([np.nan, 0.0]))


class DoubleIntegrator:
    """x'' = u, dt = 0.1, state (position, velocity): a Dynamics on torch tensors."""

    def step(self, state, action):
        pos, vel = state[:, 0], state[:, 1]
        vel = vel + 0.1 * action[:, 0]
        return torch.stack([pos + 0.1 * vel, vel], dim=1)


def test_dynamics_evaluator_plans_a_double_integrator_to_its_target():
    def reward(obs, action, next_obs):
        return -((next_obs[..., 0] - 1.0) ** 2) - 0.1 * next_obs[..., 1] ** 2

    opt = ICEM(
        15,
        torch.tensor([-1.0]),
        torch.tensor([1.0]),
        population=64,
        elites=8,
        generator=torch.Generator().manual_seed(0),
    )
    mpc = MPC(DynamicsEvaluator(DoubleIntegrator(), reward), opt)
    state = torch.zeros(1, 2)
    for _ in range(60):
        action = torch.as_tensor(mpc.act(state[0].numpy()))[None]
        state = DoubleIntegrator().step(state, action)
    assert abs(float(state[0, 0]) - 1.0) < 0.05
    assert abs(float(state[0, 1])) < 0.1


def test_mpc_on_the_true_simulator_swings_the_pendulum_up():
    env = robot_rl.make("robot_rl/PendulumSwingup-v0", max_episode_steps=70)
    oracle = SimulatorDynamics(env)
    opt = ICEM(
        20,
        torch.tensor([-1.0]),
        torch.tensor([1.0]),
        population=32,
        elites=4,
        iterations=2,
        generator=torch.Generator().manual_seed(0),
    )
    episode = run_episode(env, MPC(oracle, opt), seed=0, success_window=15)
    # 2 N·m cannot lift the pole directly: it must pump energy, then hold it up.
    assert episode.success
    oracle.close()


def test_mpc_passes_the_actions_it_applied_as_history():
    class Recording:
        def __init__(self) -> None:
            self.past: list[torch.Tensor] = []

        def evaluate(self, obs, actions, past_actions):
            self.past.append(past_actions.clone())
            return torch.zeros(len(actions))

    evaluator = Recording()
    opt = ScriptedOptimizer([ramp(0.1), ramp(0.2), ramp(0.3)])
    mpc = MPC(evaluator, opt, action_history=2)
    for _ in range(3):
        mpc.act(np.zeros(2))
    torch.testing.assert_close(evaluator.past[0], torch.zeros(2, 1))
    torch.testing.assert_close(evaluator.past[2], torch.tensor([[0.1], [0.2]]))
    mpc.reset()
    assert not mpc._applied.any()
