"""``robot-rl deploy``: run a policy on a robot (simulated, networked or mock) and record the run.

    robot-rl deploy --policy policy.onnx --env robot_rl/CartpoleSwingup-v0 --episodes 5
    robot-rl deploy --policy policy.pt --backend network --episodes 5   # a robot-server

The run goes through the safety supervisor and ends in a safe stop whatever happens (Ctrl-C,
SIGTERM, a failing policy, a lost robot); every cycle is written to ``--record``
(``robot-rl runs show|plot RUN`` reads it). Exit status: 0 when the run completed, 1 when it
ended early (the reason is printed), 130 on Ctrl-C.
"""

from __future__ import annotations

import enum
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from robot_rl.cli.common import parse_config
from robot_rl.envs import Engine
from robot_rl.hardware.backends.sim import RealityGap
from robot_rl.hardware.deploy import DeployConfig
from robot_rl.hardware.events import Termination
from robot_rl.hardware.interface import RobotInterface
from robot_rl.hardware.keys import default_key_dir
from robot_rl.hardware.loop import Pacing
from robot_rl.hardware.protocol import DEFAULT_ENDPOINT
from robot_rl.hardware.safety import SafetyConfig


class Backend(enum.Enum):
    """Which robot to deploy to."""

    SIM = "sim"  # a simulated robot in this process (--env, --engine)
    NETWORK = "network"  # a robot server (--endpoint, --keys)
    MOCK = "mock"  # a mock robot echoing commands (for trying the pipeline)


@dataclass(frozen=True)
class DeployCommand:
    """Run a policy on a robot and record every control cycle."""

    policy: str
    """An exported policy (.onnx or TorchScript), a robot_rl checkpoint, `zero` or `random[:SEED]`."""
    backend: Backend = Backend.SIM
    """Which robot: sim, network or mock."""
    env: str | None = None
    """Simulated robot (sim backend); default: the env the policy was exported for."""
    engine: Engine = Engine.MUJOCO
    """Engine of the simulated robot."""
    endpoint: str = DEFAULT_ENDPOINT
    """Robot server to connect to (network backend)."""
    keys: Path = field(default_factory=default_key_dir)
    """Key folder with client.key_secret and server.key (network backend)."""
    episodes: int = 1
    """Episodes to run (robots that can start episodes)."""
    duration: float | None = None
    """Run one continuous stretch of this many seconds instead of episodes."""
    episode_steps: int | None = None
    """Transitions per episode (default: the task's)."""
    seed: int = 0
    """Seed of the first episode; episode i uses seed + i."""
    realtime: bool = True
    """Pace a simulated or mock robot in real time (--no-realtime: as fast as it runs)."""
    rate: float | None = None
    """Control rate of a simulated robot, Hz (default: the task's)."""
    gap: RealityGap = field(default_factory=RealityGap)
    """How the simulated robot differs from its nominal model (default: no difference)."""
    history: int | None = None
    """Observations stacked into the policy input (default: the policy's metadata, else 1)."""
    action_filter: float | None = None
    """Low-pass cutoff on actions, Hz (default: the policy's metadata, else none)."""
    policy_timeout: float | None = None
    """Time budget of one policy call, s (default: 0.8 of the control period; 0: inline)."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Limits enforced between the policy and the robot."""
    record: Path | None = None
    """Run record to write (default: runs/deploy-<UTC time>.h5)."""
    no_record: bool = False
    """Do not write a run record."""


def _robot(cmd: DeployCommand, env_id: str | None) -> RobotInterface:
    if cmd.backend is Backend.NETWORK:
        from robot_rl.hardware.backends.network import NetworkRobot
        from robot_rl.hardware.keys import load_client_keys

        return NetworkRobot(load_client_keys(cmd.keys), cmd.endpoint)
    if env_id is None:
        raise SystemExit("--env is needed: the policy does not name the env it was trained on")
    if cmd.backend is Backend.MOCK:
        import robot_rl
        from robot_rl.hardware.backends.mock import MockRobot
        from robot_rl.hardware.backends.sim import SimRobot

        # A mock with the simulated robot's joints and limits: the pipeline runs, nothing
        # moves. Its echoed observations belong to no task, so nothing is scored.
        with SimRobot(robot_rl.make(env_id)) as sim:
            spec = sim.spec
        return MockRobot(spec)
    from robot_rl.hardware.backends.sim import SimRobot

    return SimRobot.make(
        env_id,
        cmd.engine,
        period=None if cmd.rate is None else 1.0 / cmd.rate,
        gap=None if cmd.gap == RealityGap() else cmd.gap,
        seed=cmd.seed,
    )


def run(cmd: DeployCommand) -> int:
    import numpy as np

    from robot_rl.hardware.deploy import deploy
    from robot_rl.hardware.policies import is_builtin, load_policy

    # Files are loaded before connecting (a bad file never touches the robot); the built-in
    # policies need the robot's action size.
    policy, metadata = None, None
    if not is_builtin(cmd.policy):
        policy, metadata = load_policy(cmd.policy)
    robot = _robot(cmd, cmd.env or (metadata.env_id if metadata and metadata.env_id else None))
    try:
        spec = robot.configure()
        if policy is None:
            policy, _ = load_policy(cmd.policy, spec.n_act)
        if metadata is not None and metadata.act_dim != spec.n_act:
            raise SystemExit(
                f"the policy outputs {metadata.act_dim} actions but robot {spec.name} "
                f"takes {spec.n_act}"
            )
    except BaseException:
        robot.shutdown()
        raise
    history = cmd.history or (metadata.history if metadata else 1)
    action_filter = cmd.action_filter or (metadata.action_filter if metadata else None)
    pacing = None if cmd.realtime else Pacing.NONE
    record = None
    if not cmd.no_record:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        record = cmd.record or Path("runs") / f"deploy-{stamp}.h5"
    config = DeployConfig(
        episodes=None if cmd.duration is not None else cmd.episodes,
        duration=cmd.duration,
        episode_steps=cmd.episode_steps,
        seed=cmd.seed,
        pacing=pacing,
        policy_timeout=cmd.policy_timeout,
        history=history,
        action_filter=action_filter,
    )
    result = deploy(
        robot,
        policy,
        config,
        cmd.safety,
        record=record,
        attrs={"policy_source": cmd.policy},
    )
    print(
        f"termination: {result.termination.value}"
        + (f" ({result.detail})" if result.detail else "")
    )
    print(f"cycles: {result.cycles}, lost: {result.lost_cycles}, overruns: {result.loop.overruns}")
    if result.episodes and np.isfinite(result.mean_return):
        returns = [e.ret for e in result.episodes]
        print(
            f"episodes: {len(returns)}, return {np.mean(returns):.3f} ± {np.std(returns):.3f}, "
            f"success {result.success_rate:.0%}"
        )
    print(f"events: {dict(sorted(result.event_counts.items()))}")
    if result.record is not None:
        print(f"record: {result.record}")
    if result.termination is Termination.INTERRUPTED:
        return 130
    return 0 if result.termination is Termination.COMPLETED else 1


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str], prog: str) -> int:
    cmd = parse_config(DeployCommand, argv, prog)
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM: safe stop like Ctrl-C
    try:
        return run(cmd)
    finally:
        signal.signal(signal.SIGTERM, previous)
