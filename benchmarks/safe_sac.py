"""Safe SAC against unconstrained SAC: return, episode cost and constraint violations.

For each task, SAC and safe SAC (PID Lagrangian) train with the same networks and seeds;
every few thousand steps the deterministic policy is evaluated on the same 10 episodes, and
after training on 50 (``FINAL_EPISODES``). Reported per task: final evaluation return and
episode cost (against the limit), the constraint violations during training (steps with a
positive cost), and plots of return, cost and the multiplier over training
(``benchmarks/figures/safe_sac_*.png``). Safe SAC's dual gains are each task's own
(``Task.dual``) unless ``--dual`` gives others; every setting with runs in ``--out`` is
reported against SAC at the same budget.

    nice -n 5 python benchmarks/safe_sac.py                   # cart-pole and quadruped
    nice -n 5 python benchmarks/safe_sac.py --tasks cartpole  # one task
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_summary, markdown_table, write_section  # noqa: E402
from benchmarks.worker_pool import run_jobs  # noqa: E402
from robot_rl.agents.safe_sac import CostEstimate, SafeSACConfig  # noqa: E402

FIGURES = ROOT / "benchmarks" / "figures"
FINAL_EPISODES = 50
"""Evaluation episodes of the trained policy; an episode that leaves the band costs tens, so
the 10 of the curves leave the final mean cost uncertain by several units."""


@dataclass(frozen=True)
class Task:
    name: str
    env_id: str
    env_kwargs: dict
    cost_limit: float
    steps: int
    seeds: tuple[int, ...]
    eval_every: int
    what: str
    dual: tuple[float, float, float, float]
    """K_p, K_i, K_d of safe SAC's PID Lagrangian and the error clip in units of the cost limit
    (0: none), as measured best on this task (BENCHMARKS.md)."""


TASKS = {
    "cartpole": Task(
        "cartpole",
        "robot_rl/CartpoleSwingup-v0",
        {"track_band": 0.5},
        cost_limit=5.0,
        steps=60_000,  # at 40k and 50k the cost had not settled within the limit
        seeds=(0, 1, 2),
        eval_every=3_000,
        what="cart-pole swing-up, cost 1 per step with |x| > 0.5 m, limit 5 per 100-step episode",
        dual=(0.02, 0.0015, 0.0, 1.0),
    ),
    "quadruped": Task(
        "quadruped",
        "robot_rl/QuadrupedWalk-v0",
        {"terminate_when_fallen": False},
        cost_limit=10.0,
        steps=60_000,  # at 30k and 40k the cost was over the limit, violations < 50 % fewer
        seeds=(0, 1, 2),
        eval_every=5_000,
        what=(
            "A1 walking, cost 1 per step with |roll| or |pitch| > 0.4 rad, limit 10 per 500-step "
            "episode; a fall does not end the episode, so a fallen robot costs every step left"
        ),
        dual=(0.02, 0.0015, 0.0, 5.0),
    ),
}


def worker(
    algo: str,
    task_name: str,
    seed: int,
    hidden: tuple[int, ...],
    steps: int,
    dual: tuple[float, ...],
    estimate: str,
    aim: float,
) -> dict:
    from robot_rl.agents import (
        SAC,
        CostEstimate,
        LagrangeUpdate,
        Precision,
        SACConfig,
        SafeSAC,
        SafeSACConfig,
        TrainConfig,
        Trainer,
        configure_torch,
    )
    from robot_rl.agents.envs import make_env
    from robot_rl.evaluation import evaluate

    task = TASKS[task_name]
    eval_every = min(task.eval_every, steps)
    configure_torch(1, Precision.BF16)
    env, eval_env = (
        make_env(task.env_id, **task.env_kwargs),
        make_env(task.env_id, **task.env_kwargs),
    )
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if algo == "sac":
        agent = SAC(obs_dim, act_dim, SACConfig(hidden=hidden), seed=seed)
    else:
        kp, ki, kd, clip = dual
        config = SafeSACConfig(
            hidden=hidden,
            cost_limit=aim * task.cost_limit,
            lagrange=LagrangeUpdate.PID,
            pid_kp=kp,
            pid_ki=ki,
            pid_kd=kd,
            error_clip=clip * task.cost_limit if clip else None,
            cost_estimate=CostEstimate(estimate),
        )
        agent = SafeSAC(obs_dim, act_dim, config, seed=seed)
    train = TrainConfig(
        total_steps=steps,
        eval_every=eval_every,
        eval_episodes=10,
        log_every=eval_every,
        seed=seed,
    )
    trainer = Trainer(agent, [env], train, task.env_id, eval_env=eval_env).train()
    keys = ("eval/return", "eval/cost", "safety/violations", "safety/multiplier", "rollout/cost")
    curves = [{"step": step, **{k: v[k] for k in keys if k in v}} for step, v in trainer.history]
    final = evaluate(eval_env, agent.policy(), FINAL_EPISODES, seed=train.eval_seed)
    return {
        "algo": algo,
        "task": task_name,
        "seed": seed,
        "steps": steps,
        "return": final.mean_return,
        "cost": final.mean_cost,
        "violations": trainer.counters.violations,
        "dual": list(dual) if algo == "safe-sac" else None,
        "estimate": estimate if algo == "safe-sac" else None,
        "aim": aim if algo == "safe-sac" else None,
        "final_episodes": FINAL_EPISODES,
        "curves": curves,
    }


def variant(result: dict) -> str:
    """The agent and, for safe SAC, its dual setting, as a row label."""
    if result["algo"] == "sac":
        return "sac"
    kp, ki, kd, clip = result["dual"]
    bound = f", clip ±{clip:g} limit" if clip else ""
    aim = result.get("aim", 1.0)
    aiming = f", aims at {aim:.0%} of the limit" if aim != 1.0 else ""
    return f"safe-sac, Q_c {result['estimate']} (K_p {kp:g}, K_i {ki:g}, K_d {kd:g}{bound}{aiming})"


def plot(task: Task, results: list[dict]) -> Path:
    """Curves of every variant in ``results`` (one budget), mean and range over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    labels = sorted({variant(r) for r in results}, key=lambda v: (v != "sac", v))
    colors = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")
    for label, color in zip(labels, colors, strict=False):
        runs = [r for r in results if variant(r) == label]
        steps = [c["step"] for c in runs[0]["curves"]]
        for ax, key in zip(
            axes,
            ("eval/return", "eval/cost", "safety/violations", "safety/multiplier"),
            strict=True,
        ):
            values = [[c.get(key, np.nan) for c in r["curves"]] for r in runs]
            if np.all(np.isnan(values)):
                continue
            mean = np.nanmean(values, axis=0)
            ax.plot(steps, mean, color=color, label=label, marker=".")
            if len(runs) > 1:
                ax.fill_between(
                    steps, np.nanmin(values, 0), np.nanmax(values, 0), color=color, alpha=0.2
                )
    titles = (
        "evaluation return",
        "evaluation episode cost",
        "violations in training (cumulative)",
        "Lagrange multiplier λ",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env steps")
    axes[1].axhline(task.cost_limit, color="k", linestyle="--", label="limit")
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(labels), fontsize=8
    )
    fig.suptitle(task.what, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"safe_sac_{task.name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


LATE_FRACTION = 0.3
"""The last part of training whose periodic evaluations ``late_cost`` averages."""


def late_cost(result: dict) -> float:
    """Mean evaluation episode cost over the last ``LATE_FRACTION`` of training.

    The deterministic policy's cost swings from one evaluation to the next (on the cart-pole
    by tens within 3000 steps), so the final evaluation alone says little about where training
    has settled; this averages the periodic evaluations (10 episodes each) of that stretch.
    """
    start = (1.0 - LATE_FRACTION) * result["steps"]
    costs = [c["eval/cost"] for c in result["curves"] if c["step"] >= start and "eval/cost" in c]
    return float(np.mean(costs)) if costs else float("nan")


def report(
    results: list[dict], tasks: list[Task], hidden: tuple[int, ...], load: tuple[str, str, str]
) -> str:
    """Rows per task, budget and variant; safe SAC is compared with SAC at the same budget."""
    rows, figures, verdicts = [], [], []
    for task in tasks:
        budgets = sorted({r["steps"] for r in results if r["task"] == task.name})
        for steps in budgets:
            runs = [r for r in results if r["task"] == task.name and r["steps"] == steps]
            labels = sorted({variant(r) for r in runs}, key=lambda v: (v != "sac", v))
            summary = {
                label: {
                    k: np.array([r[k] for r in runs if variant(r) == label], dtype=float)
                    for k in ("return", "cost", "violations")
                }
                | {"late": np.array([late_cost(r) for r in runs if variant(r) == label])}
                for label in labels
            }
            sac = summary.get("sac")
            for label, m in summary.items():
                versus = ""
                if sac is not None and label != "sac":
                    ratio = m["return"].mean() / sac["return"].mean()
                    fewer = 1.0 - m["violations"].mean() / max(sac["violations"].mean(), 1e-9)
                    within = m["cost"].mean() <= task.cost_limit
                    settled = m["late"].mean() <= task.cost_limit
                    versus = f"{ratio:.0%} of SAC's return, {fewer:.0%} fewer violations"
                    met = within and settled and ratio >= 0.8 and fewer >= 0.5
                    verdicts.append(
                        f"- {task.name}, {steps} steps, {label}: final cost "
                        f"{'within' if within else 'over'} the limit, late-training cost "
                        f"{'within' if settled else 'over'} it, {versus}: target "
                        f"{'met' if met else 'not met'}."
                    )
                rows.append(
                    [
                        task.name,
                        label,
                        len(m["return"]),
                        steps,
                        f"{m['return'].mean():.1f} ± {m['return'].std():.1f}",
                        f"{m['cost'].mean():.1f} (limit {task.cost_limit:g})",
                        f"{m['late'].mean():.1f}",
                        f"{m['violations'].mean():.0f} ± {m['violations'].std():.0f}",
                        versus,
                    ]
                )
        if budgets:
            figures.append(f"![{task.name}](benchmarks/figures/safe_sac_{task.name}.png)")
            longest = [r for r in results if r["task"] == task.name and r["steps"] == budgets[-1]]
            plot(task, longest)
    table = markdown_table(
        [
            "task",
            "agent",
            "seeds",
            "env steps",
            "final eval return",
            "final eval episode cost",
            f"eval cost, last {LATE_FRACTION:.0%} of training",
            "violations in training",
            "safe vs SAC",
        ],
        rows,
    )
    tasks_text = "\n".join(f"- **{t.name}**: {t.what}." for t in tasks)
    return f"""## Safe SAC against SAC (`benchmarks/safe_sac.py`)

{tasks_text}

Both agents: {"x".join(map(str, hidden))} networks, batch 256, one gradient step per env step,
bf16 matrix products, the same seeds. Safe SAC uses the PID Lagrangian on the measured
training episode costs, with the gains in its row (and, where given, the violation one update
acts on clipped at ± that multiple of the limit; its multiplier aims at the limit itself
unless the row names a fraction of it, a safety margin), and combines its two cost critics by their
maximum (pessimistic, the library's default) or their mean. Final return and cost are the mean
of {FINAL_EPISODES} deterministic evaluation episodes after training (mean ± std over seeds); the
deterministic policy's cost swings by tens between evaluations 3000 steps apart, so the
column after it averages the periodic 10-episode evaluations of the last {LATE_FRACTION:.0%} of
training. Violations are training steps with a positive cost. Safe SAC is compared with SAC
at the same budget; the target asks for a final cost within the limit, >= 80 % of SAC's
return and >= 50 % fewer violations, and a verdict here also asks the late-training cost to be
within the limit (a final evaluation that happens to catch a safe snapshot is not counted).
The figures show the longest budget of each task.

{table}

{chr(10).join(verdicts)}

{chr(10).join(figures)}

Machine: {load[0]} (start); {load[1]} (end). {load[2]}
Command: `nice -n 5 python benchmarks/safe_sac.py`.
"""


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        algo, task, seed, hidden, steps, dual, estimate, aim = sys.argv[2:10]
        hidden_sizes = tuple(int(h) for h in hidden.split(","))
        dual_setting = () if dual == "none" else tuple(float(g) for g in dual.split(","))
        result = worker(
            algo,
            task,
            int(seed),
            hidden_sizes,
            int(steps),
            dual_setting,
            estimate,
            1.0 if aim == "none" else float(aim),
        )
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--steps", type=int, default=0, help="override every task's env steps")
    parser.add_argument("--seeds", type=int, nargs="+", help="override every task's seeds")
    parser.add_argument(
        "--dual",
        type=float,
        nargs=4,
        metavar=("KP", "KI", "KD", "CLIP"),
        help="safe SAC's PID Lagrangian gains and error clip (in units of the cost limit); "
        "default: each task's own",
    )
    parser.add_argument(
        "--cost-estimate",
        choices=[e.value for e in CostEstimate],
        default=SafeSACConfig().cost_estimate.value,
        help="how safe SAC combines its cost critics",
    )
    parser.add_argument(
        "--aim",
        type=float,
        default=1.0,
        help="the fraction of the task's cost limit safe SAC's multiplier aims at (below 1: a "
        "safety margin); the verdict still judges against the limit",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/robot_rl_bench_safe_sac_runs.jsonl"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--report-only", action="store_true", help="report the runs in --out, run none"
    )
    parser.add_argument("--load-note", default="", help="what the load was while the runs ran")
    args = parser.parse_args()
    start = machine_summary()
    tasks = [TASKS[name] for name in args.tasks]
    hidden = ",".join(map(str, args.hidden))
    jobs = [
        {
            "algo": algo,
            "task": t.name,
            "seed": seed,
            "steps": args.steps or t.steps,
            "dual": (args.dual or list(t.dual)) if algo == "safe-sac" else None,
            "estimate": args.cost_estimate if algo == "safe-sac" else None,
            "aim": args.aim if algo == "safe-sac" else None,
        }
        for t in tasks
        for seed in (args.seeds or t.seeds)
        for algo in ("sac", "safe-sac")
    ]
    if args.report_only:
        jobs = []
    results = run_jobs(
        jobs,
        argv=lambda j: [
            __file__,
            "--worker",
            j["algo"],
            j["task"],
            str(j["seed"]),
            hidden,
            str(j["steps"]),
            ",".join(map(str, j["dual"])) if j["dual"] else "none",
            j["estimate"] or "none",
            str(j["aim"]) if j["aim"] else "none",
        ],
        out=args.out,
        parallel=args.parallel,
        describe=lambda r: (
            f"{r['algo']:>8} {r['task']:<10} seed {r['seed']}: return {r['return']:.1f}, "
            f"cost {r['cost']:.1f}, violations {r['violations']}"
        ),
    )
    text = report(results, tasks, tuple(args.hidden), (start, machine_summary(), args.load_note))
    print(text)
    if not args.no_write:
        write_section("safe-sac", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
