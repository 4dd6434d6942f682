"""Fixtures for the hardware tests: CURVE keys, a robot server in a thread, small policies."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from robot_rl.hardware import (
    MockRobot,
    RobotInterface,
    RobotServer,
    SafetyConfig,
    init_keys,
    load_client_keys,
    load_server_keys,
    mock_spec,
)


class LinearPolicy:
    """tanh(W obs) with a seeded random W: deterministic, smooth, inside [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, seed: int = 0, scale: float = 0.5) -> None:
        self.W = np.random.default_rng(seed).normal(0.0, scale, (act_dim, obs_dim))
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.tanh(self.W @ np.asarray(obs, dtype=np.float64))


class ScriptedPolicy:
    """Returns the given actions in order (then repeats the last), calling ``hook(step)`` first."""

    def __init__(
        self, actions: list[np.ndarray], hook: Callable[[int], None] | None = None
    ) -> None:
        self.actions = actions
        self.hook = hook
        self.step = 0
        self.seen: list[np.ndarray] = []

    def reset(self) -> None:
        self.step = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.hook is not None:
            self.hook(self.step)
        self.seen.append(np.array(obs))
        action = self.actions[min(self.step, len(self.actions) - 1)]
        self.step += 1
        return action


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler for the test, whatever the process inherited.

    A shell starts background jobs with SIGINT ignored; a test that sends itself Ctrl-C would
    then never see it.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def linear_policy() -> type[LinearPolicy]:
    return LinearPolicy


@pytest.fixture
def scripted_policy() -> type[ScriptedPolicy]:
    return ScriptedPolicy


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_keys(tmp_path_factory.mktemp("keys") / "robot")


@dataclass
class Served:
    """A robot server running in a thread."""

    server: RobotServer
    robot: RobotInterface
    endpoint: str
    thread: threading.Thread
    stop: threading.Event


def serve_in_thread(
    robot: RobotInterface, key_dir: Path, safety: SafetyConfig | None = None
) -> Served:
    server = RobotServer(
        robot, load_server_keys(key_dir), "tcp://127.0.0.1:*", safety=safety, session_timeout=1.0
    )
    endpoint = server.start()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    return Served(server, robot, endpoint, thread, stop)


@pytest.fixture
def serve(key_dir: Path) -> Iterator[Callable[..., Served]]:
    """Start robot servers in threads (stopped after the test): ``serve(robot, safety)``."""
    started: list[Served] = []

    def start(robot: RobotInterface, safety: SafetyConfig | None = None) -> Served:
        started.append(serve_in_thread(robot, key_dir, safety))
        return started[-1]

    yield start
    for served in started:
        served.stop.set()
        served.thread.join(timeout=10)
        assert not served.thread.is_alive()


@pytest.fixture
def served_mock(serve: Callable[..., Served]) -> Served:
    """A 50 Hz two-joint velocity-controlled mock robot behind a robot server."""
    return serve(MockRobot(mock_spec(rate=50.0)))


@pytest.fixture
def client_keys(key_dir: Path):
    return load_client_keys(key_dir)
