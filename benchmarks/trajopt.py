"""Trajectory-optimisation benchmark (issue 4): writes the ``trajopt`` section of BENCHMARKS.md.

1. Reference cart-pole swing-up (RK4, dt 0.05 s, N = 100, |u| <= 5 N; optimum ≈ 11.786):
   box-constrained iLQR cold solve against CasADi + fatrop cold solve on the same problem,
   interleaved in one run; then a 100-step closed-loop MPC run on the same model with
   warm-started iLQR re-solves.
2. iLQR on the learned PETS ensemble: ``benchmarks/trajopt_learned.py``.
3. MPC with iLQR and simulator derivatives on the MuJoCo cart-pole with domain randomization
   on, the controller's model at nominal parameters: success rate over randomized episodes.
4. The 7-DoF arm: MPC with iLQR and simulator derivatives; final distance to each target,
   success within 1 cm, solve times.

Run: ``nice -n 5 python benchmarks/trajopt.py`` (about half an hour on a loaded 2-core
machine; ``--quick`` runs fewer repeats and episodes to check the script).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import casadi as ca
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import robot_rl
from benchmarks.common import machine_summary, markdown_table, write_section
from robot_rl.controllers.ilqr import ILQR, ILQRSettings
from robot_rl.controllers.models import REFERENCE_CARTPOLE, Cartpole, rk4, rk4_quadrature
from robot_rl.controllers.nmpc import NMPC, NLPSolver
from robot_rl.controllers.presets import PlanningModel, make_mpc
from robot_rl.controllers.problems import REFERENCE_OPTIMUM, cartpole_reference
from robot_rl.evaluation import run_episode


# -- 1. reference problem -------------------------------------------------------------------------
def fatrop_reference(N: int = 100, dt: float = 0.05) -> ca.Function:
    """The reference problem written directly for CasADi + fatrop, as one would by hand: one
    SX function for the RK4 step and its quadrature cost, stages interleaved."""
    model = Cartpole(REFERENCE_CARTPOLE)
    x, u = model.symbols()
    goal = ca.DM([0.0, np.pi, 0.0, 0.0])
    Q, Qf = ca.diag(ca.DM([1.0, 1.0, 0.1, 0.1])), ca.diag(ca.DM([100.0, 100.0, 10.0, 10.0]))

    def rate(x: ca.SX, u: ca.SX) -> ca.SX:
        e = x - goal
        return 0.5 * e.T @ Q @ e + 0.5 * 0.01 * ca.sumsqr(u)

    F = ca.Function("F", [x, u], [rk4(model, dt)(x, u), rk4_quadrature(model, rate, dt)(x, u)])
    w, g, J = [], [], 0
    Xk = ca.SX.sym("X0", 4)
    w.append(Xk)
    for k in range(N):
        Uk = ca.SX.sym(f"U{k}")
        w.append(Uk)
        Xn, Lk = F(Xk, Uk)
        J += Lk
        Xk = ca.SX.sym(f"X{k + 1}", 4)
        w.append(Xk)
        g.append(Xk - Xn)
    e = Xk - goal
    J += 0.5 * e.T @ Qf @ e
    nlp = {"x": ca.vertcat(*w), "f": J, "g": ca.vertcat(*g)}
    opts = {
        "structure_detection": "auto",
        "equality": [True] * (4 * N),
        "expand": True,
        "print_time": False,
        "fatrop": {"print_level": 0},
    }
    return ca.nlpsol("fatrop_reference", "fatrop", nlp, opts)


def reference_solves(repeats: int) -> tuple[list[list[object]], dict[str, float]]:
    problem = cartpole_reference()
    ilqr = ILQR(
        problem.dynamics, problem.cost, problem.horizon, problem.control_low,
        problem.control_high, ILQRSettings(max_iterations=1000),
    )  # fmt: skip
    t = time.perf_counter()
    fatrop = fatrop_reference()
    fatrop_build = time.perf_counter() - t
    nmpc = NMPC(
        rk4(Cartpole(REFERENCE_CARTPOLE), 0.05), problem.cost, 100, problem.control_low,
        problem.control_high, solver=NLPSolver.FATROP,
    )  # fmt: skip
    nmpc.build()
    n_w = 5 * 100 + 4
    lbx, ubx = np.full(n_w, -np.inf), np.full(n_w, np.inf)
    lbx[:4] = ubx[:4] = 0.0
    lbx[4::5], ubx[4::5] = -5.0, 5.0
    ilqr.solve(problem.x0)  # compile (JIT) once, outside the timing
    times: dict[str, list[float]] = {"ilqr": [], "fatrop": [], "nmpc": []}
    out: dict[str, object] = {}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        ilqr.reset()
        result = ilqr.solve(problem.x0)
        times["ilqr"].append(result.solve_time)
        out["ilqr"] = result
        t = time.perf_counter()
        sol = fatrop(x0=0.0, lbx=lbx, ubx=ubx, lbg=0.0, ubg=0.0)
        times["fatrop"].append(time.perf_counter() - t)
        out["fatrop"] = (float(sol["f"]), np.asarray(sol["x"]).ravel(), fatrop.stats())
        nm = nmpc.solve(problem.x0)
        times["nmpc"].append(nm.solve_time)
        out["nmpc"] = nm
    r = out["ilqr"]
    f_cost, f_w, f_stats = out["fatrop"]
    nm = out["nmpc"]
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = [
        [
            "box-DDP / iLQR (this package)", f"{r.cost:.5f}", f"{100 * (r.cost / REFERENCE_OPTIMUM - 1):+.3f}%",
            f"{r.states[-1, 1]:.4f}", r.iterations, f"{1e3 * med['ilqr']:.1f}", r.status.value,
        ],
        [
            "CasADi + fatrop (hand-written NLP)", f"{f_cost:.5f}", f"{100 * (f_cost / REFERENCE_OPTIMUM - 1):+.3f}%",
            f"{f_w[-3]:.4f}", f_stats["iter_count"], f"{1e3 * med['fatrop']:.1f}",
            "converged" if f_stats["success"] else str(f_stats["unified_return_status"]),
        ],
        [
            "CasADi + fatrop (`NMPC` class)", f"{nm.cost:.5f}", f"{100 * (nm.cost / REFERENCE_OPTIMUM - 1):+.3f}%",
            f"{nm.states[-1, 1]:.4f}", nm.iterations, f"{1e3 * med['nmpc']:.1f}", nm.status.value,
        ],
    ]  # fmt: skip
    med["fatrop_build"] = fatrop_build
    med["best_fatrop"] = min(med["fatrop"], med["nmpc"])
    return rows, med


def reference_mpc(steps: int, warm_iterations: int) -> dict[str, float]:
    """Closed loop on the reference model itself: iLQR MPC with N = 100, warm-started."""
    problem = cartpole_reference()
    solver = ILQR(
        problem.dynamics, problem.cost, problem.horizon, problem.control_low,
        problem.control_high, ILQRSettings(max_iterations=1000),
    )  # fmt: skip
    x = problem.x0.copy()
    first = solver.solve(x)
    solver.warm_start(first, x, 1)  # compile the warm-start rollout outside the timing
    plan, times, angles, iterations = first, [], [], []
    x = problem.dynamics.step(x[None], plan.controls[:1])[0]
    for _ in range(steps):
        start = time.perf_counter()
        guess = solver.warm_start(plan, x, 1)
        result = solver.solve(x, guess, max_iterations=warm_iterations)
        times.append(time.perf_counter() - start)
        iterations.append(result.iterations)
        if result.status.usable:
            plan = result
        x = problem.dynamics.step(x[None], plan.controls[:1])[0]
        angles.append(x[1])
    angles = np.array(angles)
    up = np.abs(angles - np.pi) < 0.2
    first_up = int(np.argmax(up)) if up.any() else steps
    return {
        "first_solve": first.solve_time,
        "median": float(np.median(times)),
        "p90": float(np.percentile(times, 90)),
        "max": float(np.max(times)),
        "iterations": float(np.mean(iterations)),
        "kept_up": bool(up[first_up:].all()) and up.any(),
        "up_from": first_up,
        "final_angle": float(angles[-1]),
        "steps": steps,
    }


# -- 3. randomized cart-pole with simulator derivatives ---------------------------------------------
def randomized_cartpole(episodes: int) -> dict[str, object]:
    env = robot_rl.make("robot_rl/CartpoleSwingup-v0", randomization=True)
    mpc = make_mpc(env, PlanningModel.SIMULATOR, warm_iterations=10)
    successes, returns, times, fallbacks, costs = [], [], [], 0, []
    for seed in range(episodes):
        episode = run_episode(env, mpc, seed=1000 + seed, success_window=20)
        successes.append(episode.success)
        returns.append(episode.ret)
        costs.append(episode.cost)
        times.extend(mpc.solve_times()[1:])
        fallbacks += sum(s.fallback for s in mpc.steps)
        print(
            f"  cart-pole episode {seed}: success={episode.success} return={episode.ret:.1f}",
            flush=True,
        )
    return {
        "episodes": episodes,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "mean_safety_cost": float(np.mean(costs)),
        "median_solve": float(np.median(times)),
        "p90_solve": float(np.percentile(times, 90)),
        "fallbacks": fallbacks,
    }


# -- 4. the arm ----------------------------------------------------------------------------------
def arm_reaching(episodes: int) -> list[list[object]]:
    env = robot_rl.make("robot_rl/ArmReach-v0")
    mpc = make_mpc(env, PlanningModel.SIMULATOR, first_iterations=20, warm_iterations=2)
    rows = []
    for seed in range(episodes):
        distances: list[float] = []
        run_episode(
            env,
            mpc,
            seed=seed,
            on_step=lambda o, a, i, d=distances: d.append(float(np.linalg.norm(o[20:23]))),
        )
        t = mpc.solve_times()
        rows.append([
            seed, f"{100 * distances[0]:.1f}", f"{1000 * distances[-1]:.3f}", distances[-1] < 0.01,
            f"{t[0]:.2f}", f"{1e3 * np.median(t[1:]):.0f}", f"{1e3 * np.max(t[1:]):.0f}",
        ])  # fmt: skip
        print(f"  arm episode {seed}: final distance {1000 * distances[-1]:.3f} mm", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and episodes")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    repeats, cart_episodes, arm_episodes = (2, 2, 1) if args.quick else (7, 20, 5)
    load_before = machine_summary()
    print("1. reference problem", flush=True)
    rows, med = reference_solves(repeats)
    ratio = med["ilqr"] / med["best_fatrop"]
    print(
        markdown_table(["solver", "cost", "gap", "θ_N", "iterations", "median ms", "status"], rows)
    )
    mpc = reference_mpc(100, warm_iterations=5)
    print(mpc, flush=True)
    print("3. randomized cart-pole, simulator derivatives", flush=True)
    cart = randomized_cartpole(cart_episodes)
    print(cart, flush=True)
    print("4. arm", flush=True)
    arm = arm_reaching(arm_episodes)
    load_after = machine_summary()

    body = [
        "## Trajectory optimisation (`benchmarks/trajopt.py`)",
        "",
        f"Machine at start: {load_before}  ",
        f"Machine at end: {load_after}",
        "",
        f"### 1. Reference cart-pole swing-up (optimum ≈ {REFERENCE_OPTIMUM})",
        "",
        f"Cold solves from zero controls, {repeats} interleaved repeats each, median wall time "
        "(solver construction and JIT compilation excluded; the hand-written fatrop NLP took "
        f"{med['fatrop_build']:.2f} s to build).",
        "",
        markdown_table(
            [
                "solver",
                "cost",
                "gap to 11.786",
                "θ_N (π = upright)",
                "iterations",
                "median ms",
                "status",
            ],
            rows,
        ),
        "",
        f"**iLQR / fastest CasADi+fatrop time ratio: {ratio:.2f}** (target ≤ 1).",
        "",
        f"Closed-loop MPC on the same model (N = 100, warm-started re-solves of at most 5 "
        f"iterations, {mpc['steps']} steps after a cold first solve of {1e3 * mpc['first_solve']:.0f} ms): "
        f"re-solve **median {1e3 * mpc['median']:.2f} ms** (target ≤ 5 ms), p90 {1e3 * mpc['p90']:.2f} ms, "
        f"max {1e3 * mpc['max']:.2f} ms, {mpc['iterations']:.1f} iterations on average; pole within "
        f"0.2 rad of upright from step {mpc['up_from']} on and kept there: {mpc['kept_up']} "
        f"(final θ = {mpc['final_angle']:.4f}).",
        "",
        "### 2. iLQR on the learned ensemble",
        "",
        "Measured by `benchmarks/trajopt_learned.py` (its own section below), which needs a "
        "trained PETS model.",
        "",
        "### 3. MuJoCo cart-pole, domain randomization on, simulator derivatives at nominal parameters",
        "",
        f"iLQR MPC (horizon 40, ≤ 10 warm iterations per step, Jacobians by finite differences of "
        f"whole control steps through `mujoco.rollout`), state read from the observation: "
        f"**success {100 * cart['success_rate']:.0f}% of {cart['episodes']} randomized episodes** "
        f"(pole within 0.2 rad of upright for the last 20 steps), mean return {cart['mean_return']:.1f}, "
        f"mean safety cost {cart['mean_safety_cost']:.2f}, solve time median {1e3 * cart['median_solve']:.0f} ms "
        f"(p90 {1e3 * cart['p90_solve']:.0f} ms), fallbacks to the previous plan: {cart['fallbacks']}.",
        "",
        "### 4. KUKA iiwa reaching with simulator derivatives",
        "",
        "iLQR MPC (horizon 30, first solve ≤ 20 iterations, then ≤ 2 per step), velocity control, "
        "nominal parameters, end-effector cost from the URDF's forward kinematics.",
        "",
        markdown_table(
            [
                "episode",
                "start distance cm",
                "final distance mm",
                "within 1 cm",
                "first solve s",
                "median re-solve ms",
                "max re-solve ms",
            ],
            arm,
        ),
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("trajopt", text)


if __name__ == "__main__":
    main()
