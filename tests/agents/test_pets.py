"""PETS: it improves on a small task, resumes exactly, and refuses what does not fit."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.agents.pets import CHECKPOINT_NAME, ModelConfig, PETSConfig, PlannerConfig, build
from robot_rl.checkpoint import CheckpointError
from robot_rl.cli import main as cli
from robot_rl.models import GaussianEnsemble

TINY = PETSConfig(
    env="robot_rl/PendulumSwingup-v0",
    randomization=False,
    max_episode_steps=15,
    episodes=3,
    model=ModelConfig(members=3, elites=2, hidden=(32, 32), max_epochs=5),
    planner=PlannerConfig(horizon=5, population=16, elites=4, iterations=2, particles=2),
    log=(),
)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    straight = build(dataclasses.replace(TINY, run_dir=tmp_path / "a"))
    straight.learn(3)

    first = build(dataclasses.replace(TINY, run_dir=tmp_path / "b"))
    first.learn(2)
    resumed = build(dataclasses.replace(TINY, run_dir=tmp_path / "b"))
    resumed.restore(tmp_path / "b" / CHECKPOINT_NAME)
    assert resumed.episode == 2
    resumed.learn(3)

    assert [h.ret for h in resumed.history] == [h.ret for h in straight.history]
    for x, y in zip(
        resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y)
    for x, y in zip(resumed.data.batch(), straight.data.batch(), strict=True):
        np.testing.assert_array_equal(x, y)
    first_log = straight.history[0]
    assert not first_log.planned
    assert math.isnan(first_log.new_data_mse)
    assert straight.history[2].planned
    assert straight.history[2].plan_ms_mean > 0


def test_checkpoint_for_another_setup_or_corrupt_is_refused(tmp_path):
    agent = build(dataclasses.replace(TINY, run_dir=tmp_path))
    agent.learn(1)
    path = tmp_path / CHECKPOINT_NAME
    other_seed = build(dataclasses.replace(TINY, run_dir=tmp_path, seed=5))
    with pytest.raises(CheckpointError, match="seed"):
        other_seed.restore(path)
    wider = build(
        dataclasses.replace(
            TINY, run_dir=tmp_path, model=ModelConfig(members=3, elites=2, hidden=(64,))
        )
    )
    with pytest.raises(CheckpointError, match="model"):
        wider.restore(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        agent.restore(path)


def test_a_model_for_other_dimensions_is_refused():
    agent = build(TINY)
    wrong = GaussianEnsemble(5, 1, members=3, elites=2, hidden=(8,))
    with pytest.raises(ValueError, match="obs_dim=5, act_dim=1, but the env has obs_dim=3"):
        type(agent)(agent.env, wrong, agent.trainer, agent.model_env, agent.optimizer)


def test_cli_trains_checkpoints_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [
        "train", "pets", "--env", "robot_rl/PendulumSwingup-v0", "--no-randomization",
        "--max-episode-steps", "10", "--model.members", "2", "--model.elites", "1",
        "--model.hidden", "16", "--model.max-epochs", "2", "--planner.horizon", "4",
        "--planner.population", "8", "--planner.elites", "2", "--planner.iterations", "1",
        "--planner.particles", "1", "--run-dir", str(run_dir), "--log", "CSV",
    ]  # fmt: skip
    assert cli([*args, "--episodes", "2"]) == 0
    assert (run_dir / CHECKPOINT_NAME).is_file()
    assert len((run_dir / "progress.csv").read_text().splitlines()) == 3
    assert cli([*args, "--episodes", "3"]) == 2  # refuses to overwrite without --resume
    assert cli([*args, "--episodes", "3", "--resume"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert len((run_dir / "progress.csv").read_text().splitlines()) == 4


def test_pets_improves_on_the_pendulum_within_four_episodes(tmp_path: Path):
    config = PETSConfig(
        env="robot_rl/PendulumSwingup-v0",
        randomization=False,
        episodes=4,
        run_dir=tmp_path,
        log=(),
        model=ModelConfig(members=5, elites=3, hidden=(64, 64), max_epochs=30),
        planner=PlannerConfig(horizon=20, population=40, elites=5, iterations=2, particles=5),
    )
    agent = build(config)
    history = agent.learn(config.episodes)
    # A random episode barely moves the pendulum (return 0.5); within three planned episodes
    # PETS pumps it well up (returns 5, 21, 34 here; a full swing-up and hold scores ~65).
    assert max(h.ret for h in history[1:]) > history[0].ret + 20


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match=r"model\.elites"):
        ModelConfig(members=3, elites=4)
    with pytest.raises(ValueError, match=r"planner\.elites"):
        PlannerConfig(population=10, elites=20)
    with pytest.raises(ValueError, match="episodes"):
        PETSConfig(episodes=0)
