"""Reset-free SAC against episodic SAC: deployed success per hard reset.

Task: the KUKA iiwa arm reaching a random target and returning (``robot_rl/ArmReach-v0``,
joint-velocity control). Episodic SAC resets the arm before every 100-step episode, and each
reset is a hard reset (a person on hardware). Reset-free SAC runs one non-episodic stream: the
forward agent reaches a new target each forward phase, the reset agent brings the arm back to
the home pose (the initial-state distribution, given as 20 demonstration states; reset
reward -d/σ with d the joint-space distance to the nearest one, reset when d ≤ σ), and only
a failed return (after ``--reset-attempts`` attempts) costs a hard reset; with
``--reset-attempts none`` a failed return calls no one and the forward agent goes on from
wherever the arm is (EARL-style).

Both are evaluated the same way every ``--eval-every`` steps: *deployed* success of the
forward policy on 10 fixed episodes from the initial distribution (success: flange within
3 cm of the target at the end). Reported: hard resets used until the deployed success first
reaches ``--success`` (0.8), and in total; plots of success against hard
resets and against env steps (``benchmarks/figures/reset_free_arm.png``).

    nice -n 5 python benchmarks/reset_free.py --seeds 0 1 --parallel 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_summary, markdown_table, write_section  # noqa: E402
from benchmarks.worker_pool import run_jobs  # noqa: E402

ENV_ID = "robot_rl/ArmReach-v0"
FIGURE = ROOT / "benchmarks" / "figures" / "reset_free_arm.png"
JOINTS = tuple(range(7))  # the reset reward looks at the joint angles


def worker(
    mode: str,
    seed: int,
    steps: int,
    eval_every: int,
    hidden: tuple[int, ...],
    attempts: int | None,
) -> dict:
    from robot_rl.agents import (
        SAC,
        Precision,
        ResetFreeConfig,
        ResetFreeEnv,
        ResetFreeTrainer,
        SACConfig,
        TrainConfig,
        Trainer,
        configure_torch,
    )
    from robot_rl.agents.envs import make_env

    configure_torch(1, Precision.BF16)
    config = SACConfig(hidden=hidden)
    train = TrainConfig(
        total_steps=steps, eval_every=eval_every, eval_episodes=10, log_every=eval_every, seed=seed
    )
    eval_env = make_env(ENV_ID)
    obs_dim, act_dim = eval_env.observation_space.shape[0], eval_env.action_space.shape[0]
    if mode == "episodic":
        trainer = Trainer(
            SAC(obs_dim, act_dim, config, seed), [make_env(ENV_ID)], train, ENV_ID, eval_env
        )
    else:
        demo_env = make_env(ENV_ID)
        demos = np.stack([demo_env.reset(seed=1_000_000 + i)[0] for i in range(20)])
        rf = ResetFreeConfig(
            forward_steps=100,
            reset_steps=100,
            reset_attempts=attempts,
            reset_dims=JOINTS,
            reset_radius=0.25,
            abort_after=5_000,
        )
        trainer = ResetFreeTrainer(
            SAC(obs_dim, act_dim, config, seed),
            SAC(obs_dim, act_dim, config, seed + 1),
            ResetFreeEnv(make_env(ENV_ID, max_episode_steps=None)),
            demos,
            train,
            rf,
            ENV_ID,
            eval_env,
        )
    trainer.train()
    # Logs are written at every evaluation; the first reset only places the robot.
    curve = [
        {
            "step": step,
            "hard_resets": int(v.get("reset_free/hard_resets", v["rollout/resets"] - 1)),
            "success": v["eval/success"],
            "return": v["eval/return"],
        }
        for step, v in trainer.history
        if "eval/success" in v
    ]
    extra = trainer.extra_metrics()
    return {
        "mode": mode,
        "seed": seed,
        "steps": steps,
        "reset_attempts": None if mode == "episodic" else attempts,
        "curve": curve,
        "early_aborts": extra.get("reset_free/early_aborts"),
        "reset_successes": extra.get("reset_free/reset_successes"),
        "continuing_average_reward": extra.get("continuing/average_reward"),
    }


def label(result: dict) -> str:
    if result["mode"] == "episodic":
        return "episodic"
    attempts = result["reset_attempts"]
    if attempts is None:
        return f"{result['mode']} (no hard reset on failed returns)"
    return f"{result['mode']} ({attempts} attempts)"


def parse_attempts(text: str) -> int | None:
    return None if text == "none" else int(text)


def attempts_flag(attempts: int | None) -> str:
    return "none" if attempts is None else str(attempts)


def command(args: argparse.Namespace) -> str:
    """The flags that shape the runs (not where they are stored)."""
    return (
        f"--steps {args.steps} --eval-every {args.eval_every} "
        f"--seeds {' '.join(map(str, args.seeds))} --hidden {' '.join(map(str, args.hidden))} "
        f"--reset-attempts {' '.join(map(attempts_flag, args.reset_attempts))} "
        f"--parallel {args.parallel}"
    )


def resets_to_reach(curve: list[dict], success: float) -> int | None:
    for point in curve:
        if point["success"] >= success:
            return point["hard_resets"]
    return None


def plot(results: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    modes = sorted({label(r) for r in results}, key=lambda m: (m != "episodic", m))
    colors = ("tab:red", "tab:blue", "tab:green", "tab:purple")
    for mode, color in zip(modes, colors, strict=False):
        for i, r in enumerate(rs for rs in results if label(rs) == mode):
            c = r["curve"]
            legend = mode if i == 0 else None
            axes[0].plot(
                [p["hard_resets"] for p in c],
                [p["success"] for p in c],
                color=color,
                marker=".",
                label=legend,
            )
            axes[1].plot(
                [p["step"] for p in c],
                [p["success"] for p in c],
                color=color,
                marker=".",
                label=legend,
            )
    axes[0].set_xscale("symlog", linthresh=10)
    axes[0].set_xlabel("hard resets (interventions)")
    axes[1].set_xlabel("env steps")
    for ax in axes:
        ax.set_ylabel("deployed success")
        ax.legend(fontsize=8)
    fig.suptitle("iiwa reach-and-return: deployed success of the forward policy", fontsize=10)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=90)
    plt.close(fig)


def report(results: list[dict], args: argparse.Namespace, load: tuple[str, str, str]) -> str:
    episodic = [r for r in results if r["mode"] == "episodic"]
    free = [r for r in results if r["mode"].startswith("reset-free")]
    target = args.success
    rows = []
    for r in episodic + free:
        final = r["curve"][-1]
        reach = resets_to_reach(r["curve"], target)
        rows.append(
            [
                label(r),
                r["seed"],
                r["steps"],
                f"{final['success']:.2f}",
                "not reached" if reach is None else reach,
                final["hard_resets"],
                "" if r.get("reset_successes") is None else r["reset_successes"],
                "" if r["early_aborts"] is None else r["early_aborts"],
                ""
                if r["continuing_average_reward"] is None
                else f"{r['continuing_average_reward']:.3f}",
            ]
        )
    plot(results)
    table = markdown_table(
        [
            "agent",
            "seed",
            "env steps",
            "final deployed success",
            f"hard resets to reach success {target:.2f}",
            "hard resets in total",
            "returns by the reset agent",
            "early aborts",
            "continuing avg reward",
        ],
        rows,
    )
    reach_e = [resets_to_reach(r["curve"], target) for r in episodic]
    lines = []
    for r in free:
        reach = resets_to_reach(r["curve"], target)
        if reach is None or None in reach_e:
            lines.append(f"- {label(r)} (seed {r['seed']}): did not reach success {target:.2f}.")
        else:
            mean, best = np.mean(reach_e), min(reach_e)
            ratios = "" if reach == 0 else f": {mean / reach:.1f}x and {best / reach:.1f}x fewer"
            lines.append(
                f"- {label(r)} (seed {r['seed']}): {reach} hard resets to reach success "
                f"{target:.2f}, against the episodic agent's {mean:.0f} (mean over its seeds) "
                f"and {best} (its best seed){ratios}."
            )
    verdict = "\n".join(lines)
    return f"""## Reset-free SAC against episodic SAC (`benchmarks/reset_free.py`)

Reach-and-return with the iiwa arm (`{ENV_ID}`, joint-velocity control). The arm, not the
quadruped: SAC needs far more steps to learn to walk (and a reset agent to get up) than two
cores shared with other jobs allow in this session; the arm's reach is learnable in tens of
thousands of steps, and its return-to-home is a true reset task. Both agents use
{"x".join(map(str, args.hidden))} networks, one gradient step per env step (reset-free: one
for each of its two agents), bf16 matrix products. Deployed success: 10 fixed evaluation
episodes from the initial distribution, success when the flange ends within 3 cm of the
target. Success level compared: {target:.2f} (10 evaluation episodes, so steps of 0.1).
Reset-free: forward phases of 100 steps, reset attempts of up to 100 steps, a hard reset after
N failed attempts in a row ("N attempts"; "no hard reset on failed returns": the next forward
phase starts wherever the arm is, as in EARL); reset reward -d/σ with d the distance of the 7
joint angles to the nearest of 20 demonstration start states and σ = 0.25 rad; reset when
d ≤ σ. "Returns by the reset agent": times it brought the arm home itself (no person).

{table}

{verdict}

![reset-free](benchmarks/figures/reset_free_arm.png)

Machine: {load[0]} (start); {load[1]} (end). {load[2]}
Command: `nice -n 5 python benchmarks/reset_free.py {command(args)}`.
"""


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, seed, steps, every, hidden, attempts = sys.argv[2:8]
        sizes = tuple(int(h) for h in hidden.split(","))
        result = worker(mode, int(seed), int(steps), int(every), sizes, parse_attempts(attempts))
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--success", type=float, default=0.8, help="deployed success level compared"
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/robot_rl_bench_reset_free.jsonl"))
    parser.add_argument(
        "--reset-attempts",
        type=parse_attempts,
        nargs="+",
        default=[2],
        help="failed returns before a hard reset, one reset-free run each ('none': never)",
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--report-only", action="store_true", help="report the runs in --out, run none"
    )
    parser.add_argument("--load-note", default="", help="what the load was while the runs ran")
    args = parser.parse_args()
    start = machine_summary()
    hidden = ",".join(map(str, args.hidden))
    jobs = [
        job
        for s in args.seeds
        for job in (
            {"mode": "episodic", "seed": s, "reset_attempts": None},
            *({"mode": "reset-free", "seed": s, "reset_attempts": a} for a in args.reset_attempts),
        )
    ]
    if args.report_only:
        jobs = []
    results = run_jobs(
        jobs,
        argv=lambda j: [
            __file__,
            "--worker",
            j["mode"],
            str(j["seed"]),
            str(args.steps),
            str(args.eval_every),
            hidden,
            attempts_flag(j["reset_attempts"]),
        ],
        out=args.out,
        parallel=args.parallel,
        describe=lambda r: f"{label(r):>10} seed {r['seed']}: {r['curve'][-1]}",
    )
    text = report(results, args, (start, machine_summary(), args.load_note))
    print(text)
    if not args.no_write:
        write_section("reset-free", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
