"""The compiled learner (``SAC.compile``) samples and steps as the eager one does."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from robot_rl.agents import SAC, ReplayBuffer, SACConfig, SafeSAC, SafeSACConfig, load_actor
from robot_rl.cli import main as cli
from robot_rl.cli.agent_runs import CHECKPOINT_NAME
from robot_rl.types import Batch

from .fakes import PointEnv
from .test_reset_free import _trainer as reset_free_trainer
from .test_sac import _trainer

HIDDEN = (16, 16)


def _batches(n: int, seed: int = 0, size: int = 32) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        obs = torch.randn(size, 2, generator=g)
        out.append(
            Batch(
                obs=obs,
                action=torch.rand(size, 1, generator=g) * 2 - 1,
                reward=-(obs[:, 0] ** 2),
                next_obs=obs + 0.1 * torch.randn(size, 2, generator=g),
                terminated=(torch.rand(size, generator=g) < 0.2).float(),
                cost=(obs[:, 0].abs() > 0.5).float(),
            )
        )
    return out


def _parameters(agent: SAC) -> list[torch.Tensor]:
    """The networks' parameters: actor, critics and target critics."""
    return [*agent.actor.parameters(), *agent.critics.parameters(), *agent.targets.parameters()]


@pytest.mark.parametrize("safe", [False, True], ids=["sac", "safe-sac"])
def test_compiled_update_takes_the_eager_steps(safe):
    """Same seed, same batches: sampled actions, parameters, temperature, losses and λ agree
    to float rounding.

    Two compiled learners of the same shapes share the compiled code, so each must be stepped
    with its own tensors; safe SAC's multiplier changes between updates, so the graph must read
    its value, not a constant frozen at the first compile, and must notice when it is replaced.
    """
    if safe:
        config = SafeSACConfig(hidden=HIDDEN, batch_size=32, cost_limit=1.0)
        learner = SafeSAC
    else:
        config = SACConfig(hidden=HIDDEN, batch_size=32)
        learner = SAC
    pairs = [
        (learner(2, 1, config, seed=s), learner(2, 1, config, seed=s).compile()) for s in (3, 4)
    ]
    for i, batch in enumerate(_batches(12)):
        for eager, compiled in pairs:
            obs = batch.obs[:3].numpy()
            np.testing.assert_allclose(compiled.act(obs), eager.act(obs), rtol=1e-4, atol=1e-5)
            want, got = eager.update(batch), compiled.update(batch)
            assert want.keys() == got.keys()
            for key in want:
                torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)
            if safe:
                for agent in (eager, compiled):
                    agent.on_episodes([0.0], [5.0 * (i % 3)])
                    if i == 6:  # λ replaced by a new tensor, not written into: traced again
                        agent._multiplier = torch.tensor(0.0, dtype=torch.float64)
    for eager, compiled in pairs:
        if safe:
            assert compiled.multiplier == eager.multiplier > 0.0
        assert compiled.updates == eager.updates == 12
        for a, b in zip(_parameters(eager), _parameters(compiled), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(compiled.log_temperature, eager.log_temperature)
        # the policy noise came from the same stream: both generators stand at the same place
        assert torch.equal(eager.generator.get_state(), compiled.generator.get_state())


def _assert_same_updates(eager: SAC, compiled: SAC, batches: list[Batch]) -> None:
    """Both learners take ``batches``' updates with the same metrics and end at the same
    parameters."""
    for batch in batches:
        want, got = eager.update(batch), compiled.update(batch)
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)
    for a, b in zip(_parameters(eager), _parameters(compiled), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_compiled_update_takes_batches_of_other_sizes_and_memory_layouts():
    """A batch of another size, or one whose observations are stored column by column, gets a
    step traced for it (the compiled code assumes its inputs' sizes and strides)."""
    config = SACConfig(hidden=HIDDEN, batch_size=32)
    eager, compiled = SAC(2, 1, config, seed=1), SAC(2, 1, config, seed=1).compile()
    batches = _batches(6, seed=2)
    for i in (1, 4):
        batches[i] = Batch(*(t[:16] for t in batches[i]))
    for i in (2, 5):
        batches[i] = batches[i]._replace(obs=batches[i].obs.t().contiguous().t())
    assert not batches[2].obs.is_contiguous()
    _assert_same_updates(eager, compiled, batches)


def test_compiled_learner_follows_a_learning_rate_schedule_without_tracing_again():
    config = SACConfig(hidden=HIDDEN, batch_size=32)
    eager, compiled = SAC(2, 1, config, seed=8), SAC(2, 1, config, seed=8).compile()
    schedules = [
        [torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.5) for o in agent.optimizers().values()]
        for agent in (eager, compiled)
    ]
    traced = []
    for batch in _batches(6, seed=3):
        _assert_same_updates(eager, compiled, [batch])
        for schedule in (s for per_agent in schedules for s in per_agent):
            schedule.step()
        traced.append(list(compiled._compiled._steps.values()))
    assert compiled.actor_optimizer.param_groups[0]["lr"] == config.actor_lr * 0.5**6
    assert all(steps == traced[0] and len(steps) == 1 for steps in traced)


class _HalvedActorLoss(SAC):
    """SAC whose actor loss is halved by a tensor it makes from a literal in the loss."""

    def actor_loss(self, batch, action, log_prob, alpha):
        return {"actor": super().actor_loss(batch, action, log_prob, alpha)["actor"] * self.half()}

    def half(self) -> torch.Tensor:
        return torch.tensor(0.5)


class _HiddenStateActorLoss(_HalvedActorLoss):
    """The same, with the tensor kept in a dict, where the compiled step does not look."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scales = {"actor": torch.tensor(0.5)}

    def half(self) -> torch.Tensor:
        return self.scales["actor"]


def test_compiled_step_takes_tensors_made_in_the_loss_and_refuses_state_it_would_freeze():
    """A tensor made in a loss is part of the step; learner state it cannot see as an input
    would be frozen at its value at trace time, so it is refused, and the learner is left as
    it was."""
    config = SACConfig(hidden=HIDDEN, batch_size=32)
    eager, compiled = (_HalvedActorLoss(2, 1, config, seed=6) for _ in range(2))
    _assert_same_updates(eager, compiled.compile(), _batches(3))

    hidden = _HiddenStateActorLoss(2, 1, config, seed=6).compile()
    before = [p.clone() for p in _parameters(hidden)]
    with pytest.raises(RuntimeError, match="would freeze their current values"):
        hidden.update(_batches(1)[0])
    assert hidden.updates == 0
    for a, b in zip(before, _parameters(hidden), strict=True):
        assert torch.equal(a, b)


def _buffer(seed: int = 0) -> ReplayBuffer:
    """A replay buffer holding ``_batches``' transitions, sampling with seed ``seed``."""
    buffer = ReplayBuffer(500, obs_dim=2, act_dim=1, seed=seed)
    for b in _batches(4, seed=7):
        buffer.add(b.obs, b.action, b.reward, b.next_obs, b.terminated, b.cost)
    return buffer


def test_compiled_update_and_act_takes_the_eager_steps_and_actions():
    """The training loop's fused call (gather, step, next actions) draws the batch and the
    noise the eager ``update`` then ``act`` draw, and reaches the same parameters."""
    config = SACConfig(hidden=HIDDEN, batch_size=32)
    eager, compiled = SAC(2, 1, config, seed=5), SAC(2, 1, config, seed=5).compile()
    buffers = _buffer(), _buffer()
    obs = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    for _ in range(10):
        (want, want_actions), (got, got_actions) = (
            agent.update_and_act(buffer, obs)
            for agent, buffer in zip((eager, compiled), buffers, strict=True)
        )
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)
        assert got_actions.shape == (3, 1)
        np.testing.assert_allclose(got_actions, want_actions, rtol=1e-4, atol=1e-5)
        obs = obs + 0.1
    assert compiled.updates == eager.updates == 10
    for a, b in zip(_parameters(eager), _parameters(compiled), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert torch.equal(eager.generator.get_state(), compiled.generator.get_state())
    assert torch.equal(buffers[0].generator.get_state(), buffers[1].generator.get_state())


def test_compiled_learner_steps_the_optimiser_state_it_was_last_given():
    """Loading a state mid-run replaces the optimisers' state tensors; the compiled step must
    move on from the loaded ones, as it does in a run that never left that state."""
    config = SACConfig(hidden=HIDDEN, batch_size=32)
    agent = SAC(2, 1, config, seed=2).compile()
    batches = _batches(6, seed=1)
    for batch in batches[:3]:
        agent.update(batch)
    tensors, metadata = agent.state_dict()
    saved = {k: v.clone() for k, v in tensors.items()}, copy.deepcopy(metadata)
    for batch in batches[3:]:
        agent.update(batch)
    want = [p.clone() for p in _parameters(agent)]
    agent.load_state_dict(*saved)
    for batch in batches[3:]:
        agent.update(batch)
    for a, b in zip(want, _parameters(agent), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_compiled_run_resumes_from_its_checkpoint_like_the_uninterrupted_run(tmp_path):
    """A compiled trainer's checkpoint (Adam state written by the compiled step) resumes
    exactly, eagerly or compiled."""
    straight = _trainer([PointEnv()], total_steps=160).compile().train()
    path = tmp_path / "run.pt"
    _trainer([PointEnv()], total_steps=100, path=path).compile().train()
    resumed = _trainer([PointEnv()], total_steps=160, path=path).compile().load(path).train()
    for a, b in zip(_parameters(straight.agent), _parameters(resumed.agent), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    eager = _trainer([PointEnv()], total_steps=160, path=path).load(path).train()
    for a, b in zip(_parameters(straight.agent), _parameters(eager.agent), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_compiled_trainer_with_vector_envs_and_two_updates_per_step_trains_like_eager():
    """Two envs act from one fused call's actions; the first of each step's two updates takes
    the plain compiled step, the second the fused one."""
    runs = [
        _trainer([PointEnv(), PointEnv()], total_steps=110, updates_per_step=2.0) for _ in range(2)
    ]
    runs[1].compile()
    for trainer in runs:
        trainer.train()
    eager, compiled = runs
    assert compiled.agent.updates == eager.agent.updates == 2 * (110 - 50)
    for a, b in zip(_parameters(eager.agent), _parameters(compiled.agent), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_compiled_trainer_resumes_a_checkpoint_written_before_any_update(tmp_path):
    """A checkpoint from the random-action phase holds no Adam state; the compiled step
    starts it as ``torch.optim.Adam`` would (it used to fail with a KeyError)."""
    path = tmp_path / "run.pt"
    _trainer([PointEnv()], total_steps=40, path=path).train()  # learning starts at 50
    straight = _trainer([PointEnv()], total_steps=80).compile().train()
    resumed = _trainer([PointEnv()], total_steps=80, path=path).compile().load(path).train()
    assert resumed.agent.updates == straight.agent.updates == 30
    for a, b in zip(_parameters(straight.agent), _parameters(resumed.agent), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_cli_compile_flag_compiles_the_learner_and_trains_like_the_eager_run(tmp_path, monkeypatch):
    compiled: list[SAC] = []
    compile_learner = SAC.compile
    monkeypatch.setattr(SAC, "compile", lambda self: compiled.append(self) or compile_learner(self))
    args = [
        "train", "sac", "--env", "robot_rl/PendulumSwingup-v0", "--agent.hidden", "16", "16",
        "--agent.batch-size", "32", "--train.total-steps", "200", "--train.learning-starts", "50",
        "--train.eval-every", "0", "--log", "CSV",
    ]  # fmt: skip
    assert cli([*args, "--compile", "--run-dir", str(tmp_path / "compiled")]) == 0
    assert len(compiled) == 1
    assert compiled[0].updates == 150  # 200 steps, the first 50 random
    assert cli([*args, "--run-dir", str(tmp_path / "eager")]) == 0
    assert len(compiled) == 1
    actors = [load_actor(tmp_path / run / CHECKPOINT_NAME) for run in ("compiled", "eager")]
    for a, b in zip(actors[0].parameters(), actors[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_compiling_without_a_cpp_compiler_is_a_clear_error():
    agent = SAC(2, 1, SACConfig(hidden=HIDDEN, batch_size=32))
    with (
        torch._inductor.config.patch({"cpp.cxx": ("no-such-c++",)}),
        pytest.raises(RuntimeError, match="needs a C\\+\\+ compiler"),
    ):
        agent.compile()
    agent.update(_batches(1)[0])  # still the eager learner


def test_compiled_step_refuses_an_adam_it_would_not_follow():
    """Weight decay is refused when compiling, and when set later, before the next step."""
    agent = SAC(2, 1, SACConfig(hidden=HIDDEN, batch_size=32))
    agent.actor_optimizer.param_groups[0]["weight_decay"] = 1e-4
    with pytest.raises(ValueError, match="plain Adam only"):
        agent.compile()
    agent.actor_optimizer.param_groups[0]["weight_decay"] = 0.0
    agent.compile().update(_batches(1)[0])
    agent.critic_optimizer.param_groups[0]["amsgrad"] = True
    with pytest.raises(ValueError, match="plain Adam only"):
        agent.update(_batches(1)[0])


def test_reset_free_trainer_compiles_both_learners_and_runs_like_eager():
    runs = [reset_free_trainer(PointEnv(horizon=10**9), total_steps=200) for _ in range(2)]
    runs[1].compile()
    for trainer in runs:
        trainer.train()
    eager, compiled = runs
    assert compiled.hard_resets == eager.hard_resets
    for learner in ("agent", "reset_agent"):
        want, got = getattr(eager, learner), getattr(compiled, learner)
        assert got.updates == want.updates == 150
        for a, b in zip(_parameters(want), _parameters(got), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
