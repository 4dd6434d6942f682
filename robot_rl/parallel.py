"""Scale-out: run independent jobs (episodes under randomized parameters, sweep trials) on
Ray workers, or in-process when Ray is not installed or not wanted.

``make_executor(workers, ray_address)`` gives an ``Executor`` whose ``map`` runs a picklable
function over a list of inputs and returns the results in order. With ``workers > 1`` (or an
address) it starts a local Ray instance, or joins an existing cluster at ``ray_address``;
otherwise everything stays in this process. Ray is the optional ``[ray]`` extra.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from robot_rl.envs.randomization import DomainParams, RandomizationTable
from robot_rl.evaluation import Episode, run_episode
from robot_rl.types import Policy

T = TypeVar("T")
R = TypeVar("R")


class Executor(abc.ABC):
    """Runs a function over inputs, possibly in parallel; results keep the input order."""

    workers: int

    @abc.abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, computed by the workers."""

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """No parallelism: the reference every parallel result is compared against."""

    workers = 1

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


class RayExecutor(Executor):
    """Ray tasks, one CPU each. Starts a local instance with ``workers`` CPUs, or connects to
    the cluster at ``address`` (``ray://host:10001`` or ``host:6379``)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("parallel workers need Ray: pip install 'robot-rl[ray]'") from err
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._ray = ray
        self.workers = workers
        self._owns_instance = not ray.is_initialized()
        if self._owns_instance:
            kwargs: dict[str, Any] = {
                "address": address,
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                kwargs["num_cpus"] = workers
            # Workers import robot_rl from where the driver runs.
            kwargs["runtime_env"] = {
                "env_vars": {"ROBOT_RL_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
            }
            try:
                ray.init(**kwargs)
            except (ConnectionError, ray.exceptions.AuthenticationError) as err:
                raise ConnectionError(
                    f"cannot join the Ray cluster at {address}: {err}. A cluster started with "
                    "token authentication (Ray's default) also needs RAY_AUTH_MODE=token and its "
                    "token (~/.ray/auth_token or RAY_AUTH_TOKEN) in this process's environment"
                ) from err

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        remote = self._ray.remote(num_cpus=1)(fn)
        return self._ray.get([remote.remote(item) for item in items])

    def close(self) -> None:
        if self._owns_instance and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(workers: int = 1, ray_address: str | None = None) -> Executor:
    """In-process for one worker and no cluster address, Ray otherwise."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 and ray_address is None:
        return InProcessExecutor()
    return RayExecutor(workers, ray_address)


@dataclass(frozen=True)
class EpisodeJob:
    """One evaluation episode: an env, exact domain parameters and a seed.

    Attributes:
        env_id: registered env id.
        engine: ``mujoco`` or ``pybullet``.
        params: the domain parameters of this episode (a draw of the randomization).
        seed: reset seed (initial state and goal).
        env_kwargs: further arguments of ``robot_rl.make``.
    """

    env_id: str
    engine: str
    params: DomainParams
    seed: int
    env_kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class EpisodeSummary:
    """What a worker sends back: the episode's totals and its parameters."""

    params: DomainParams
    seed: int
    ret: float
    cost: float
    length: int
    success: bool


def _run_jobs(args: tuple[Callable[[], Policy], Sequence[EpisodeJob], int]) -> list[EpisodeSummary]:
    import robot_rl

    make_policy, jobs, success_window = args
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    summaries = []
    envs: dict[tuple, Any] = {}
    for job in jobs:
        # A fresh policy per episode: a stochastic planner's random stream then depends on the
        # job alone, not on which jobs ran before it on the same worker.
        policy = make_policy()
        key = (job.env_id, job.engine, job.env_kwargs)
        if key not in envs:
            envs[key] = robot_rl.make(job.env_id, engine=job.engine, **dict(job.env_kwargs))
        env = envs[key]
        env.set_domain_params(job.params)
        ep: Episode = run_episode(env, policy, seed=job.seed, success_window=success_window)
        summaries.append(
            EpisodeSummary(job.params, job.seed, ep.ret, ep.cost, ep.length, ep.success)
        )
    for env in envs.values():
        env.close()
    return summaries


def evaluate_jobs(
    make_policy: Callable[[], Policy],
    jobs: Sequence[EpisodeJob],
    executor: Executor,
    success_window: int = 1,
) -> list[EpisodeSummary]:
    """Run every job with a fresh policy from ``make_policy`` (called once per job, on the
    worker, so it must be picklable: a function or a partial of one, loading a checkpoint or
    building a controller), spreading the jobs over the executor's workers in contiguous
    chunks. A policy that ``make_policy`` builds deterministically gives the same results
    whatever the number of workers."""
    if not jobs:
        return []
    chunks = [
        list(c) for c in np.array_split(np.arange(len(jobs)), min(executor.workers, len(jobs)))
    ]
    results = executor.map(
        _run_jobs, [(make_policy, [jobs[i] for i in c], success_window) for c in chunks]
    )
    return [summary for chunk in results for summary in chunk]


def randomized_jobs(
    env_id: str,
    engine: str,
    episodes: int,
    seed: int,
    table: RandomizationTable | None = None,
    **env_kwargs: Any,
) -> list[EpisodeJob]:
    """``episodes`` jobs, each with parameters drawn from ``table`` (None: the env's default
    randomization table)."""
    import robot_rl
    from robot_rl.envs.randomization import sample_domain_params

    if table is None:
        table = robot_rl.envs.env_entry(env_id).randomization.table
    env = robot_rl.make(env_id, engine=engine, **env_kwargs)
    rng = np.random.default_rng(seed)
    draws = [sample_domain_params(env.nominal_params, table, rng) for _ in range(episodes)]
    env.close()
    kwargs = tuple(sorted(env_kwargs.items()))
    return [EpisodeJob(env_id, engine, p, seed + i, kwargs) for i, p in enumerate(draws)]


def default_workers() -> int:
    """CPUs this process may use."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
