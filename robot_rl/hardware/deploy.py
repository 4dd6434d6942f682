"""Run any ``Policy`` on any ``RobotInterface``, safely, and record every cycle.

One cycle (at the robot's control rate)::

    read state -> observation history -> policy (with a time budget) -> low-pass filter
      -> normalised action to command -> safety supervisor -> write -> record

The policy acts in normalised units; its action becomes a command in the robot's mode and
physical units through ``RobotSpec.command_from_action``. Between the policy and the robot
sits a ``SafetySupervisor`` (limits, slew, watchdog, e-stop; starts disarmed). The robot is a
context manager, so the run always ends in a safe stop: normally, when the policy raises or
stalls, when the robot stops answering, on Ctrl-C. Everything is written to a run record
(``record.py``) as it happens.

Episodes: a robot that can put itself into a start state (a simulated robot, a robot
server) runs ``episodes`` episodes of ``episode_steps`` transitions each, seeded ``seed``,
``seed + 1``...; the robot is deactivated (safe stop) between them. Otherwise the run is one
stretch of ``duration`` seconds. When the robot reports which task its observation belongs
to, every transition is scored with that task's reward, cost and success.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.envs.tasks.base import Task
from robot_rl.hardware.description import RobotSpec
from robot_rl.hardware.events import Event, EventKind, Termination
from robot_rl.hardware.interface import (
    Lifecycle,
    RobotError,
    RobotInterface,
    RobotState,
    RobotStoppedError,
)
from robot_rl.hardware.loop import (
    CycleTiming,
    FixedRateLoop,
    LoopStats,
    LowPassFilter,
    ObservationHistory,
    Pacing,
    Tick,
)
from robot_rl.hardware.record import (
    CycleRecord,
    EpisodeRecord,
    RunRecorder,
    intervention_mask,
    nan_array,
)
from robot_rl.hardware.safety import Decision, SafetyConfig, SafetySupervisor
from robot_rl.types import Policy


class PolicyError(RuntimeError):
    """The policy raised; the original exception is the ``__cause__``."""


WARM_UP_BUDGETS = 10
WARM_UP_SECONDS = 2.0
"""A policy's warm-up call (see ``PolicyRunner.warm_up``) may take this many call budgets
or this many seconds, whichever is longer."""


class PolicyRunner:
    """Calls ``policy.act`` with a time budget.

    With a ``timeout`` the policy runs in a worker thread: a call that does not answer in time
    returns None (the cycle has no command) and the policy is not called again until that
    call returns (its late answer is discarded), so a stalled policy never runs twice at
    once. Without a timeout the policy runs inline.

    Args:
        policy: the policy.
        timeout: time budget per call, s, or None to call inline.
    """

    def __init__(self, policy: Policy, timeout: float | None) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"policy timeout must be positive, got {timeout}")
        self.policy = policy
        self.timeout = timeout
        self._pending: concurrent.futures.Future | None = None
        self._requests: list[tuple[np.ndarray, concurrent.futures.Future]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if timeout is not None:
            self._thread = threading.Thread(target=self._work, name="policy", daemon=True)
            self._thread.start()

    @property
    def stalled(self) -> bool:
        """Whether a call that ran out of time has still not returned."""
        return self._pending is not None and not self._pending.done()

    def reset(self) -> None:
        """``policy.reset()``; waits up to one budget for a stalled call to finish first.

        Raises:
            PolicyError: the policy is still stalled, or its reset raised.
        """
        if self.stalled:
            try:
                self._pending.exception(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                raise PolicyError("the policy is still stalled; cannot reset it") from None
        self._pending = None
        try:
            self.policy.reset()
        except Exception as err:
            raise PolicyError(f"policy.reset() raised {err!r}") from err

    def warm_up(self, obs: np.ndarray) -> None:
        """One call on ``obs``, its action discarded, before a robot is armed.

        A policy's first call is its slowest (lazy allocations, first-call overheads of the
        tensor library); made here, it cannot miss the first cycles' deadlines. It gets
        ``WARM_UP_BUDGETS`` budgets or ``WARM_UP_SECONDS``, whichever is longer (a call still
        running then counts as stalled). The caller resets the policy afterwards, so the
        episode starts clean.

        Raises:
            PolicyError: the policy raised.
        """
        if self.timeout is None:
            self._call(obs)
        else:
            self._submit(obs, max(WARM_UP_BUDGETS * self.timeout, WARM_UP_SECONDS))

    def act(self, obs: np.ndarray) -> np.ndarray | None:
        """The policy's action for ``obs``, or None when it did not answer in time.

        Raises:
            PolicyError: the policy raised.
        """
        if self.timeout is None:
            return self._call(obs)
        if self.stalled:
            return None
        if self._pending is not None:  # a stalled call came back late: drop its answer
            late, self._pending = self._pending, None
            if late.exception() is not None:
                raise PolicyError(f"policy raised {late.exception()!r}") from late.exception()
        return self._submit(obs, self.timeout)

    def _submit(self, obs: np.ndarray, timeout: float) -> np.ndarray | None:
        """Hand ``obs`` to the worker; its action, or None (stalled) after ``timeout`` s."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._wake:
            self._requests.append((obs, future))
            self._wake.notify()
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            self._pending = future
            return None
        except Exception as err:
            raise PolicyError(f"policy raised {err!r}") from err

    def close(self, grace: float = 2.0) -> None:
        """Stop the worker thread. A call still running gets ``grace`` s to return (a thread
        busy in native code when the interpreter exits aborts the process); one stalled for
        longer is abandoned (the thread is a daemon)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=grace)

    def _call(self, obs: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self.policy.act(obs), dtype=np.float64)
        except Exception as err:
            raise PolicyError(f"policy raised {err!r}") from err

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._requests and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                obs, future = self._requests.pop(0)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(np.asarray(self.policy.act(obs), dtype=np.float64))
            except BaseException as err:  # handed to the caller
                future.set_exception(err)


@dataclass(frozen=True)
class DeployConfig:
    """How to run a policy on a robot."""

    episodes: int | None = 1
    """Episodes to run (robots that can start episodes); None to run for ``duration``."""
    episode_steps: int | None = None
    """Transitions per episode (default: the task's episode length)."""
    duration: float | None = None
    """Length of a run without episodes, s of robot time."""
    seed: int = 0
    """Seed of the first episode's start state; episode i uses seed + i."""
    pacing: Pacing | None = None
    """Who keeps the rate (default: the robot if it paces itself, else a timer; NONE runs a
    simulated robot as fast as it goes)."""
    spin: float = 2e-4
    """With TIMER pacing, busy-wait this long before each deadline instead of sleeping, s
    (less jitter for a little CPU; 0 to only sleep)."""
    policy_timeout: float | None = None
    """Time budget of one policy call, s (default: 0.8 of the period, or none without pacing;
    0: call the policy inline with no budget, leaving stalls to the robot's own watchdog)."""
    history: int = 1
    """Observations stacked into the policy's input (the policy was trained with this many)."""
    action_filter: float | None = None
    """Low-pass filter cutoff on actions, Hz (None: unfiltered)."""
    stop_on_termination: bool = True
    """End an episode when the task says its state is terminal."""
    chunk_cycles: int = 100
    """Cycles buffered between writes of the run record (a crash loses at most these)."""

    def __post_init__(self) -> None:
        if (self.episodes is None) == (self.duration is None):
            raise ValueError("give exactly one of episodes and duration")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.episode_steps is not None and self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {self.episode_steps}")
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history}")
        if self.spin < 0:
            raise ValueError(f"spin must be >= 0 s, got {self.spin}")
        if self.policy_timeout is not None and self.policy_timeout < 0:
            raise ValueError(f"policy_timeout must be >= 0 s, got {self.policy_timeout}")


@dataclass(frozen=True)
class RunResult:
    """What happened in a deployment.

    Attributes:
        termination: why it ended.
        detail: the error behind a termination other than COMPLETED, if any.
        cycles: control cycles run.
        episodes: per-episode totals.
        event_counts: event kind name -> count.
        lost_cycles: deadlines skipped plus commands the robot counted missing.
        loop: timing statistics.
        record: the run record, if one was written.
    """

    termination: Termination
    detail: str
    cycles: int
    episodes: tuple[EpisodeRecord, ...]
    event_counts: dict[str, int]
    lost_cycles: int
    loop: LoopStats
    record: Path | None

    @property
    def mean_return(self) -> float:
        return float(np.mean([e.ret for e in self.episodes])) if self.episodes else math.nan

    @property
    def success_rate(self) -> float:
        return float(np.mean([e.success for e in self.episodes])) if self.episodes else math.nan


class _StopRunError(Exception):
    """Ends the run: raised inside the cycle with the termination reason."""

    def __init__(self, reason: Termination, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def task_from_spec(spec: RobotSpec) -> Task | None:
    """The task the robot's observation belongs to (None if it reports none)."""
    if not spec.task:
        return None
    from robot_rl.envs import env_entry

    return env_entry(spec.task).task()


class Deployment:
    """One deployment of ``policy`` on ``robot`` (see the module docstring); call ``run`` once.

    Args:
        robot: the robot (unconfigured; the deployment configures and shuts it down).
        policy: acts on the (stacked) task observation, in normalised units.
        config: episodes, pacing, history, filtering.
        safety: the supervisor's limits.
        record: path of the run record to write (None: no record).
        attrs: extra attributes for the record (policy name, engine ...).
        task: scores transitions (default: the task the robot reports).
    """

    def __init__(
        self,
        robot: RobotInterface,
        policy: Policy,
        config: DeployConfig | None = None,
        safety: SafetyConfig | None = None,
        record: str | Path | None = None,
        attrs: Mapping[str, Any] | None = None,
        task: Task | None = None,
    ) -> None:
        self.robot = robot
        self.policy = policy
        self.config = config or DeployConfig()
        self.safety = safety or SafetyConfig()
        self.record_path = None if record is None else Path(record)
        self.attrs = dict(attrs or {})
        self.task = task
        self._events: dict[str, int] = {}
        self._cycle_events: list[Event] = []
        self._cycle = 0
        self._t0 = time.perf_counter()
        self._rate = math.nan
        self._episodes: list[EpisodeRecord] = []
        self._recorder: RunRecorder | None = None
        self._timing: dict[str, list[float]] = {"period": [], "lateness": [], "compute": []}
        self._skipped = self._overruns = self._robot_missed = 0
        self._robot_missed_seen: int | None = None

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Configure the robot, run, always safe-stop and shut it down.

        A failing policy or robot and Ctrl-C end the run with their termination reason; only
        a robot that cannot be configured or an invalid setup (a robot without a task
        observation) raise, after the robot has been shut down."""
        termination, detail = Termination.ERROR, ""
        runner: PolicyRunner | None = None
        try:
            with self.robot:
                spec = self.robot.spec
                self._prepare(spec)
                runner = PolicyRunner(self.policy, self._policy_timeout(spec))
                termination, detail = self._run_all(spec, runner)
            self._note(Event(-1, self._now(), EventKind.SAFE_STOP, detail="shutdown"))
        except KeyboardInterrupt:
            termination, detail = Termination.INTERRUPTED, "Ctrl-C"
        except Exception as err:
            termination, detail = Termination.ERROR, repr(err)
            self._finish(termination)
            raise
        finally:
            if runner is not None:
                runner.close()
        self._finish(termination)
        return RunResult(
            termination=termination,
            detail=detail,
            cycles=self._cycle,
            episodes=tuple(self._episodes),
            event_counts=dict(self._events),
            lost_cycles=self._skipped + self._robot_missed,
            loop=self._stats(),
            record=self.record_path,
        )

    def _prepare(self, spec: RobotSpec) -> None:
        cfg = self.config
        if spec.observation_size < 1:
            raise ValueError(f"robot {spec.name} reports no task observation to act on")
        if self.task is None:
            self.task = task_from_spec(spec)
        self._rate = spec.rate
        self.pacing = cfg.pacing or (Pacing.ROBOT if self.robot.paced else Pacing.TIMER)
        if self.pacing is Pacing.ROBOT and not self.robot.paced:
            raise ValueError(f"{type(self.robot).__name__} does not pace itself; use TIMER or NONE")
        self.supervisor = SafetySupervisor(spec, self.safety)
        self.history = ObservationHistory(cfg.history, spec.observation_size)
        self.filter = (
            None
            if cfg.action_filter is None
            else LowPassFilter.from_cutoff(cfg.action_filter, spec.rate)
        )
        if self.record_path is not None:
            attrs = {
                "backend": type(self.robot).__name__,
                "rate": spec.rate,
                "pacing": self.pacing.value,
                "task": spec.task,
                "policy": type(self.policy).__name__,
                "deploy_config": json_config(cfg),
                "safety_config": json_config(self.safety),
                **self.robot.describe(),
                **self.attrs,
            }
            self._recorder = RunRecorder(
                self.record_path,
                spec,
                spec.observation_size,
                attrs=attrs,
                chunk_cycles=cfg.chunk_cycles,
            )

    def _policy_timeout(self, spec: RobotSpec) -> float | None:
        timeout = self.config.policy_timeout
        if timeout is not None:
            return timeout or None  # 0: inline
        return None if self.pacing is Pacing.NONE else 0.8 * spec.period

    def _run_all(self, spec: RobotSpec, runner: PolicyRunner) -> tuple[Termination, str]:
        cfg = self.config
        if cfg.episodes is None:
            steps = max(1, round(cfg.duration * spec.rate))
            return self._episode(0, steps, runner, start=False)
        steps = cfg.episode_steps
        if steps is None:
            if self.task is None:
                raise ValueError("episode_steps is needed when the robot reports no task")
            steps = self.task.episode_steps
        for i in range(cfg.episodes):
            termination, detail = self._episode(i, steps, runner, start=True)
            if termination is not Termination.COMPLETED:
                return termination, detail
        return Termination.COMPLETED, ""

    def _episode(
        self, index: int, steps: int, runner: PolicyRunner, start: bool
    ) -> tuple[Termination, str]:
        robot, spec = self.robot, self.robot.spec
        try:
            state = robot.start_episode(seed=self.config.seed + index) if start else robot.read()
            self.history.reset()
            runner.warm_up(self.history.push(state.observation))
            runner.reset()
            robot.activate()
        except PolicyError as err:
            self._note(Event(self._cycle, self._now(), EventKind.POLICY_ERROR, detail=str(err)))
            return Termination.POLICY_ERROR, str(err)
        except RobotError as err:  # the robot cannot start (it is gone, or its e-stop latched)
            return self._robot_failure(err)
        self.history.reset()
        if self.filter is not None:
            self.filter.reset()
        self._robot_missed_seen = None
        self._note(self.supervisor.arm(state, self._cycle, self._now()))
        self._note(
            Event(self._cycle, self._now(), EventKind.EPISODE_START, detail=f"episode {index}")
        )
        loop = FixedRateLoop(spec.rate, self.pacing, spin=self.config.spin)
        first = self._cycle
        totals = {"return": 0.0, "cost": 0.0}
        success = False
        termination, detail = Termination.COMPLETED, ""
        try:
            previous: tuple[np.ndarray, np.ndarray] | None = None  # (observation, action)
            last_start = None
            for step in range(steps + 1):
                state, tick = self._sample(loop)
                scores = self._score(previous, state)
                if scores is not None:
                    totals["return"] += scores[0]
                    totals["cost"] += scores[1]
                    success = scores[2]
                final = step == steps or (
                    scores is not None and scores[3] and self.config.stop_on_termination
                )
                failure = None
                try:
                    action, decision = self._act(state, runner, final)
                except PolicyError as err:  # the cycle is still recorded, then the run ends
                    self._note(
                        Event(self._cycle, self._now(), EventKind.POLICY_ERROR, detail=str(err))
                    )
                    action, decision = nan_array(spec.n_act), None
                    failure = _StopRunError(Termination.POLICY_ERROR, str(err))
                except RobotError as err:
                    action, decision = nan_array(spec.n_act), None
                    failure = _StopRunError(*self._robot_failure(err))
                timing = loop.finish(tick)
                self._log_cycle(
                    index, step, state, tick, timing, action, decision, scores, last_start
                )
                last_start = tick.start
                if failure is not None:
                    raise failure
                if decision is not None and decision.stop is not None:
                    raise _StopRunError(
                        decision.stop, decision.events[-1].detail if decision.events else ""
                    )
                if final:
                    break
                previous = (state.observation, spec.action_from_command(decision.applied))
        except _StopRunError as stop:
            termination, detail = stop.reason, stop.detail
        except RobotError as err:  # reading the robot failed
            termination, detail = self._robot_failure(err)
        finally:
            self.supervisor.disarm()
        if robot.lifecycle is Lifecycle.ACTIVE:
            try:
                robot.deactivate()
                self._note(
                    Event(self._cycle, self._now(), EventKind.SAFE_STOP, detail=termination.value)
                )
            except RobotError as err:
                self._note(
                    Event(
                        self._cycle, self._now(), EventKind.COMMS_LOST, detail=f"safe stop: {err}"
                    )
                )
                if termination is Termination.COMPLETED:
                    termination, detail = Termination.COMMS_LOST, str(err)
        self._note(Event(self._cycle, self._now(), EventKind.EPISODE_END, detail=termination.value))
        scored = self.task is not None  # without a task there is nothing to score
        episode = EpisodeRecord(
            index,
            first,
            self._cycle - first,
            totals["return"] if scored else math.nan,
            totals["cost"] if scored else math.nan,
            success,
            termination.value,
        )
        self._episodes.append(episode)
        if self._recorder is not None:
            self._recorder.add_episode(episode)
        return termination, detail

    # -- one cycle -----------------------------------------------------------------------------------
    def _sample(self, loop: FixedRateLoop) -> tuple[RobotState, Tick]:
        if loop.pacing is Pacing.ROBOT:
            state = self.robot.read()
            tick = loop.wait()
        else:
            tick = loop.wait()
            state = self.robot.read()
        for event in self.robot.poll_events():
            self._note(dataclasses.replace(event, cycle=self._cycle))
        return state, tick

    def _score(
        self, previous: tuple[np.ndarray, np.ndarray] | None, state: RobotState
    ) -> tuple[float, float, bool, bool] | None:
        """(reward, cost, success, terminated) of the transition into ``state``."""
        if previous is None or self.task is None:
            return None
        obs, action = previous
        next_obs = np.asarray(state.observation, dtype=np.float64)
        obs = np.asarray(obs, dtype=np.float64)
        action = np.clip(action, -1.0, 1.0)
        task = self.task
        return (
            float(task.reward(obs, action, next_obs)),
            float(task.cost(obs, action, next_obs)),
            bool(task.success(next_obs)),
            bool(task.termination(obs, action, next_obs)),
        )

    def _act(
        self, state: RobotState, runner: PolicyRunner, final: bool
    ) -> tuple[np.ndarray, Decision | None]:
        """Policy, filter, supervisor and write: (the policy's action, the supervisor's
        decision); on the final cycle of an episode nothing is sent."""
        spec = self.robot.spec
        if final:
            return nan_array(spec.n_act), None
        obs = self.history.push(state.observation)
        action = runner.act(obs)
        now = self._now()
        if action is None:
            self._note(Event(self._cycle, now, EventKind.POLICY_STALL, detail="no action in time"))
            desired = None
            action = nan_array(spec.n_act)
        else:
            if self.filter is not None and action.shape == (spec.n_act,):
                action = self.filter(action)
            desired = spec.command_from_action(action) if action.shape == (spec.n_act,) else action
        decision = self.supervisor.step(state, desired, self._cycle, now)
        for event in decision.events:
            self._note(event)
        self.robot.write(decision.applied)
        if action.shape != (spec.n_act,):
            action = nan_array(spec.n_act)
        return action, decision

    def _log_cycle(
        self,
        episode: int,
        step: int,
        state: RobotState,
        tick: Tick,
        timing: CycleTiming,
        action: np.ndarray,
        decision: Decision | None,
        scores: tuple[float, float, bool, bool] | None,
        last_start: float | None,
    ) -> None:
        spec = self.robot.spec
        seen = self._robot_missed_seen
        missed = 0 if seen is None else max(0, state.missed - seen)
        self._robot_missed_seen = state.missed
        self._robot_missed += missed
        self._skipped += tick.skipped
        self._overruns += timing.overrun
        if timing.overrun:
            detail = f"cycle took {timing.compute * 1e3:.2f} ms"
            self._note(Event(self._cycle, self._now(), EventKind.OVERRUN, detail=detail))
        if last_start is not None:
            self._timing["period"].append(tick.start - last_start)
        self._timing["lateness"].append(tick.lateness)
        self._timing["compute"].append(timing.compute)
        if self._recorder is not None:
            n_act = spec.n_act
            cycle_events = [e for e in self._cycle_events if e.cycle == self._cycle]
            self._recorder.append(
                CycleRecord(
                    cycle=self._cycle,
                    episode=episode,
                    step=step,
                    seq=state.seq,
                    t_start=tick.start - self._t0,
                    t_robot=state.time,
                    lateness=tick.lateness,
                    compute=timing.compute,
                    overrun=timing.overrun,
                    skipped=tick.skipped,
                    round_trip=state.round_trip,
                    robot_missed=missed,
                    position=state.position,
                    velocity=state.velocity,
                    effort=state.effort,
                    observation=state.observation,
                    action=action,
                    desired=decision.desired if decision is not None else nan_array(n_act),
                    applied=decision.applied if decision is not None else nan_array(n_act),
                    robot_applied=state.applied if state.applied is not None else nan_array(n_act),
                    reward=scores[0] if scores else math.nan,
                    cost=scores[1] if scores else math.nan,
                    success=scores[2] if scores else False,
                    interventions=intervention_mask(cycle_events),
                )
            )
        self._cycle_events = []
        self._cycle += 1

    # -- bookkeeping ----------------------------------------------------------------------------------
    def _note(self, event: Event) -> None:
        self._events[event.kind.name] = self._events.get(event.kind.name, 0) + 1
        self._cycle_events.append(event)
        if self._recorder is not None:
            self._recorder.add_events([event])

    def _robot_failure(self, err: RobotError) -> tuple[Termination, str]:
        if isinstance(err, RobotStoppedError):
            self._note(Event(self._cycle, self._now(), EventKind.ROBOT_STOPPED, detail=str(err)))
            return Termination.ROBOT_STOPPED, str(err)
        self._note(Event(self._cycle, self._now(), EventKind.COMMS_LOST, detail=str(err)))
        return Termination.COMMS_LOST, str(err)

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _stats(self) -> LoopStats:
        t = self._timing
        return LoopStats.from_arrays(
            self._rate,
            np.array(t["period"]),
            np.array(t["lateness"]),
            np.array(t["compute"]),
            self._skipped,
            self._overruns,
        )

    def _finish(self, termination: Termination) -> None:
        if self._recorder is not None:
            self._recorder.close(termination, dataclasses.asdict(self._stats()))
            self._recorder = None


def json_config(config: Any) -> str:
    """A frozen config dataclass as JSON (Enums by value)."""

    def encode(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    return json.dumps(dataclasses.asdict(config), default=encode, sort_keys=True)


def deploy(
    robot: RobotInterface,
    policy: Policy,
    config: DeployConfig | None = None,
    safety: SafetyConfig | None = None,
    record: str | Path | None = None,
    attrs: Mapping[str, Any] | None = None,
    task: Task | None = None,
) -> RunResult:
    """Run ``policy`` on ``robot`` (see ``Deployment``) and return what happened."""
    return Deployment(robot, policy, config, safety, record, attrs, task).run()
