"""Imagined rollouts: shapes, what each propagation mode means, scoring, hostile models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_rl.models import GaussianEnsemble, ModelEnv, Propagation


def constant_model(members: int = 4, predict_reward: bool = False) -> GaussianEnsemble:
    """Member m moves the (1-D) state by m + 1 whatever the input: the member is visible."""
    model = GaussianEnsemble(
        1, 1, members=members, elites=members, hidden=(4,), predict_reward=predict_reward
    )
    last = model.linears[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[:, 0, 0] = torch.arange(1.0, members + 1)
        if predict_reward:
            last.bias[:, 0, 1] = 10.0  # predicted reward 10 per step
        last.bias[:, 0, model.out_dim :] = -30.0  # the smallest variance
    return model


def state_reward(obs, action, next_obs):
    return next_obs[..., 0]


def increments(model_env: ModelEnv, candidates: int = 3, horizon: int = 12) -> torch.Tensor:
    """(C, P, H) per-step state increments of each particle, i.e. the member it used."""
    traj = model_env.rollout(np.zeros(1, dtype=np.float32), torch.zeros(candidates, horizon, 1))
    return traj[..., 0].diff(dim=-1)


def make_env(propagation: Propagation, particles: int = 8, **kwargs) -> ModelEnv:
    kwargs = {"model": constant_model(), "reward_fn": state_reward, **kwargs}
    return ModelEnv(
        particles=particles,
        propagation=propagation,
        sample=False,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )


def test_ts_inf_keeps_each_particle_on_one_member():
    inc = increments(make_env(Propagation.TS_INF))
    assert inc.shape == (3, 8, 12)
    assert (inc == inc[..., :1]).all()  # constant over time for each particle
    assert len(inc[..., 0].unique()) > 1  # but particles use different members


def test_ts1_draws_a_fresh_balanced_member_each_step():
    inc = increments(make_env(Propagation.TS1))
    assert not (inc == inc[..., :1]).all(dim=-1).any()  # no particle keeps one member throughout
    # 24 rows over 4 elites: at every step each member serves exactly 6 particles.
    for t in range(inc.shape[-1]):
        counts = torch.bincount(inc[..., t].flatten().round().long() - 1, minlength=4)
        assert counts.tolist() == [6, 6, 6, 6]


def test_expectation_averages_the_elites():
    env = make_env(Propagation.EXPECTATION)
    torch.testing.assert_close(increments(env), torch.full((3, 8, 12), 2.5))
    returns = env.evaluate(np.zeros(1), torch.zeros(2, 4, 1))
    torch.testing.assert_close(returns, torch.full((2,), 2.5 * (1 + 2 + 3 + 4)))


def test_random_model_uses_one_member_for_the_whole_batch_per_step():
    inc = increments(make_env(Propagation.RANDOM_MODEL))
    per_step = inc.reshape(-1, inc.shape[-1])
    assert (per_step == per_step[:1]).all()
    assert len(per_step[0].unique()) > 1


def test_only_elites_are_used():
    model = GaussianEnsemble(1, 1, members=4, elites=2, hidden=(4,))
    model.load_state_dict(constant_model().state_dict() | {"elite_index": torch.tensor([1, 3])})
    for mode in Propagation:
        inc = increments(make_env(mode, model=model))
        values = set(inc.unique().tolist())
        expected = {3.0} if mode is Propagation.EXPECTATION else {2.0, 4.0}
        assert values <= expected, mode
        assert values == expected or mode is Propagation.RANDOM_MODEL


def test_rows_that_do_not_fill_the_member_blocks_are_padded_and_ignored():
    # 3 candidates x 5 particles = 15 rows over 4 elites: one padding row.
    env = make_env(Propagation.TS1, particles=5)
    actions = torch.zeros(3, 6, 1)
    traj = env.rollout(np.zeros(1), actions)
    returns = env.evaluate(np.zeros(1), actions)
    assert traj.shape == (3, 5, 7, 1)
    assert returns.shape == (3,)
    # Each candidate's return is the mean over its particles of the summed visited states.
    assert ((returns > 6 * 7 / 2) & (returns < 4 * 6 * 7 / 2)).all()


def test_per_candidate_start_states_and_termination():
    env = make_env(Propagation.EXPECTATION, termination_fn=lambda o, a, n: n[..., 0] > 5.0)
    returns = env.evaluate(np.array([[0.0], [100.0]]), torch.zeros(2, 4, 1))
    # From 0: states 2.5, 5, 7.5 (terminal: counted), then nothing.
    torch.testing.assert_close(returns, torch.tensor([15.0, 102.5]))


def test_predicted_reward_is_used_without_a_reward_function():
    env = make_env(Propagation.TS1, model=constant_model(predict_reward=True), reward_fn=None)
    torch.testing.assert_close(
        env.evaluate(np.zeros(1), torch.zeros(2, 5, 1)), torch.full((2,), 50.0)
    )
    with pytest.raises(ValueError, match="does not predict the reward"):
        ModelEnv(constant_model(), reward_fn=None)


def test_non_finite_predictions_score_minus_infinity():
    model = constant_model()
    with torch.no_grad():
        model.linears[-1].bias[2, 0, 0] = math.nan  # member 2 is broken
    # Under TS∞ with one particle per elite, every candidate has a particle on member 2.
    returns = make_env(Propagation.TS_INF, model=model, particles=4).evaluate(
        np.zeros(1), torch.zeros(8, 3, 1)
    )
    assert (returns == -math.inf).all()

    def crashing_reward(obs, action, next_obs):
        """NaN wherever the action is positive: those candidates must come out worst."""
        return torch.where(
            action[..., 0] > 0, torch.full_like(next_obs[..., 0], math.nan), next_obs[..., 0]
        )

    actions = torch.zeros(6, 3, 1)
    actions[[1, 4], 1] = 0.5
    returns = make_env(Propagation.TS1, reward_fn=crashing_reward).evaluate(np.zeros(1), actions)
    assert (returns == -math.inf).tolist() == [False, True, False, False, True, False]


def test_candidates_share_common_random_numbers():
    model = GaussianEnsemble(
        2, 1, members=3, elites=3, hidden=(16,), generator=torch.Generator().manual_seed(0)
    )
    env = ModelEnv(model, state_reward, particles=4, generator=torch.Generator().manual_seed(0))
    # Identical candidates get identical particles, members and noise: identical scores (up
    # to float rounding, which can depend on a row's position in a matmul).
    returns = env.evaluate(np.zeros(2), torch.full((5, 6, 1), 0.3))
    torch.testing.assert_close(returns, returns[:1].expand(5), rtol=1e-6, atol=1e-6)
    traj = env.rollout(np.zeros(2), torch.full((5, 6, 1), 0.3))
    torch.testing.assert_close(traj[0], traj[4], rtol=1e-6, atol=1e-6)
    assert not torch.equal(traj[0, 0], traj[0, 1])  # but a candidate's particles differ


def test_sampling_is_seeded_and_adds_noise():
    model = GaussianEnsemble(
        2, 1, members=3, elites=2, hidden=(16,), generator=torch.Generator().manual_seed(0)
    )

    def run(seed: int) -> torch.Tensor:
        env = ModelEnv(
            model, state_reward, particles=4, generator=torch.Generator().manual_seed(seed)
        )
        return env.rollout(np.zeros(2), torch.zeros(2, 5, 1))

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_step_is_a_batched_dynamics_for_numpy_and_torch():
    env = make_env(Propagation.EXPECTATION)
    out = env.step(np.zeros((5, 1)), np.zeros((5, 1)))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, 2.5)
    out = make_env(Propagation.TS1).step(torch.zeros(6, 1), torch.zeros(6, 1))
    assert set(out[:, 0].tolist()) <= {1.0, 2.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="step expects"):
        env.step(np.zeros((5, 2)), np.zeros((5, 1)))


def test_bad_shapes_raise():
    env = make_env(Propagation.TS1)
    with pytest.raises(ValueError, match=r"actions must have shape \(C, H, 1\)"):
        env.evaluate(np.zeros(1), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="obs must have shape"):
        env.evaluate(np.zeros(3), torch.zeros(3, 4, 1))


def test_safety_cost_is_subtracted_with_its_weight():
    def cost(obs, action, next_obs):
        return (next_obs[..., 0] > 4.0) * 1.0

    env = make_env(Propagation.EXPECTATION, cost_fn=cost, cost_weight=10.0)
    # States 2.5, 5, 7.5: the last two cost 10 each.
    torch.testing.assert_close(
        env.evaluate(np.zeros(1), torch.zeros(1, 3, 1)), torch.tensor([-5.0])
    )
    with pytest.raises(ValueError, match="needs a cost_fn"):
        make_env(Propagation.TS1, cost_weight=1.0)


def test_action_history_feeds_the_previous_actions_to_the_model():
    model = GaussianEnsemble(
        2,
        1,
        members=3,
        elites=2,
        hidden=(16,),
        action_history=2,
        generator=torch.Generator().manual_seed(0),
    )
    env = ModelEnv(
        model, state_reward, particles=1, propagation=Propagation.EXPECTATION, sample=False
    )
    obs, past = torch.tensor([0.3, -0.2]), torch.tensor([[0.5], [-0.7]])
    actions = torch.tensor([[[0.1], [0.9], [-0.4]]])
    traj = env.rollout(obs.numpy(), actions, past_actions=past)[0, 0]
    # By hand: each step sees [a_{t-2}, a_{t-1}, a_t], the history starting from ``past``.
    sequence = torch.cat([past, actions[0]])
    s = obs
    for t in range(3):
        s = model.mean_next_obs(s[None], sequence[t : t + 3].reshape(1, 3))[0]
        torch.testing.assert_close(traj[t + 1], s)
    with pytest.raises(ValueError, match=r"past_actions must have shape \(2, 1\)"):
        env.evaluate(obs.numpy(), actions, past_actions=torch.zeros(1, 1))
