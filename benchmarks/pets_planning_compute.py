"""PETS planning compute against its floating-point bound (target 1 of the PETS issue).

The reference PETS configuration: an ensemble of 7 members (5 elites) of 4 hidden layers of
200 SiLU units on the cart-pole (obs 5, action 1, predicting Δobs: 10 outputs, a mean and a
log-variance each), CEM with a population of 350, 35 elites, horizon 15 and 5 iterations,
20 particles per candidate, TS1 propagation.

FLOP count of one planned action (multiply-adds count 2; biases, activations, sampling and
rewards are not counted):

    model evaluations = iterations · population · particles · horizon = 5 · 350 · 20 · 15
    FLOPs per evaluation = 2 · (6·200 + 3·200·200 + 200·10)     (one elite per particle)
    FLOPs per action = evaluations · FLOPs per evaluation

The bound is that FLOP count at the machine's sustained batched-matmul rate, measured in
the same run: the best rate of ``torch.baddbmm`` over a few batched shapes (the
configuration's own hidden layer, (5, 1400, 200) x (5, 200, 200), and larger ones), each
repeated for about 0.3 s; the ratio against the configuration's own shape is reported too.
A profile of one planned action shows where the time goes (matmul kernels, SiLU, copies). Planning time is one ``MPC.act`` on a cart-pole observation, the
whole call (sampling, imagined rollouts, rewards, CEM updates). Rate and planning are
measured in interleaved rounds so both see the same machine load; the ratio per round is
planning time / bound, reported as the median and the best over rounds, for 1 and 2 torch
threads.

Target: one planned action costs at most 1.5x its floating-point bound.

Usage: python benchmarks/pets_planning_compute.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from common import machine_summary, markdown_table, write_section

import robot_rl
from robot_rl.controllers import CEM, MPC
from robot_rl.evaluation import RandomPolicy
from robot_rl.models import (
    EnsembleTrainer,
    GaussianEnsemble,
    ModelEnv,
    Propagation,
    TransitionDataset,
    collect_episode,
)

MEMBERS, ELITES, HIDDEN = 7, 5, (200, 200, 200, 200)
POPULATION, CEM_ELITES, HORIZON, ITERATIONS, PARTICLES = 350, 35, 15, 5, 20
SHAPES = [  # (batch, rows, in, out) of the rate measurement
    (ELITES, POPULATION * PARTICLES // ELITES, 200, 200),
    (1, 7000, 200, 200),
    (5, 4096, 512, 512),
]


def flop_count(obs_dim: int, act_dim: int) -> tuple[int, int, int]:
    """(model evaluations, FLOPs per evaluation, FLOPs per action)."""
    sizes = [obs_dim + act_dim, *HIDDEN, 2 * obs_dim]
    per_eval = 2 * sum(a * b for a, b in itertools.pairwise(sizes))
    evaluations = ITERATIONS * POPULATION * PARTICLES * HORIZON
    return evaluations, per_eval, evaluations * per_eval


def matmul_rate(batch: int, rows: int, fan_in: int, fan_out: int, seconds: float = 0.3) -> float:
    """Sustained FLOP/s of ``baddbmm`` on one shape: the best of 3 timed runs of ~seconds/3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, rows, fan_in, generator=g)
    w = torch.randn(batch, fan_in, fan_out, generator=g)
    b = torch.randn(batch, 1, fan_out, generator=g)
    out = torch.empty(batch, rows, fan_out)
    flops = 2 * batch * rows * fan_in * fan_out
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < 0.05:
        torch.baddbmm(b, x, w, out=out)
        reps += 1
    reps = max(1, int(reps * seconds / 3 / 0.05))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            torch.baddbmm(b, x, w, out=out)
        best = min(best, (time.perf_counter() - t) / reps)
    return flops / best


def trained_model(env) -> GaussianEnsemble:
    """The reference ensemble, fitted briefly to random cart-pole data (realistic scales)."""
    data = TransitionDataset(5, 1)
    for seed in range(3):
        data.add_episode(collect_episode(env, RandomPolicy(env.action_space, seed), seed)[1])
    model = GaussianEnsemble(
        5, 1, MEMBERS, ELITES, HIDDEN, generator=torch.Generator().manual_seed(0)
    )
    EnsembleTrainer(model, max_epochs=5, generator=torch.Generator().manual_seed(0)).fit(
        data.batch()
    )
    return model


def time_breakdown(mpc: MPC, obs: np.ndarray) -> dict[str, float]:
    """Share of one ``MPC.act`` in the matmul kernels, the activations and the rest."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        mpc.act(obs)
        total = time.perf_counter() - start
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    matmul = self_us.get("aten::baddbmm", 0.0) + self_us.get("aten::bmm", 0.0)
    shares = {
        "matmul kernels": matmul,
        "SiLU": self_us.get("aten::silu_", 0.0),
        "copies (bias broadcast, inputs)": self_us.get("aten::copy_", 0.0),
    }
    shares = {k: v / 1e6 / total for k, v in shares.items()}
    shares["everything else"] = 1.0 - sum(shares.values())
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    env = robot_rl.make("robot_rl/CartpoleSwingup-v0")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    evaluations, per_eval, flops = flop_count(obs_dim, act_dim)
    derivation = (
        f"model evaluations per action = {ITERATIONS} iterations x {POPULATION} candidates x "
        f"{PARTICLES} particles x {HORIZON} steps = {evaluations:,}\n"
        f"FLOPs per evaluation = 2 x ({obs_dim + act_dim}x200 + 3x200x200 + 200x{2 * obs_dim}) "
        f"= {per_eval:,} (one elite per particle under TS1)\n"
        f"FLOPs per action = {flops:.4g}"
    )
    print(derivation)
    print(machine_summary())

    torch.set_num_threads(1)
    model = trained_model(env)
    obs, _ = env.reset(seed=0)
    results, breakdowns = {}, {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model_env = ModelEnv(
            model,
            env.task.reward,
            env.task.termination,
            particles=PARTICLES,
            propagation=Propagation.TS1,
            generator=torch.Generator().manual_seed(0),
        )
        lower, upper = torch.tensor([-1.0]), torch.tensor([1.0])
        cem = CEM(
            HORIZON,
            lower,
            upper,
            POPULATION,
            CEM_ELITES,
            ITERATIONS,
            generator=torch.Generator().manual_seed(0),
        )
        mpc = MPC(model_env, cem)
        mpc.act(obs)  # warm up: first-call allocations
        rows = []
        for _ in range(args.rounds):
            rates = [matmul_rate(*shape) for shape in SHAPES]
            start = time.perf_counter()
            mpc.act(obs)
            plan = time.perf_counter() - start
            rows.append((rates[0], max(rates), plan))
        own, best, plans = (np.array(c) for c in zip(*rows, strict=True))
        results[threads] = (own, best, plans)
        breakdowns[threads] = time_breakdown(mpc, obs)
        print(
            f"{threads} thread(s): rate at the config's shape {np.median(own) / 1e9:.0f} GFLOP/s, "
            f"best shape {np.median(best) / 1e9:.0f}; planning {np.median(plans):.3f} s/action; "
            f"ratio {np.median(plans * best / flops):.2f} (best-shape bound), "
            f"{np.median(plans * own / flops):.2f} (config-shape bound); {breakdowns[threads]}"
        )

    def ratio(threads: int, rate: int) -> np.ndarray:
        return results[threads][2] * results[threads][rate] / flops

    chosen = min(results, key=lambda t: np.median(ratio(t, 1)))
    table = markdown_table(
        [
            "torch threads",
            "matmul rate, GFLOP/s: config shape / best shape",
            "bound, s/action (best shape)",
            "planning, s/action (median / best)",
            "planning / bound, best-shape rate (median / best)",
            "planning / bound, config-shape rate (median)",
            "per-round ratios, best-shape rate",
        ],
        [
            [
                t,
                f"{np.median(own) / 1e9:.0f} / {np.median(best) / 1e9:.0f}",
                f"{flops / np.median(best):.3f}",
                f"{np.median(plans):.3f} / {plans.min():.3f}",
                f"{np.median(ratio(t, 1)):.2f} / {ratio(t, 1).min():.2f}",
                f"{np.median(ratio(t, 0)):.2f}",
                " ".join(f"{q:.2f}" for q in ratio(t, 1)),
            ]
            for t, (own, best, plans) in results.items()
        ],
    )
    shares = ", ".join(f"{k} {v:.0%}" for k, v in breakdowns[chosen].items())
    headline = np.median(ratio(chosen, 1))
    verdict = "meets" if headline <= 1.5 else "misses"
    body = (
        "## PETS planning compute (`benchmarks/pets_planning_compute.py`)\n\n"
        "Reference PETS configuration on the cart-pole: 7 members (5 elites), 4x200 SiLU, CEM "
        "population 350, 35 elites, horizon 15, 5 iterations, 20 particles, TS1. "
        f"{args.rounds} rounds, each measuring the matmul rates and then one `MPC.act`; a "
        "round's ratio divides its planning time by the bound from its own rates (the machine "
        "is shared, so both drift together), and the table gives the median over rounds. "
        "The bound uses the "
        "best `baddbmm` rate over the configuration's own hidden-layer shape "
        f"{SHAPES[0]} and larger ones ({', '.join(map(str, SHAPES[1:]))}); the last column uses "
        "the configuration's shape alone.\n\n"
        "```\n" + derivation + "\n```\n\n" + table + "\n\n"
        f"Where one planned action's time goes ({chosen} thread(s), torch profiler): {shares}.\n\n"
        f"Target: planning / bound <= 1.5. Median ratio with {chosen} thread(s) against the "
        f"best-shape bound: **{headline:.2f}** ({verdict} the target).\n\n"
        f"Machine: {machine_summary()}\n"
    )
    write_section("pets_planning_compute", body)


if __name__ == "__main__":
    main()
