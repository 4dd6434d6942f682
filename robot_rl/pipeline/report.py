"""The main job's report: a self-contained Markdown file with PNG plots in ``<run>/report/``,
and the summary table printed at the end of a run.

Everything comes from the stage summaries in the manifest and the deployment records, so a
report can be rebuilt from a run folder alone (``robot-rl run --resume RUN`` after the last
stage rewrites it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from robot_rl.hardware import read_run
from robot_rl.pipeline.rundir import RunDir

CONTROLLER_LABELS = {
    "learned": "PETS MPC (learned ensemble)",
    "planner-nominal": "iLQR MPC (analytic model, nominal parameters)",
    "planner-identified": "iLQR MPC (analytic model, identified parameters)",
}


def _deployments(run: RunDir) -> dict[str, dict[str, Any]]:
    """Controller name -> {sim, robot} summaries, the re-planned one included."""
    out = dict(run.summary("deploy")["controllers"])
    identify = run.summary("identify")
    if identify.get("replanned"):
        out["planner-identified"] = identify["replanned"]
    return out


def _fmt(value: float, digits: int = 2) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _g(value: float | None) -> str:
    """4 significant digits, or "unknown" (a robot whose true parameters are not known)."""
    return "unknown" if value is None else f"{value:.4g}"


def _error(identified: float, true: float | None) -> str:
    """Relative error in %, absolute where the true value is 0, or n/a."""
    if true is None:
        return "n/a"
    if true == 0:
        return f"{abs(identified):.2g} (absolute)"
    return f"{100 * abs(identified - true) / abs(true):.1f} %"


def _rate(flags: list[bool]) -> str:
    return f"{np.mean(flags):.0%}" if flags else "n/a"


def _learned_in(learn: dict[str, Any]) -> str:
    if learn["agent"] == "sac":
        success = learn["final_success"]
        last = "" if success is None else f", last evaluation success {success:.0%}"
        return f"{learn['env_steps']} env steps of SAC ({learn['episodes']} episodes{last})"
    solved = learn["episodes_to_success"]
    return f"{learn['episodes']} episodes of PETS ({'solved at ' + str(solved) if solved else 'not solved'})"


def summary_rows(run: RunDir) -> list[tuple[str, str]]:
    """The headline figures, as (label, value) rows."""
    learn, evaluate = run.summary("learn"), run.summary("evaluate")
    rows = [
        ("learned in", _learned_in(learn)),
        ("sim evaluation", f"return {evaluate['mean_return']:.1f}, success {evaluate['success_rate']:.0%} "
                           f"over {len(evaluate['returns'])} randomized draws"),
    ]  # fmt: skip
    for name, result in _deployments(run).items():
        sim, robot = result["sim"], result["robot"]
        rows.append((
            f"{name}: sim / robot",
            f"return {_fmt(sim['mean_return'], 1)} / {_fmt(robot['mean_return'], 1)}, "
            f"success {_rate(sim['success'])} / {_rate(robot['success'])}, robot run {robot['termination']}",
        ))  # fmt: skip
    identify = run.summary("identify")
    for p in identify.get("parameters", []):
        rows.append(
            (
                f"identified {p['name']}",
                f"{p['identified']:.4g} (true {_g(p['true'])}, nominal {p['nominal']:.4g})",
            )
        )
    return rows


def summary_table(run: RunDir) -> str:
    rows = summary_rows(run)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


# -- plots ---------------------------------------------------------------------------------------
def _label(ax: plt.Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _learning_curve(run: RunDir, path: Path) -> None:
    learn = run.summary("learn")
    curve = learn["curve"]
    x_key = "episode" if learn["agent"] == "pets" else "env_steps"
    x = [c[x_key] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(x, [c["return"] for c in curve], "o-", label="return")
    wins = [c for c in curve if c["success"]]
    ax.plot([c[x_key] for c in wins], [c["return"] for c in wins], "*", ms=14, color="tab:green",
            label="success")  # fmt: skip
    ax.set_xlabel(x_key.replace("_", " "))
    ax.set_ylabel("return")
    ax.legend(loc="upper left", fontsize=8)
    if learn["agent"] == "pets":
        twin = ax.twinx()
        twin.plot(x, [h["holdout_mse"] for h in learn["history"]], "s--", color="tab:gray",
                  alpha=0.6, label="model holdout MSE")  # fmt: skip
        twin.set_ylabel("holdout MSE (normalised)")
        twin.legend(loc="lower right", fontsize=8)
        ax.set_title("Learning curve (PETS episodes)")
    else:
        ax.set_title("Learning curve (SAC, deterministic policy on fixed seeds)")
    _save(fig, path)


def _model_error(run: RunDir, path: Path) -> None:
    error = run.summary("evaluate")["model_error"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(error["horizons"], error["rmse"], "o-", label="learned ensemble (mean)")
    ax.plot(error["horizons"], error["no_change_rmse"], "--", color="tab:gray", label="no change")
    _label(
        ax,
        "prediction horizon (control steps)",
        "RMSE (per-dimension data std)",
        "Open-loop model error on an unseen episode",
    )
    _save(fig, path)


def _planning_time(run: RunDir, path: Path) -> None:
    learn = run.summary("learn")
    history = [h for h in learn.get("history", []) if h["planned"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(
        [h["episode"] + 1 for h in history],
        [h["plan_ms_mean"] for h in history],
        "o-",
        label="mean",
    )
    left.plot(
        [h["episode"] + 1 for h in history], [h["plan_ms_max"] for h in history], "^--", label="max"
    )
    _label(
        left,
        "episode",
        "ms per planned action",
        "Planning time while learning" if history else "(SAC: no planning)",
    )
    for name, result in _deployments(run).items():
        record = result["robot"].get("record")
        if record and Path(record).is_file():
            compute = 1e3 * read_run(record).cycles["compute"]
            right.hist(compute, bins=40, alpha=0.6, label=name)
    _label(
        right,
        "ms of work per control cycle on the robot",
        "cycles",
        "Per-cycle compute on the robot",
    )
    _save(fig, path)


def _returns(run: RunDir, path: Path) -> None:
    deployments = _deployments(run)
    names = list(deployments)
    x = np.arange(len(names))
    sim = [deployments[n]["sim"]["mean_return"] for n in names]
    robot = [deployments[n]["robot"]["mean_return"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(x - 0.2, sim, 0.4, label="simulation (MuJoCo, nominal)")
    ax.bar(x + 0.2, robot, 0.4, label="robot (PyBullet, reality gap)")
    ax.set_xticks(x, [n.replace("planner-", "iLQR ") for n in names])
    ax.set_ylabel("episode return")
    ax.set_ylim(top=1.3 * max([*sim, *robot, 1.0]))  # room for the legend above the bars
    ax.set_title("Simulation vs robot, before and after identification")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    _save(fig, path)


def _loop_timing(run: RunDir, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, result in _deployments(run).items():
        record = result["robot"].get("record")
        if record and Path(record).is_file():
            lateness = np.sort(1e3 * read_run(record).cycles["lateness"])
            ax.plot(lateness, np.linspace(0, 1, len(lateness)), label=name)
    ax.set_xscale("symlog", linthresh=0.1)
    _label(
        ax,
        "cycle start after its deadline (ms)",
        "fraction of cycles",
        "Control-loop jitter on the robot",
    )
    _save(fig, path)


# -- the report ----------------------------------------------------------------------------------
def write_report(run: RunDir) -> Path:
    """Write ``report.md`` and its plots into ``<run>/report/``; returns the Markdown file."""
    folder = run.stage_dir("report")
    plots = {
        "learning_curve.png": _learning_curve,
        "model_error.png": _model_error,
        "planning_time.png": _planning_time,
        "returns.png": _returns,
        "loop_timing.png": _loop_timing,
    }
    if run.summary("evaluate")["model_error"] is None:
        del plots["model_error.png"]  # a model-free learner has no model to score
    for name, draw in plots.items():
        draw(run, folder / name)
    config = run.config
    learn, evaluate = run.summary("learn"), run.summary("evaluate")
    deploy, identify = run.summary("deploy"), run.summary("identify")
    deployments = _deployments(run)
    lines = [
        f"# robot_rl run `{run.path.name}`",
        "",
        f"{config['env']}: learned on {config['engine']} with domain randomization "
        f"{'on' if config['randomize'] else 'off'}, deployed to a {deploy['engine']} robot "
        f"({deploy['backend']} backend) with a reality gap, seed {config['seed']}.",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        *[f"| {label} | {value} |" for label, value in summary_rows(run)],
        "",
        "## Learning",
        "",
        f"Learned in {_learned_in(learn)}.",
        "",
        "![learning curve](learning_curve.png)",
        "",
        *(["![model error by horizon](model_error.png)", ""] if "model_error.png" in plots else []),
        "![planning time](planning_time.png)",
        "",
        "## Evaluation in simulation",
        "",
        f"{len(evaluate['returns'])} episodes, each with its own draw of the domain parameters, "
        f"on {evaluate['workers']} worker(s): mean return **{evaluate['mean_return']:.1f}**, "
        f"success **{evaluate['success_rate']:.0%}**.",
        "",
        "| episode | return | cost | success | link masses (kg) |",
        "|---|---|---|---|---|",
        *[f"| {i} | {r:.1f} | {c:.0f} | {'yes' if s else 'no'} | {', '.join(f'{m:.3f}' for m in masses)} |"
          for i, (r, c, s, masses) in enumerate(zip(evaluate["returns"], evaluate["costs"],
                                                     evaluate["successes"], evaluate["link_masses"], strict=True))],
        "",
        "## Simulation vs robot",
        "",
        "Each controller ran in MuJoCo at the nominal parameters and on the robot through the hardware "
        "layer (safety supervisor on, every cycle recorded).",
        "",
        "| controller | sim return | robot return | sim success | robot success | robot run |",
        "|---|---|---|---|---|---|",
        *[f"| {CONTROLLER_LABELS.get(n, n)} | {_fmt(d['sim']['mean_return'], 1)} | {_fmt(d['robot']['mean_return'], 1)} | "
          f"{_rate(d['sim']['success'])} | {_rate(d['robot']['success'])} | {d['robot']['termination']} |"
          for n, d in deployments.items()],
        "",
        "![returns](returns.png)",
        "",
        "## System identification",
        "",
    ]  # fmt: skip
    if "parameters" in identify:
        lines += [
            f"Fitted to {identify['segments']} segments of the robot's records "
            f"({identify['skipped_segments']} left out at joint limits); normalised residual RMS "
            f"{identify['initial_rms']:.3g} → {identify['final_rms']:.3g}.",
            "",
            "| parameter | nominal (simulator) | identified | true (robot) | error |",
            "|---|---|---|---|---|",
            *[f"| {p['name']} | {p['nominal']:.4g} | {p['identified']:.4g} | {_g(p['true'])} | "
              f"{_error(p['identified'], p['true'])} |" for p in identify["parameters"]],
        ]  # fmt: skip
    else:
        lines.append(identify.get("skipped", "not run"))
    lines += [
        "",
        "## Safety events and loop timing on the robot",
        "",
        "| controller | cycles | lost | overruns | lateness p50 / p99 (ms) | compute p50 / p99 (ms) | safety events |",
        "|---|---|---|---|---|---|---|",
        *[f"| {n} | {d['robot']['cycles']} | {d['robot']['lost_cycles']} | {d['robot']['overruns']} | "
          f"{d['robot']['lateness_p50_ms']:.2f} / {d['robot']['lateness_p99_ms']:.2f} | "
          f"{d['robot']['compute_p50_ms']:.1f} / {d['robot']['compute_p99_ms']:.1f} | "
          f"{', '.join(f'{k} {v}' for k, v in sorted(d['robot']['events'].items())) or 'none'} |"
          for n, d in deployments.items()],
        "",
        "![loop timing](loop_timing.png)",
        "",
    ]  # fmt: skip
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
