"""Learned-model quality per task (target 4 of the PETS issue).

For every MuJoCo task, with domain randomization on: collect training episodes with random
actions (half uniform, half smooth coloured noise, so the data holds both jerky and sweeping
motions), fit PETS' default ensemble (``robot_rl.agents.pets.ModelConfig``), and score it on
held-out episodes from other seeds:

- one-step NLL of the elites' moment-matched Gaussian, nats per output dimension, in
  normalised units (each dimension scaled by its training std), and the one-step MSE;
- horizon-15 error: from every held-out state with 15 recorded actions ahead, the elites'
  mean prediction (``Propagation.EXPECTATION``, no sampling) rolled out open loop along the
  recorded actions; RMSE at step 15 in normalised units, next to the same error of
  predicting "no change" (the last state), for scale;
- disagreement (variance of the elites' means) on held-out states versus states pushed off
  the training distribution (velocities scaled by 3), the off/on ratio.

Usage: python benchmarks/pets_model_quality.py [--episodes 20] [--tasks cartpole reacher]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from common import machine_summary, markdown_table, write_section

import robot_rl
from robot_rl.agents.pets import ModelConfig, make_model
from robot_rl.controllers import colored_noise
from robot_rl.evaluation import RandomPolicy
from robot_rl.models import (
    TransitionDataset,
    collect_episode,
    prediction_error_by_horizon,
    score,
)

TASKS = {
    "pendulum": "robot_rl/PendulumSwingup-v0",
    "cartpole": "robot_rl/CartpoleSwingup-v0",
    "reacher": "robot_rl/ReacherTwoLink-v0",
    "arm": "robot_rl/ArmReach-v0",
    "quadruped": "robot_rl/QuadrupedWalk-v0",
}
HORIZON = 15
# Velocity entries of each observation (scaled to leave the training distribution).
VELOCITIES = {
    "pendulum": [2],
    "cartpole": [3, 4],
    "reacher": [4, 5],
    "arm": list(range(7, 14)),
    "quadruped": [*range(4, 10), *range(22, 34)],  # body linear/angular velocity, q̇
}


class SmoothRandomPolicy:
    """Random actions along a coloured-noise sequence (beta 2), clipped to [-1, 1]."""

    def __init__(self, act_dim: int, steps: int, seed: int) -> None:
        self.act_dim, self.steps, self.seed = act_dim, steps, seed
        self.t = 0
        self.plan = np.zeros((steps, act_dim))

    def reset(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self.plan = colored_noise(2.0, (1, self.steps, self.act_dim), g)[0].clamp(-1, 1).numpy()
        self.t = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        action = self.plan[min(self.t, self.steps - 1)]
        self.t += 1
        return action.astype(np.float32)


def collect(env, episodes: int, seed0: int) -> tuple[TransitionDataset, list[list]]:
    data = TransitionDataset(env.observation_space.shape[0], env.action_space.shape[0])
    runs = []
    steps = env.max_episode_steps or 100
    for i in range(episodes):
        seed = seed0 + i
        policy = (
            RandomPolicy(env.action_space, seed)
            if i % 2 == 0
            else SmoothRandomPolicy(env.action_space.shape[0], steps, seed)
        )
        _, transitions = collect_episode(env, policy, seed)
        data.add_episode(transitions)
        runs.append(transitions)
    return data, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="training episodes per task")
    parser.add_argument("--test-episodes", type=int, default=6)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_summary())

    config = ModelConfig()
    rows = []
    for name in args.tasks:
        start = time.perf_counter()
        env = robot_rl.make(TASKS[name], randomization=True)
        train, _ = collect(env, args.episodes, seed0=0)
        test, test_runs = collect(env, args.test_episodes, seed0=10_000)
        obs_dim, act_dim = train.obs_dim, train.act_dim
        model, trainer = make_model(
            dataclasses.replace(config, max_epochs=200),
            obs_dim,
            act_dim,
            torch.Generator().manual_seed(0),
            torch.Generator().manual_seed(1),
        )
        fit = trainer.fit(train.batch(), train.past_actions(config.action_history))
        held_out = score(model, test.batch(), test.past_actions(config.action_history))
        scale = np.where(train.batch().obs.std(0) > 1e-6, train.batch().obs.std(0), 1.0)
        (rmse,), (still,) = prediction_error_by_horizon(model, test_runs, [HORIZON], scale)

        batch = test.batch()
        obs = torch.as_tensor(batch.obs)
        act_in = torch.cat(
            [
                torch.as_tensor(test.past_actions(config.action_history)),
                torch.as_tensor(batch.action),
            ],
            dim=1,
        )
        off = obs.clone()
        off[:, VELOCITIES[name]] *= 3.0
        with torch.no_grad():
            d_on = float(model.disagreement(obs, act_in).mean())
            d_off = float(model.disagreement(off, act_in).mean())
        elapsed = time.perf_counter() - start
        row = [
            name,
            f"{len(train)} / {len(test)}",
            fit.epochs,
            f"{held_out.nll:.2f}",
            f"{held_out.elite_mse(fit.elites):.4f}",
            f"{rmse:.3f}",
            f"{still:.3f}",
            f"{d_off / d_on:.1f}",
            f"{elapsed:.0f}",
        ]
        print(row)
        rows.append(row)

    table = markdown_table(
        [
            "task",
            "train / test transitions",
            "epochs",
            "one-step NLL (nats/dim)",
            "one-step MSE",
            f"h={HORIZON} RMSE",
            f"h={HORIZON} RMSE, no-change baseline",
            "disagreement off/on",
            "time, s",
        ],
        rows,
    )
    body = (
        "## PETS model quality (`benchmarks/pets_model_quality.py`)\n\n"
        f"PETS' default ensemble ({config.members} members, {config.elites} elites, hidden "
        f"{'x'.join(map(str, config.hidden))}, action history {config.action_history}) fitted "
        f"to {args.episodes} random episodes per task (domain randomization on), scored on "
        f"{args.test_episodes} held-out episodes. Errors in normalised units (per-dimension "
        "training std); NLL of the elites' moment-matched Gaussian; horizon error of the "
        "open-loop mean prediction along the recorded actions; disagreement with velocities "
        "scaled 3x (off the data) over disagreement on held-out states.\n\n"
        + table
        + f"\n\nMachine: {machine_summary()}\n"
    )
    write_section("pets_model_quality", body)


if __name__ == "__main__":
    main()
