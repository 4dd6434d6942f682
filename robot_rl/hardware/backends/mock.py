"""A mock robot for tests: commands echo into the state, and failures can be injected.

Each ``write`` is one robot cycle of ``period`` seconds. The echo follows the command mode:
a position command becomes the position, a velocity command is integrated, a torque command
accelerates a unit inertia. The mock remembers every command it received and every safe
stop, so a test can assert exactly what reached the "motors".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robot_rl.envs.robots.description import ControlMode
from robot_rl.hardware.description import RobotSpec, SafeBehaviour
from robot_rl.hardware.interface import RobotInterface, RobotState, RobotTimeoutError
from robot_rl.hardware.safety import safe_command


@dataclass(frozen=True)
class MockFaults:
    """Failures to inject.

    Attributes:
        stop_answering_after: ``read`` raises ``RobotTimeoutError`` from this many reads on.
        read_delay: every ``read`` sleeps this long, s (a slow robot).
        nan_state_after: readings turn NaN from this many reads on (a sensor fault).
    """

    stop_answering_after: int | None = None
    read_delay: float = 0.0
    nan_state_after: int | None = None


def mock_spec(
    n_joints: int = 2,
    mode: ControlMode = ControlMode.VELOCITY,
    rate: float = 100.0,
    observation_size: int | None = None,
) -> RobotSpec:
    """A generic robot: every joint actuated, limits ±1 (position), ±2 (velocity), ±5 (effort),
    commands ±1 in the mode's units. Its observation starts with (position, velocity), zero-
    padded or cut to ``observation_size``."""
    ones = np.ones(n_joints)
    return RobotSpec(
        name="mock",
        joint_names=tuple(f"joint{i}" for i in range(n_joints)),
        actuated=tuple(range(n_joints)),
        mode=mode,
        command_low=-ones,
        command_high=ones,
        position_low=-ones,
        position_high=ones,
        velocity_limit=2.0 * ones,
        effort_limit=5.0 * ones,
        rate=rate,
        max_rate=10.0 * rate,
        safe_behaviour=SafeBehaviour.DAMP if mode is ControlMode.TORQUE else SafeBehaviour.HOLD,
        damping=ones,
        observation_size=2 * n_joints if observation_size is None else observation_size,
    )


class MockRobot(RobotInterface):
    """A robot that echoes commands into its state.

    Args:
        spec: the robot it pretends to be (see ``mock_spec``).
        faults: failures to inject.
        initial_position: (n_joints,) start position (default zeros).

    Attributes:
        commands: every command written, in order.
        safe_stops: number of safe stops performed.
        reads: number of reads so far.
    """

    def __init__(
        self,
        spec: RobotSpec,
        faults: MockFaults | None = None,
        initial_position: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self._mock_spec = spec
        self.faults = faults or MockFaults()
        n = spec.n_joints
        self._q0 = np.zeros(n) if initial_position is None else np.asarray(initial_position, float)
        self._q = self._q0.copy()
        self._qd = np.zeros(n)
        self._effort = np.zeros(n)
        self._applied = np.zeros(spec.n_act)
        self._time = 0.0
        self._seq = 0
        self.commands: list[np.ndarray] = []
        self.safe_stops = 0
        self.reads = 0
        self.episodes = 0

    @property
    def last_command(self) -> np.ndarray | None:
        return self.commands[-1] if self.commands else None

    def _on_configure(self) -> RobotSpec:
        return self._mock_spec

    def _start_episode(self, seed: int | None, task_state: np.ndarray | None) -> RobotState:
        self._q, self._qd = self._q0.copy(), np.zeros_like(self._q0)
        self.episodes += 1
        return self._state()

    def _read(self) -> RobotState:
        self.reads += 1
        f = self.faults
        if f.read_delay > 0:
            time.sleep(f.read_delay)
        if f.stop_answering_after is not None and self.reads > f.stop_answering_after:
            raise RobotTimeoutError(
                f"mock robot stopped answering after {f.stop_answering_after} reads"
            )
        state = self._state()
        if f.nan_state_after is not None and self.reads > f.nan_state_after:
            nan = np.full_like(state.position, np.nan)
            state = RobotState(state.time, state.seq, nan, nan, state.effort, state.observation)
        return state

    def _state(self) -> RobotState:
        spec = self.spec
        obs = np.zeros(spec.observation_size)
        echo = np.concatenate([self._q, self._qd])[: spec.observation_size]
        obs[: len(echo)] = echo
        return RobotState(
            time=self._time,
            seq=self._seq,
            position=self._q.copy(),
            velocity=self._qd.copy(),
            effort=self._effort.copy(),
            observation=obs.astype(np.float32),
            applied=self._applied.copy(),
        )

    def _write(self, command: np.ndarray) -> None:
        self.commands.append(command.copy())
        self._applied = command.copy()
        self._advance(command)

    def _advance(self, command: np.ndarray) -> None:
        spec, dt = self.spec, self.spec.period
        idx = list(spec.actuated)
        if spec.mode is ControlMode.POSITION:
            new_q = self._q.copy()
            new_q[idx] = command
            self._qd = (new_q - self._q) / dt
            self._q = new_q
        elif spec.mode is ControlMode.VELOCITY:
            self._qd[idx] = command
            self._q = self._q + self._qd * dt
        else:
            self._effort[idx] = command
            self._qd[idx] += command * dt
            self._q = self._q + self._qd * dt
        self._time += dt
        self._seq += 1

    def _safe_stop(self) -> None:
        self.safe_stops += 1
        command = safe_command(self.spec, self._state())
        self.commands.append(command)
        self._applied = command.copy()
        self._qd[:] = 0.0  # the mock's safe behaviour brings it to rest at once
