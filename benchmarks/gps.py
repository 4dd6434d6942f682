"""Guided policy search: held-out goal success, sample efficiency, domain randomization.

Runs, each seeded, each training a global policy with mirror-descent GPS from a few training
goals and evaluating it after every iteration on held-out goals drawn from the task's own goal
distribution (never the training goals):

1. two-link reacher, 4 training goals: held-out success within 2 cm (target >= 90 %);
2. KUKA iiwa reach, several training targets: held-out success within 3 cm;
3. the reacher trained with domain randomization on, evaluated on unseen parameter draws;
4. sample efficiency: env steps until the held-out success first reaches the target, and with
   ``--sac-budget N`` (needs the SAC agent, ``robot_rl.agents.sac``) the env steps SAC takes to
   the same held-out success on the same task, goals and seed (evaluated every
   ``--sac-eval-every`` steps, stopping once it gets there).

Evaluation episodes are not counted as training samples for either algorithm.

    python benchmarks/gps.py                 # everything, writes the gps section of BENCHMARKS.md
    python benchmarks/gps.py --only reacher  # one experiment, prints only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import robot_rl
from benchmarks.common import machine_summary, markdown_table, write_section
from robot_rl.agents.gps import (
    GPS,
    Features,
    GPSConfig,
    evaluate_on_goals,
    held_out_goals,
    make_features,
    reaching_cost,
    spread_goals,
)


@dataclass(frozen=True)
class Experiment:
    name: str
    env_id: str
    goals: int
    iterations: int
    config: GPSConfig
    success_target: float
    randomization: bool = False
    eval_goals: int = 50
    seeds: tuple[int, ...] = (0,)


@dataclass
class Result:
    experiment: Experiment
    seed: int
    curve: list[tuple[int, float]]  # (env steps, held-out success of best_policy) per iteration
    latest_curve: list[float]  # held-out success of the latest policy per iteration
    train_success: float
    held_out_success: float
    steps_to_target: int | None
    events: int
    seconds: float


REACHER = GPSConfig(rest_anchor=True)
ARM = GPSConfig(samples_per_condition=2, base_kl_step=1.0, rest_anchor=True)
EXPERIMENTS = {
    "reacher": Experiment(
        "reacher", "robot_rl/ReacherTwoLink-v0", 4, 20, REACHER, 0.9, seeds=(0, 1, 2)
    ),
    "arm": Experiment("arm", "robot_rl/ArmReach-v0", 6, 12, ARM, 0.9, eval_goals=30),
    "randomized": Experiment(
        "randomized", "robot_rl/ReacherTwoLink-v0", 4, 20, REACHER, 0.9, randomization=True
    ),
}


def run(exp: Experiment, seed: int) -> Result:
    start = time.perf_counter()
    make = lambda: robot_rl.make(exp.env_id, randomization=exp.randomization or None)  # noqa: E731
    env, eval_env = make(), make()
    train_goals = spread_goals(env.task, exp.goals, np.random.default_rng(seed))
    test_goals = held_out_goals(env.task, exp.eval_goals, np.random.default_rng(seed + 10_000))
    features = make_features(Features.BASE_FRAME, env.task, env.observation_space.shape[0])
    gps = GPS(env, train_goals, reaching_cost(env.task), exp.config, seed=seed, features=features)
    curve: list[tuple[int, float]] = []
    latest_curve: list[float] = []
    steps_to_target = None
    events = 0
    for _ in range(exp.iterations):
        entry = gps.iteration()
        events += len(entry.events)
        # Unseen parameter draws: the eval env's resets draw fresh parameters from seeds the
        # training env never used.
        held = evaluate_on_goals(eval_env, gps.best_policy(), test_goals, seed=seed + 20_000)
        latest = evaluate_on_goals(
            eval_env, gps.deterministic_policy(), test_goals, seed=seed + 20_000
        )
        curve.append((gps.env_steps, held.success_rate))
        latest_curve.append(latest.success_rate)
        print(
            f"[{exp.name} seed {seed}] iteration {entry.iteration}: {gps.env_steps} env steps, "
            f"sample cost {np.mean(entry.sample_cost):.1f}, held-out success {held.success_rate:.2f} "
            f"(latest policy {latest.success_rate:.2f})",
            flush=True,
        )
        if steps_to_target is None and held.success_rate >= exp.success_target:
            steps_to_target = gps.env_steps
    policy = gps.best_policy()
    train = evaluate_on_goals(eval_env, policy, train_goals, seed=seed + 30_000)
    return Result(
        experiment=exp,
        seed=seed,
        curve=curve,
        latest_curve=latest_curve,
        train_success=train.success_rate,
        held_out_success=curve[-1][1],
        steps_to_target=steps_to_target,
        events=events,
        seconds=time.perf_counter() - start,
    )


def sac_steps_to_target(
    exp: Experiment, seed: int, budget: int, eval_every: int
) -> tuple[int | None, float, float]:
    """SAC on the same env and held-out goals, evaluated every ``eval_every`` env steps until
    it reaches the target or ``budget``: (env steps to the target or None, best held-out
    success, wall seconds)."""
    from robot_rl.agents.sac import SAC, SACConfig, TrainConfig, Trainer

    test_goals = held_out_goals(
        robot_rl.make(exp.env_id).task, exp.eval_goals, np.random.default_rng(seed + 10_000)
    )

    class HeldOutTrainer(Trainer):
        def evaluate(self):  # the same held-out goals and reset seeds as GPS
            result = evaluate_on_goals(
                self.eval_env, self.agent.policy(), test_goals, seed + 20_000
            )
            self.evaluations.append((self.counters.env_steps, result))
            self.logger.record("eval/success", result.success_rate)
            return result

    start = time.perf_counter()
    make = lambda: robot_rl.make(exp.env_id, randomization=exp.randomization or None)  # noqa: E731
    env = make()
    config = TrainConfig(total_steps=budget, eval_every=eval_every, seed=seed)
    agent = SAC(env.observation_space.shape[0], env.action_space.shape[0], SACConfig(), seed=seed)
    trainer = HeldOutTrainer(agent, [env], config, exp.env_id, eval_env=make())
    for stop in range(eval_every, budget + 1, eval_every):  # on until the target is reached
        trainer.config = replace(config, total_steps=stop)
        trainer.train(desc=f"sac {exp.name}")
        if trainer.evaluations[-1][1].success_rate >= exp.success_target:
            break
    reached = [steps for steps, ev in trainer.evaluations if ev.success_rate >= exp.success_target]
    best = max(ev.success_rate for _, ev in trainer.evaluations)
    return (reached[0] if reached else None), best, time.perf_counter() - start


def report(results: list[Result], load_before: str, sac: list[str]) -> str:
    rows = []
    for r in results:
        e = r.experiment
        rows.append(
            [
                e.name,
                r.seed,
                e.env_id.split("/")[-1] + (" (randomized)" if e.randomization else ""),
                e.goals,
                e.eval_goals,
                f"{r.held_out_success:.0%}",
                f"{max(s for _, s in r.curve):.0%}",
                f"{r.train_success:.0%}",
                r.steps_to_target
                if r.steps_to_target is not None
                else f"not reached ({e.success_target:.0%})",
                r.curve[-1][0],
                r.events,
                f"{r.seconds:.0f}",
            ]
        )
    table = markdown_table(
        [
            "run",
            "seed",
            "env",
            "training goals",
            "held-out goals",
            "held-out success (final)",
            "best",
            "training-goal success",
            "env steps to target",
            "env steps total",
            "logged events",
            "wall s",
        ],
        rows,
    )
    curves = "\n".join(
        f"- {r.experiment.name}, seed {r.seed}: "
        + ", ".join(
            f"{s}:{p:.0%}/{q:.0%}" for (s, p), q in zip(r.curve, r.latest_curve, strict=True)
        )
        for r in results
    )
    return (
        "## Guided policy search (`benchmarks/gps.py`)\n\n"
        f"Machine before: {load_before}\n\nMachine after: {machine_summary()}\n\n"
        "Mirror-descent GPS, policy on base-frame features and anchored to command zero at rest "
        "on the goal (`GPSConfig(rest_anchor=True)`); the seed picks the training goals "
        "(spread over the goal space), the held-out goals and every random draw. Held-out goals come from the "
        "task's goal distribution (seeded, disjoint from the training goals); success is the "
        "task's (reacher 2 cm, arm 3 cm) at the last step of a deterministic episode. The "
        "policy reported is `GPS.best_policy()`: the iterate whose own training samples had the "
        "lowest mean cost (no evaluation data is used to choose it); the curves also show the "
        "latest iterate. The "
        "randomized run trains with the env's default domain randomization and evaluates on "
        "parameter draws the training never saw.\n\n"
        f"{table}\n\nHeld-out success after each iteration (env steps: selected policy / latest policy):\n\n{curves}\n"
        + ("\n" + "\n".join(sac) + "\n" if sac else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXPERIMENTS), action="append")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--sac-budget", type=int, default=0, help="also run SAC for up to this many env steps"
    )
    parser.add_argument(
        "--sac-eval-every", type=int, default=2000, help="env steps between SAC's evaluations"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = machine_summary()
    names = args.only or list(EXPERIMENTS)
    with threadpool_limits(args.threads):  # multithreaded BLAS on a shared machine: 20x slower
        results = [
            run(EXPERIMENTS[name], seed) for name in names for seed in EXPERIMENTS[name].seeds
        ]
    sac_lines = []
    if args.sac_budget:
        for r in results:
            if r.experiment.randomization:
                continue
            with threadpool_limits(args.threads):
                steps, best, wall = sac_steps_to_target(
                    r.experiment, r.seed, args.sac_budget, args.sac_eval_every
                )
            gps_steps = r.steps_to_target
            if not gps_steps:
                ratio = "n/a"
            elif steps:
                ratio = f"{steps / gps_steps:.1f}x"
            else:  # SAC did not get there: the ratio is at least the budget's
                ratio = f"> {args.sac_budget / gps_steps:.1f}x"
            sac_lines.append(
                f"- SAC on {r.experiment.name}, seed {r.seed}: env steps to "
                f"{r.experiment.success_target:.0%} held-out success "
                f"{steps if steps else f'not reached in {args.sac_budget}'} (best {best:.0%}, "
                f"{wall:.0f} s); GPS {gps_steps}; SAC/GPS {ratio}"
            )
            print(sac_lines[-1], flush=True)
    if sac_lines:
        sac_lines.insert(
            0,
            "SAC (Stable-Baselines3's defaults: 256x256, batch 256, one update per env step) on "
            "the same env, seed and held-out goals, evaluated every "
            f"{args.sac_eval_every} env steps and stopped once it reaches the target; "
            "'> Nx': SAC did not reach it within the budget, so the ratio is at least "
            "budget / GPS's steps. GPS's env steps count every sample of every iteration ("
            + ", ".join(sorted({f"{r.experiment.name} {r.curve[0][0]}" for r in results}))
            + " per iteration). "
            f"Command: `python benchmarks/gps.py --sac-budget {args.sac_budget}`.\n",
        )
    text = report(results, load_before, sac_lines)
    print(text)
    if not args.only:
        write_section("gps", text)


if __name__ == "__main__":
    main()
