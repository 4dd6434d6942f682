"""The sim-to-real gap: train on MuJoCo with and without domain randomization, deploy through
the hardware layer to a PyBullet robot server standing in for the real robot, and compare.

For each task (the cart-pole swing-up and the two-link reacher) and each training condition
(nominal robot; the task's default domain randomization table), SAC trains on MuJoCo; its
deterministic actor is exported to TorchScript and deployed from the exported file only:

- **sim**: to a simulated MuJoCo robot (``SimRobot``, nominal parameters) in this process;
- **real**: to ``robot-rl robot-server --engine pybullet`` in its own process over loopback
  (CURVE-authenticated ZeroMQ, real time, the server's own supervisor and watchdog), twice:
  the nominal PyBullet robot (the gap is then the other engine, the network and real-time
  pacing), and the PyBullet robot with a fixed ``RealityGap`` inside the training
  randomization envelope (heavier links, weaker motors, more damping, 20 ms actuation
  latency, the table's largest observation noise) -- a mis-modelled real robot.

Both go through the same deployment path (supervisor, run record, task scores computed from
the observations) on the same episode seeds. The score of a run is its mean return minus that
of the zero policy on the same robot and seeds (a "do nothing" baseline: the reacher's
returns are negative distances, so raw return ratios would mean nothing); the real/sim ratio
of scores and of success rates is reported. Target: the randomized policy keeps >= 80 % of its
simulated performance on both tasks; the unrandomized gap is reported beside it.

Usage: python benchmarks/sim2real.py [--tasks cartpole reacher] [--episodes 20] [--seed 0]
       [--steps-cartpole N] [--steps-reacher N] [--hidden 256 256] [--agent sac|linear]
       [--save DIR] [--load DIR] [--no-write]

``--save DIR`` keeps the exported policies and the run records; ``--load DIR`` evaluates
policies saved earlier instead of training. Client and servers use a 10-cycle watchdog here
(see ``WATCHDOG_CYCLES``).

``--agent linear`` deploys untrained linear policies to exercise the pipeline quickly; its
figures are not a result and are never written to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import machine_summary, markdown_table, write_section

import robot_rl
from robot_rl.hardware import (
    DeployConfig,
    Pacing,
    RunResult,
    SafetyConfig,
    SimRobot,
    deploy,
    init_keys,
)
from robot_rl.hardware.backends.process import ServedRobot
from robot_rl.hardware.backends.sim import RealityGap
from robot_rl.hardware.export import PolicyMetadata, export_torchscript
from robot_rl.hardware.policies import ZeroPolicy, load_policy
from robot_rl.types import Policy

REPO = Path(__file__).resolve().parent.parent
TASKS = {"cartpole": "robot_rl/CartpoleSwingup-v0", "reacher": "robot_rl/ReacherTwoLink-v0"}
WATCHDOG_CYCLES = 10
"""Watchdog of the experiment's client and servers: 0.5 s at 20 Hz, so that a run on the
shared, heavily loaded benchmark machine is not ended by its scheduling hiccups (the safety
default, 3 cycles, is what the fault drill exercises)."""
SAFETY = SafetyConfig(watchdog_cycles=WATCHDOG_CYCLES)
GAPS = {  # each inside its task's default randomization table (robot_rl/envs/tables.py)
    "cartpole": RealityGap((1.15,), (0.85,), damping_add=(0.01,), latency=0.02, obs_noise=0.01),
    "reacher": RealityGap((1.15,), (0.85,), damping_scale=(1.5,), latency=0.02, obs_noise=0.002),
}


@dataclass(frozen=True)
class Evaluation:
    mean_return: float
    success: float
    episodes: int
    termination: str


def evaluation(result: RunResult) -> Evaluation:
    return Evaluation(
        result.mean_return, result.success_rate, len(result.episodes), result.termination.value
    )


# -- training -----------------------------------------------------------------------------------
def train_sac(
    env_id: str, randomize: bool, steps: int, seed: int, hidden: tuple[int, ...]
) -> torch.nn.Module:
    """SAC on MuJoCo; returns the deterministic actor (obs -> tanh(mean))."""
    try:
        from robot_rl.agents.sac import SAC, SACConfig, TrainConfig, Trainer
    except ImportError as err:
        raise SystemExit(f"sim2real needs the SAC agent (robot_rl.agents.sac): {err}") from None
    env = robot_rl.make(env_id, engine="mujoco", randomization=randomize or None)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = SAC(obs_dim, act_dim, SACConfig(hidden=hidden), seed=seed)
    Trainer(agent, [env], TrainConfig(total_steps=steps, eval_every=0, seed=seed), env_id).train()
    return agent.actor


def linear_actor(
    env_id: str, randomize: bool, steps: int, seed: int, hidden: tuple[int, ...]
) -> torch.nn.Module:
    """An untrained linear policy (pipeline check only)."""
    env = robot_rl.make(env_id)
    torch.manual_seed(seed + int(randomize))
    return torch.nn.Sequential(
        torch.nn.Linear(env.observation_space.shape[0], env.action_space.shape[0]),
        torch.nn.Tanh(),
    )


AGENTS = {"sac": train_sac, "linear": linear_actor}


# -- deployment ---------------------------------------------------------------------------------
class RealRobot(ServedRobot):
    """A PyBullet robot server in its own process, for one task."""

    def __init__(self, env_id: str, keys: Path, gap: RealityGap | None = None) -> None:
        super().__init__(env_id, keys, gap=gap, watchdog_cycles=WATCHDOG_CYCLES)

    def deploy(self, policy: Policy, episodes: int, seed: int, record: Path) -> Evaluation:
        config = DeployConfig(episodes=episodes, seed=seed)
        return evaluation(deploy(self.client(), policy, config, SAFETY, record=record))


def deploy_sim(env_id: str, policy: Policy, episodes: int, seed: int, record: Path) -> Evaluation:
    robot = SimRobot.make(env_id, "mujoco")
    config = DeployConfig(episodes=episodes, seed=seed, pacing=Pacing.NONE)
    return evaluation(deploy(robot, policy, config, SAFETY, record=record))


def ratio(real: float, sim: float) -> str:
    """real / sim as a percentage ('n/a' when sim is zero)."""
    return f"{real / sim:.0%}" if abs(sim) > 1e-9 else "n/a"


def trained_policy(args: argparse.Namespace, task: str, randomize: bool, folder: Path) -> Path:
    """The exported policy for (task, randomize): trained now, or loaded with ``--load``."""
    name = f"{task}-{'randomized' if randomize else 'nominal'}.pt"
    if args.load is not None:
        return args.load / name
    env_id = TASKS[task]
    env = robot_rl.make(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    steps = args.steps_cartpole if task == "cartpole" else args.steps_reacher
    start = time.perf_counter()
    actor = AGENTS[args.agent](env_id, randomize, steps, args.seed, tuple(args.hidden))
    print(f"trained {name} in {time.perf_counter() - start:.0f} s", flush=True)
    metadata = PolicyMetadata(obs_dim, act_dim, env_id, algorithm=args.agent)
    return export_torchscript(actor, (args.save or folder) / name, metadata)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--steps-cartpole", type=int, default=60_000)
    parser.add_argument("--steps-reacher", type=int, default=40_000)
    parser.add_argument("--agent", choices=list(AGENTS), default="sac")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--load", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the robot servers on SIGTERM too
    load_before = machine_summary()
    print(load_before, flush=True)
    rows = []
    n, s = args.episodes, args.eval_seed
    with tempfile.TemporaryDirectory() as tmp:
        keys = init_keys(Path(tmp) / "keys")
        folder = Path(tmp) if args.save is None else args.save  # run records go here
        folder.mkdir(parents=True, exist_ok=True)
        for task in args.tasks:
            env_id = TASKS[task]
            act_dim = robot_rl.make(env_id).action_space.shape[0]
            reals = {"nominal": RealRobot(env_id, keys), "gap": RealRobot(env_id, keys, GAPS[task])}
            try:
                zero_sim = deploy_sim(env_id, ZeroPolicy(act_dim), n, s, folder / f"{task}-zero.h5")
                zero_real = {
                    k: r.deploy(ZeroPolicy(act_dim), n, s, folder / f"{task}-zero-{k}.h5")
                    for k, r in reals.items()
                }
                for randomize in (False, True):
                    path = trained_policy(args, task, randomize, folder)
                    policy, _ = load_policy(str(path))  # deploy the exported file only
                    tag = f"{task}-{int(randomize)}"
                    sim = deploy_sim(env_id, policy, n, s, folder / f"{tag}-sim.h5")
                    row = [
                        task, "yes" if randomize else "no",
                        f"{sim.mean_return:.2f}", f"{sim.success:.0%}",
                    ]  # fmt: skip
                    for kind, real in reals.items():
                        on_real = real.deploy(policy, n, s, folder / f"{tag}-{kind}.h5")
                        score_sim = sim.mean_return - zero_sim.mean_return
                        score_real = on_real.mean_return - zero_real[kind].mean_return
                        row += [
                            f"{on_real.mean_return:.2f}",
                            ratio(score_real, score_sim),
                            f"{on_real.success:.0%}",
                            ratio(on_real.success, sim.success),
                        ]
                        if on_real.termination != "completed":
                            row[-4] += f" ({on_real.termination})"
                    rows.append(row)
                    print(" | ".join(str(c) for c in row), flush=True)
                print(
                    f"{task} zero policy: sim {zero_sim.mean_return:.2f}, "
                    + ", ".join(f"{k} {v.mean_return:.2f}" for k, v in zero_real.items()),
                    flush=True,
                )
            finally:
                for real in reals.values():
                    real.close()
    load_after = machine_summary()
    print(load_after, flush=True)
    if args.no_write or args.agent != "sac":
        return
    header = [
        "task", "DR", "sim return", "sim success",
        "real return", "real/sim score", "real success", "real/sim success",
        "gap return", "gap/sim score", "gap success", "gap/sim success",
    ]  # fmt: skip
    steps = f"{args.steps_cartpole} (cart-pole) and {args.steps_reacher} (reacher)"
    body = "\n".join(
        [
            "## Sim-to-real gap through the hardware layer (`benchmarks/sim2real.py`)",
            "",
            f"Load before: {load_before}. Load after: {load_after}.",
            "",
            f"SAC (default hyperparameters, hidden {tuple(args.hidden)}, seed {args.seed}, "
            f"{steps} steps) trained on MuJoCo, nominal (DR no) or with the task's default "
            "randomization table (DR yes); the deterministic actor is exported to TorchScript "
            "and deployed from the file. Sim: MuJoCo `SimRobot`, nominal. Real: `robot-rl "
            "robot-server --engine pybullet` in its own process, over loopback, in real time; "
            "real = nominal PyBullet, gap = PyBullet with a fixed reality gap inside the "
            f"randomization envelope ({'; '.join(f'{k}: {v}' for k, v in GAPS.items())}). "
            f"{args.episodes} episodes each on the same seeds (from {args.eval_seed}); "
            f"watchdogs at {WATCHDOG_CYCLES} cycles. Score = "
            "mean return minus the zero policy's on the same robot and seeds; success = the "
            "task's success at the last step. Target: randomized policy keeps >= 80 % of its "
            "simulated score.",
            "",
            markdown_table(header, rows),
        ]
    )
    write_section("sim2real", body)


if __name__ == "__main__":
    main()
