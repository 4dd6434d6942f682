"""The six stages of the main job. Each reads what earlier stages left in the run folder,
writes its own artifacts under ``<run>/<stage>/`` and returns a JSON summary for the manifest.

1. collect   random episodes in simulation with domain randomization (PETS' first episodes;
             SAC takes its random warm-up steps in the learn stage instead)
2. learn     PETS: refit the ensemble after every episode, plan with MPC, until success;
             or SAC for a budget of env steps (``robot_rl.pipeline.sac_learner``)
3. evaluate  the learned controller over randomized parameter draws (Ray workers optional),
             and the model's open-loop error by prediction horizon
4. deploy    the learned controller, and a model-based planner at the nominal parameters, to
             the stand-in robot (a PyBullet robot server with a reality gap), recorded
5. identify  fit the simulator's parameters to those records; re-plan with the identified
             model on the robot
6. report    Markdown report with plots (``robot_rl.pipeline.report``)
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import robot_rl
from robot_rl.agents.pets import CHECKPOINT_NAME, PETS, PETSConfig
from robot_rl.agents.pets import build as build_pets
from robot_rl.config import build as build_config
from robot_rl.config import to_dict
from robot_rl.envs import DomainParams, Randomization, table_from_dict
from robot_rl.hardware import (
    DeployConfig,
    NetworkRobot,
    Pacing,
    RobotInterface,
    RunResult,
    SafetyConfig,
    SimRobot,
    deploy,
    init_keys,
    read_run,
)
from robot_rl.hardware.backends.process import ServedRobot
from robot_rl.hardware.keys import default_key_dir, load_client_keys
from robot_rl.logger import progress
from robot_rl.models.prediction import prediction_error_by_horizon
from robot_rl.models.sysid import identify, runs_from_cycles
from robot_rl.parallel import evaluate_jobs, make_executor, randomized_jobs
from robot_rl.pipeline.config import Agent, RobotBackend, RunConfig
from robot_rl.pipeline.rundir import RunDir
from robot_rl.pipeline.sac_learner import sac_controller, train_sac
from robot_rl.types import Policy

SUCCESS_WINDOW_S = 2.0
"""An episode succeeds when its last this many seconds all meet the task's criterion."""
EVAL_SEED = 10_000
"""Evaluation and deployment episodes use seeds from here on (training uses the run seed)."""
MODEL_ERROR_HORIZON = 15
"""Longest open-loop prediction the model error is measured at, control steps."""


@dataclass
class Context:
    """What every stage gets: the configuration and the run folder."""

    config: RunConfig
    run: RunDir


@functools.cache
def success_window(env_id: str) -> int:
    """Control steps in ``SUCCESS_WINDOW_S`` on ``env_id``."""
    env = robot_rl.make(env_id)
    return max(1, round(SUCCESS_WINDOW_S / env.task.control_dt))


# -- PETS, shared by collect, learn and every later stage that needs the learned controller ----
def randomization_of(config: RunConfig) -> Randomization | bool:
    """The randomization the config asks for: the env's table, a custom one, or none."""
    if not config.randomize:
        return False
    if config.randomization is None:
        return True
    return Randomization(table_from_dict(config.randomization))


def pets_config(config: RunConfig, learn_dir: Path) -> PETSConfig:
    return PETSConfig(
        env=config.env,
        engine=config.engine,
        episodes=config.learn.max_episodes,
        random_episodes=config.collect.episodes,
        seed=config.seed,
        threads=config.threads,
        run_dir=learn_dir,
        success_window=success_window(config.env),
        log=(),
        model=config.learn.model,
        planner=config.learn.planner,
    )


def open_pets(config: RunConfig, learn_dir: Path) -> PETS:
    """PETS for this run, resumed from its checkpoint when there is one."""
    import torch

    torch.set_num_threads(config.threads)
    env = robot_rl.make(config.env, engine=config.engine, randomization=randomization_of(config))
    pets = build_pets(pets_config(config, learn_dir), env=env)
    checkpoint = learn_dir / CHECKPOINT_NAME
    if checkpoint.is_file():
        pets.restore(checkpoint)
    return pets


def learned_controller(config_data: dict[str, Any], learn_dir: str) -> Policy:
    """The controller a finished learn stage produced: PETS' MPC on the ensemble, or SAC's
    deterministic actor (picklable: Ray workers call it)."""
    config = build_config(RunConfig, config_data)
    if config.learn.agent is Agent.SAC:
        return sac_controller(Path(learn_dir))
    pets = open_pets(config, Path(learn_dir))
    if not pets.history:
        raise ValueError(f"no trained model in {learn_dir}: run the learn stage first")
    return pets.controller


def _consecutive_successes(pets: PETS) -> int:
    count = 0
    for log in reversed(pets.history):
        if not (log.planned and log.success):
            break
        count += 1
    return count


def collect(ctx: Context) -> dict[str, Any]:
    if ctx.config.learn.agent is Agent.SAC:
        return {"skipped": "SAC takes its random warm-up steps in the learn stage"}
    pets = open_pets(ctx.config, ctx.run.stage_dir("learn"))
    episodes = ctx.config.collect.episodes
    for _ in progress(range(pets.episode, episodes), total=episodes, desc="collect"):
        pets.run_episode()
    return {"episodes": pets.episode, "transitions": len(pets.data),
            "returns": [h.ret for h in pets.history[:episodes]]}  # fmt: skip


def learn(ctx: Context) -> dict[str, Any]:
    config = ctx.config
    if config.learn.agent is Agent.SAC:
        return train_sac(config, ctx.run.stage_dir("learn"), randomization_of(config))
    pets = open_pets(config, ctx.run.stage_dir("learn"))
    budget = config.learn.max_episodes
    bar = progress(range(budget), total=budget, desc="learn (PETS episodes)")
    for _ in range(pets.episode):
        next(bar, None)
    while pets.episode < budget and _consecutive_successes(pets) < config.learn.successes:
        pets.run_episode()
        next(bar, None)
    bar.close()
    history = [dataclasses.asdict(h) for h in pets.history]
    first = next((h.episode + 1 for h in pets.history if h.planned and h.success), None)
    return {
        "agent": "pets",
        "episodes": pets.episode,
        "curve": [
            {"episode": h.episode + 1, "return": h.ret, "success": h.success} for h in pets.history
        ],
        "solved": _consecutive_successes(pets) >= config.learn.successes,
        "episodes_to_success": first,
        "history": history,
    }


# -- evaluation in simulation -------------------------------------------------------------------
def evaluate(ctx: Context) -> dict[str, Any]:
    config, learn_dir = ctx.config, ctx.run.stage_dir("learn")
    table = None if config.randomization is None else table_from_dict(config.randomization)
    jobs = randomized_jobs(config.env, config.engine.value, config.evaluate.episodes,
                           seed=config.seed + EVAL_SEED, table=table)  # fmt: skip
    make_policy = functools.partial(learned_controller, to_dict(config), str(learn_dir))
    workers, window = config.evaluate.workers, success_window(ctx.config.env)
    # One round of ``workers`` episodes at a time, so the progress bar moves.
    rounds = [jobs[i : i + workers] for i in range(0, len(jobs), workers)]
    results = []
    with make_executor(workers, config.evaluate.ray_address) as executor:
        for batch in progress(rounds, total=len(rounds), desc="evaluate (randomized draws)"):
            results += evaluate_jobs(make_policy, batch, executor, success_window=window)
    model_error = _model_error(ctx) if config.learn.agent is Agent.PETS else None
    return {
        "workers": config.evaluate.workers,
        "returns": [r.ret for r in results],
        "costs": [r.cost for r in results],
        "successes": [r.success for r in results],
        "mean_return": float(np.mean([r.ret for r in results])),
        "success_rate": float(np.mean([r.success for r in results])),
        "link_masses": [r.params.link_masses.tolist() for r in results],
        "model_error": model_error,
    }


def _model_error(ctx: Context) -> dict[str, Any]:
    """Open-loop error of the learned model on a fresh episode it has not seen."""
    from robot_rl.models.dataset import collect_episode

    config = ctx.config
    pets = open_pets(config, ctx.run.stage_dir("learn"))
    env = robot_rl.make(config.env, engine=config.engine, randomization=randomization_of(config))
    _, transitions = collect_episode(env, pets.controller, seed=config.seed + EVAL_SEED - 1)
    horizons = list(range(1, MODEL_ERROR_HORIZON + 1))
    scale = np.maximum(pets.data.batch().obs.std(0), 1e-6)
    rmse, still = prediction_error_by_horizon(pets.model, [transitions], horizons, scale)
    return {"horizons": horizons, "rmse": rmse, "no_change_rmse": still}


# -- deployment to the stand-in robot ------------------------------------------------------------
def robot_truth(config: RunConfig, nominal: DomainParams) -> DomainParams | None:
    """The stand-in robot's true parameters; None for a robot server the run did not start."""
    if config.robot.endpoint is not None:
        return None
    return config.reality_gap().apply(nominal)


def model_based_planner(env_id: str, params: Any = None) -> Policy | None:
    """iLQR MPC on the env's analytic model (at ``params``), or None where there is none."""
    from robot_rl.controllers import PlanningModel, make_mpc
    from robot_rl.controllers.presets import ANALYTIC_ENVS

    if env_id not in ANALYTIC_ENVS:
        return None
    return make_mpc(robot_rl.make(env_id), PlanningModel.ANALYTIC, params=params)


class RobotSession:
    """The robot for a stage: a running robot server (``robot.endpoint``), one served for the
    stage in its own process, or a simulated robot in this process."""

    def __init__(self, config: RunConfig, folder: Path) -> None:
        self.config = config
        robot = config.robot
        self.gap = config.reality_gap()
        self.served: ServedRobot | None = None
        if robot.endpoint is not None:
            keys = Path(robot.keys).expanduser() if robot.keys else default_key_dir()
            self.client_keys = load_client_keys(keys)
        elif robot.backend is RobotBackend.NETWORK:
            keys = folder / "keys"
            if not (keys / "server.key_secret").exists():  # a resumed stage keeps its keys
                init_keys(keys)
            self.served = ServedRobot(
                config.env, keys, robot.engine, self.gap, robot.watchdog_cycles
            )

    def make(self) -> RobotInterface:
        if self.config.robot.endpoint is not None:
            return NetworkRobot(self.client_keys, self.config.robot.endpoint)
        if self.served is not None:
            return self.served.client()
        return SimRobot.make(self.config.env, self.config.robot.engine.value, gap=self.gap)

    def close(self) -> None:
        if self.served is not None:
            self.served.close()


def _deploy(robot_factory: Callable[[], Any], policy: Policy, config: RunConfig, record: Path,
            pacing: Pacing | None = None) -> RunResult:  # fmt: skip
    deploy_config = DeployConfig(
        episodes=config.robot.episodes, seed=config.seed + EVAL_SEED, pacing=pacing,
        policy_timeout=0.0,  # planners may take most of a period: call them inline
    )  # fmt: skip
    safety = SafetyConfig(watchdog_cycles=config.robot.watchdog_cycles)
    return deploy(robot_factory(), policy, deploy_config, safety, record=record)


def summarize_run(result: RunResult, window: int) -> dict[str, Any]:
    """Totals of a deployment, success judged over the episodes' last ``window`` cycles."""
    log = read_run(result.record) if result.record else None
    successes = []
    if log is not None:
        for ep in np.unique(log.cycles["episode"]):
            rows = log.cycles["success"][log.cycles["episode"] == ep]
            successes.append(bool(rows[-window:].all()))
    loop = result.loop
    return {
        "termination": result.termination.value,
        "returns": [e.ret for e in result.episodes],
        "mean_return": result.mean_return,
        "success": successes,
        "cycles": result.cycles,
        "lost_cycles": result.lost_cycles,
        "events": result.event_counts,
        "lateness_p50_ms": 1e3 * loop.lateness_p50,
        "lateness_p99_ms": 1e3 * loop.lateness_p99,
        "overruns": loop.overruns,
        "compute_p50_ms": 1e3 * loop.compute_p50,
        "compute_p99_ms": 1e3 * loop.compute_p99,
        "record": str(result.record) if result.record else None,
    }


def _sim_and_robot(ctx: Context, name: str, policy: Policy, session: RobotSession,
                   folder: Path) -> dict[str, Any]:  # fmt: skip
    """Deploy ``policy`` to the simulator (MuJoCo, nominal, unpaced) and to the robot."""
    config, window = ctx.config, success_window(ctx.config.env)

    def simulator() -> SimRobot:
        return SimRobot.make(config.env, config.engine.value)

    sim = _deploy(simulator, policy, config, folder / f"{name}-sim.h5", pacing=Pacing.NONE)
    robot = _deploy(session.make, policy, config, folder / f"{name}-robot.h5")
    return {"sim": summarize_run(sim, window), "robot": summarize_run(robot, window)}


def deploy_stage(ctx: Context) -> dict[str, Any]:
    config, folder = ctx.config, ctx.run.stage_dir("deploy")
    env = robot_rl.make(config.env)
    truth = robot_truth(config, env.nominal_params)
    controllers: dict[str, Policy | None] = {
        "learned": learned_controller(to_dict(config), str(ctx.run.stage_dir("learn"))),
        "planner-nominal": model_based_planner(config.env),
    }
    session = RobotSession(config, folder)
    results = {}
    try:
        for name, policy in progress(controllers.items(), total=len(controllers), desc="deploy"):
            if policy is not None:
                results[name] = _sim_and_robot(ctx, name, policy, session, folder)
    finally:
        session.close()
    return {"backend": config.robot.backend.value, "engine": config.robot.engine.value,
            "robot_params": None if truth is None else truth.as_dict(),
            "nominal_params": env.nominal_params.as_dict(),
            "controllers": results}  # fmt: skip


# -- identification ------------------------------------------------------------------------------
def identify_stage(ctx: Context) -> dict[str, Any]:
    env = robot_rl.make(ctx.config.env)
    if env.task.robot.floating:
        return {"skipped": "identification needs a fixed-base robot"}
    bar = progress(range(2), total=2, desc="identify (fit, then re-plan on the robot)")
    next(bar)
    summary, estimate = _fit_parameters(ctx, env)
    next(bar)
    summary["replanned"] = _replan(ctx, estimate)
    next(bar, None)
    return summary


def _fit_parameters(ctx: Context, env: gym.Env) -> tuple[dict[str, Any], DomainParams]:
    """Fit the simulator's parameters to the robot's deployment records."""
    config, folder = ctx.config, ctx.run.stage_dir("identify")
    robot = env.task.robot
    runs = []
    for result in ctx.run.summary("deploy")["controllers"].values():
        c = read_run(result["robot"]["record"]).cycles
        runs += runs_from_cycles(c["t_robot"], c["episode"], c["position"], c["velocity"],
                                 c["robot_applied"], env.task.control_dt,
                                 min_steps=config.identify.segment_steps)  # fmt: skip
    if not runs:
        raise ValueError("the deployment records hold no uninterrupted stretch long enough to fit")
    nominal = env.nominal_params
    fit = identify(
        robot, runs, nominal, fit=config.identify.fit, segment_steps=config.identify.segment_steps
    )
    truth = robot_truth(config, nominal)
    parameters = []
    for name in fit.fitted:
        true = [None] * len(getattr(nominal, name)) if truth is None else getattr(truth, name)
        for i, (n, e, t) in enumerate(zip(getattr(nominal, name), getattr(fit.estimate, name),
                                           true, strict=True)):  # fmt: skip
            parameters.append({"name": f"{name}[{i}]", "nominal": float(n), "identified": float(e),
                               "true": None if t is None else float(t)})  # fmt: skip
    (folder / "identified_params.json").write_text(json.dumps(fit.estimate.as_dict(), indent=2))
    summary = {
        "parameters": parameters, "initial_rms": fit.initial_rms, "final_rms": fit.final_rms,
        "segments": fit.segments, "skipped_segments": fit.skipped_segments,
    }  # fmt: skip
    return summary, fit.estimate


def _replan(ctx: Context, estimate: DomainParams) -> dict[str, Any] | None:
    """The model-based planner with the identified parameters, in simulation and on the robot
    (None where the task has no analytic model)."""
    planner = model_based_planner(ctx.config.env, estimate)
    if planner is None:
        return None
    folder = ctx.run.stage_dir("identify")
    session = RobotSession(ctx.config, folder)
    try:
        return _sim_and_robot(ctx, "planner-identified", planner, session, folder)
    finally:
        session.close()


STAGES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "collect": collect,
    "learn": learn,
    "evaluate": evaluate,
    "deploy": deploy_stage,
    "identify": identify_stage,
}
"""The stages before the report, in order."""
