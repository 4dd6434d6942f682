"""Summaries and plots of run records (``robot-rl runs show|plot``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from robot_rl.hardware.events import EventKind, EventSource
from robot_rl.hardware.record import RunLog, episode_summary

SUPERVISOR_KINDS = frozenset(
    {
        EventKind.COMMAND_RANGE,
        EventKind.POSITION_LIMIT,
        EventKind.VELOCITY_LIMIT,
        EventKind.EFFORT_LIMIT,
        EventKind.SLEW_LIMIT,
        EventKind.NON_FINITE,
        EventKind.BAD_SHAPE,
        EventKind.MISSED_COMMAND,
        EventKind.WATCHDOG,
        EventKind.ESTOP,
        EventKind.STATE_LIMIT,
    }
)
"""Event kinds that mean the supervisor changed or replaced a command."""


def _ms(values: np.ndarray, q: float) -> str:
    values = values[np.isfinite(values)]
    return f"{np.percentile(values, q) * 1e3:.3f}" if len(values) else "-"


def summarize(log: RunLog) -> str:
    """A human-readable summary of a run record."""
    a, c, spec = log.attrs, log.cycles, log.spec
    lines = [
        f"run: {log.path}"
        + ("" if log.complete else "  (INCOMPLETE: cut short by a crash or still running)"),
        f"robot: {spec.name}, {spec.n_act} actuators in {spec.mode.value} control, "
        f"{spec.rate:g} Hz; backend {a.get('backend', '?')}"
        + (f" ({a['engine']})" if "engine" in a else "")
        + (f" at {a['endpoint']}" if "endpoint" in a else ""),
        f"policy: {a.get('policy_source', a.get('policy', '?'))}; task: {a.get('task') or '-'}; "
        f"created {a.get('created', '?')}",
        f"termination: {log.termination}; cycles: {log.n_cycles}; lost cycles: "
        f"{log.lost_cycles()}; overruns: {int(c['overrun'].sum()) if log.n_cycles else 0}",
    ]
    if log.n_cycles:
        lines.append(
            "timing (ms): lateness p50 {} p99 {} max {}; compute p50 {} p99 {} max {}".format(
                _ms(c["lateness"], 50),
                _ms(c["lateness"], 99),
                _ms(c["lateness"], 100),
                _ms(c["compute"], 50),
                _ms(c["compute"], 99),
                _ms(c["compute"], 100),
            )
        )
        if np.isfinite(c["round_trip"]).any():
            lines.append(
                f"round trip (ms): p50 {_ms(c['round_trip'], 50)} p99 {_ms(c['round_trip'], 99)} "
                f"max {_ms(c['round_trip'], 100)}"
            )
        changed = np.abs(np.nan_to_num(c["desired"] - c["applied"])).max(axis=1) > 0
        lines.append(
            f"supervised commands changed in {int(changed.sum())} of {log.n_cycles} cycles"
        )
    episodes = episode_summary(log)
    if episodes:
        lines.append("episodes:")
        lines.append("  episode  cycles      return      cost  success  termination")
        for e in episodes:
            lines.append(
                f"  {e['episode']:>7}  {e['cycles']:>6}  {e['return']:>10.3f}  {e['cost']:>8.2f}"
                f"  {e['success']!s:>7}  {e['termination']}"
            )
        returns = np.array([e["return"] for e in episodes])
        lines.append(
            f"  mean return {returns.mean():.3f} ± {returns.std():.3f}, success "
            f"{np.mean([e['success'] for e in episodes]):.0%}"
        )
    counts: dict[str, int] = {}
    for e in log.events:
        key = e.kind.name + (" (robot)" if e.source is EventSource.ROBOT else "")
        counts[key] = counts.get(key, 0) + 1
    if counts:
        lines.append("events: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)


def plot_run(log: RunLog, out: str | Path) -> list[Path]:
    """Write PNG plots of a run to the folder ``out``: commands (desired vs applied, with
    interventions), joints (positions with limits, velocities), timing, and rewards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c, spec = log.cycles, log.spec
    t = c["cycle"] / spec.rate  # robot time at the control rate, continuous across episodes
    written = []

    def save(fig: matplotlib.figure.Figure, name: str) -> None:
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    names = spec.actuated_names
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.2 * len(names) + 0.5), squeeze=False)
    supervisor_cycles = {e.cycle for e in log.events if e.kind in SUPERVISOR_KINDS}
    marks = np.isin(c["cycle"], sorted(supervisor_cycles)) if log.n_cycles else np.zeros(0, bool)
    for j, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        ax.plot(t, c["desired"][:, j], "--", lw=1, label="desired")
        ax.plot(t, c["applied"][:, j], lw=1, label="applied")
        if np.isfinite(c["robot_applied"][:, j]).any():
            ax.plot(t, c["robot_applied"][:, j], ":", lw=1, label="in force when sampled")
        if marks.any():
            ax.plot(t[marks], c["applied"][marks, j], "r.", ms=3, label="intervention")
        ax.axhline(spec.command_low[j], color="k", lw=0.5)
        ax.axhline(spec.command_high[j], color="k", lw=0.5)
        ax.set_ylabel(f"{name}\n({spec.mode.value})")
    axes[0, 0].legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("time (s)")
    save(fig, "commands")

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for i, name in enumerate(spec.joint_names):
        (line,) = axes[0].plot(t, c["position"][:, i], lw=1, label=name)
        for limit in (spec.position_low[i], spec.position_high[i]):
            if math.isfinite(limit):
                axes[0].axhline(limit, color=line.get_color(), lw=0.5, ls="--")
        axes[1].plot(t, c["velocity"][:, i], lw=1)
    axes[0].set_ylabel("position")
    axes[1].set_ylabel("velocity")
    axes[1].set_xlabel("time (s)")
    if spec.n_joints <= 12:
        axes[0].legend(loc="upper right", fontsize="x-small", ncol=2)
    save(fig, "joints")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    axes[0].hist(c["lateness"] * 1e3, bins=50)
    axes[0].set_xlabel("cycle start after deadline (ms)")
    axes[1].plot(t, c["compute"] * 1e3, lw=0.5)
    axes[1].axhline(1e3 / spec.rate, color="r", lw=0.5, label="period")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("cycle work (ms)")
    axes[1].legend(fontsize="small")
    rtt = c["round_trip"][np.isfinite(c["round_trip"])] * 1e3
    if len(rtt):
        axes[2].hist(rtt, bins=50)
        axes[2].set_xlabel("round trip (ms)")
    else:
        axes[2].set_axis_off()
    save(fig, "timing")

    episodes = episode_summary(log)
    if episodes:
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
        axes[0].plot(t, np.nan_to_num(c["reward"]), lw=0.8)
        axes[0].set_xlabel("time (s)")
        axes[0].set_ylabel("reward")
        axes[1].bar(
            [e["episode"] for e in episodes],
            [e["return"] for e in episodes],
            color=["tab:green" if e["success"] else "tab:gray" for e in episodes],
        )
        axes[1].set_xlabel("episode (green: success)")
        axes[1].set_ylabel("return")
        save(fig, "episodes")
    return written
