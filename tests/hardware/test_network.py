"""The networked robot: protocol, authentication, and the faults a robot server must survive."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

from robot_rl.hardware import (
    DeployConfig,
    Lifecycle,
    MockRobot,
    NetworkRobot,
    RobotConnectionError,
    RobotError,
    SafetyConfig,
    Termination,
    deploy,
    load_client_keys,
    load_server_keys,
    mock_spec,
    read_run,
    safe_command,
)
from robot_rl.hardware.backends.lossy import LossyLink
from robot_rl.hardware.backends.network import send_estop
from robot_rl.hardware.keys import ClientKeys, KeyPair
from robot_rl.hardware.protocol import MessageType, decode

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_a_client_drives_the_robot_through_the_lifecycle(served_mock, client_keys) -> None:
    robot = NetworkRobot(client_keys, served_mock.endpoint, timeout=2.0)
    with robot:
        spec = robot.spec
        assert spec.to_dict() == served_mock.robot.spec.to_dict()
        assert robot.describe()["protocol"] == 1
        state = robot.start_episode(seed=1)
        assert state.position.shape == (2,)
        robot.activate()
        for _ in range(10):
            state = robot.read()
            robot.write(np.array([0.5, -0.5]))
        state = robot.read()
        assert state.seq == 10
        np.testing.assert_allclose(state.applied, [0.5, -0.5])  # in force on the robot
        assert np.isfinite(state.round_trip)
        assert state.round_trip > 0
        np.testing.assert_allclose(state.position, [0.1, -0.1])  # 10 cycles of 0.5 at 50 Hz
        robot.deactivate()
        status = robot.status()
        assert status["ticks"] == 10
        assert status["active"] is False
    assert served_mock.robot.safe_stops >= 1
    np.testing.assert_array_equal(served_mock.robot.last_command, [0.0, 0.0])


def test_deploying_over_the_network_records_round_trips(
    served_mock, client_keys, tmp_path: Path, linear_policy
) -> None:
    result = deploy(
        NetworkRobot(client_keys, served_mock.endpoint),
        linear_policy(4, 2),
        DeployConfig(episodes=2, episode_steps=25),
        record=tmp_path / "net.h5",
    )
    assert result.termination is Termination.COMPLETED
    log = read_run(tmp_path / "net.h5")
    assert log.attrs["backend"] == "NetworkRobot"
    assert log.attrs["protocol"] == 1
    assert log.attrs["pacing"] == "robot"
    assert np.isfinite(log.cycles["round_trip"]).sum() >= 40
    # The robot reports the command this client sent the cycle before (unless it was late).
    on_time = log.cycles["robot_missed"][1:26] == 0
    np.testing.assert_array_equal(
        log.cycles["robot_applied"][1:26][on_time], log.cycles["applied"][:25][on_time]
    )


def stranger_keys(tmp_path: Path, server_public: bytes) -> ClientKeys:
    public, secret = zmq.auth.load_certificate(
        zmq.auth.create_certificates(tmp_path, "stranger")[1]
    )
    return ClientKeys(KeyPair(public, secret), server_public)


def test_a_client_without_an_authorized_key_is_refused_and_nothing_moves(
    served_mock, client_keys, tmp_path: Path
) -> None:
    stranger = stranger_keys(tmp_path, client_keys.server_public)
    with pytest.raises(RobotConnectionError, match="does not accept this client's key"):
        NetworkRobot(stranger, served_mock.endpoint, timeout=0.5).configure()
    # The right client key but the wrong server key: the client refuses the server.
    impostor = ClientKeys(client_keys.pair, stranger.pair.public)
    with pytest.raises(RobotConnectionError):
        NetworkRobot(impostor, served_mock.endpoint, timeout=0.5).configure()
    with pytest.raises(RobotError):
        send_estop(stranger, served_mock.endpoint, timeout=0.5)
    assert served_mock.robot.commands == []
    assert served_mock.robot.safe_stops == 0
    assert served_mock.server.status.sessions == 0
    assert not served_mock.server.supervisor.estopped


def test_one_session_at_a_time_and_versions_must_match(served_mock, client_keys) -> None:
    second = NetworkRobot(client_keys, served_mock.endpoint)
    with (
        NetworkRobot(client_keys, served_mock.endpoint),
        pytest.raises(RobotConnectionError, match="busy"),
    ):
        second.configure()
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as sock:
        sock.curve_publickey, sock.curve_secretkey = (
            client_keys.pair.public,
            client_keys.pair.secret,
        )
        sock.curve_serverkey = client_keys.server_public
        sock.connect(served_mock.endpoint)
        sock.send(json.dumps({"protocol": 99, "type": "hello"}).encode())
        assert sock.poll(2000)
        kind, message = decode(sock.recv())
        assert kind is MessageType.ERROR
        assert message["code"] == "version"
        sock.send(b"\xff not json")
        assert sock.poll(2000)
        assert decode(sock.recv())[1]["code"] == "bad_message"


def test_an_estop_from_anywhere_stops_the_robot_and_latches(
    served_mock, client_keys, scripted_policy
) -> None:
    def press(step: int) -> None:
        if step == 10:
            send_estop(client_keys, served_mock.endpoint, reason="red button")

    robot = NetworkRobot(client_keys, served_mock.endpoint)
    result = deploy(
        robot, scripted_policy([np.array([0.3, 0.3])], hook=press), DeployConfig(episode_steps=100)
    )
    assert result.termination is Termination.ROBOT_STOPPED
    assert "estop" in result.detail
    assert served_mock.server.supervisor.estop_reason == "red button"
    np.testing.assert_array_equal(served_mock.robot.last_command, [0.0, 0.0])
    with NetworkRobot(client_keys, served_mock.endpoint) as again:
        with pytest.raises(RobotError, match="e-stop latched"):
            again.activate()
        again.reset_estop()
        again.activate()
        again.read()


def test_the_server_watchdog_stops_the_robot_when_the_client_is_killed(
    serve, key_dir: Path, tmp_path: Path
) -> None:
    served_mock = serve(MockRobot(mock_spec(rate=50.0)), SafetyConfig(watchdog_cycles=5))
    record = tmp_path / "client.h5"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from robot_rl.hardware import DeployConfig, NetworkRobot, deploy, load_client_keys

        class Push:
            def reset(self): pass
            def act(self, obs): return np.array([0.4, -0.4])

        robot = NetworkRobot(load_client_keys({str(key_dir)!r}), {served_mock.endpoint!r})
        deploy(robot, Push(), DeployConfig(episodes=None, duration=60.0, chunk_cycles=10),
               record={str(record)!r})
        """
    )
    client = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        server = served_mock.server
        wait_for(lambda: server.status.ticks >= 30, timeout=60)
        client.kill()
        client.wait(timeout=10)
        wait_for(lambda: server.status.watchdog_trips == 1)
    finally:
        client.kill()
    robot = served_mock.robot
    assert not server._active
    assert server.status.last_stop == "watchdog"
    assert robot.safe_stops == 1
    assert robot.lifecycle is Lifecycle.INACTIVE
    np.testing.assert_array_equal(robot.last_command, safe_command(robot.spec, robot._state()))
    # The killed client's record is readable up to its last chunk.
    log = read_run(record)
    assert not log.complete
    assert log.n_cycles >= 20
    assert log.n_cycles % 10 == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_server_ends_the_run_as_comms_lost(
    key_dir: Path, tmp_path: Path, scripted_policy
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from robot_rl.cli import main; sys.exit(main())",
         "robot-server", "--robot", "robot_rl/CartpoleSwingup-v0", "--engine", "mujoco",
         "--bind", endpoint, "--keys", str(key_dir), "--no-verbose"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "serving" in server.stdout.readline()

        def kill(step: int) -> None:
            if step == 10:
                server.kill()

        robot = NetworkRobot(load_client_keys(key_dir), endpoint, timeout=0.5)
        policy = scripted_policy([np.array([0.2])], hook=kill)
        start = time.monotonic()
        result = deploy(robot, policy, DeployConfig(episodes=3), record=tmp_path / "r.h5")
        assert time.monotonic() - start < 30
    finally:
        server.kill()
        server.wait(timeout=10)
    assert result.termination is Termination.COMMS_LOST
    assert "sent nothing" in result.detail
    assert robot.lifecycle is Lifecycle.FINALIZED
    log = read_run(tmp_path / "r.h5")
    assert log.complete
    assert log.termination == "comms_lost"
    assert log.n_cycles >= 10


def lossy_link(key_dir: Path, upstream: str, **faults) -> LossyLink:
    return LossyLink(load_server_keys(key_dir), load_client_keys(key_dir), upstream, **faults)


def test_dropped_and_delayed_commands_are_held_counted_and_survived(
    serve, key_dir: Path, tmp_path: Path, linear_policy
) -> None:
    served = serve(MockRobot(mock_spec(rate=50.0)), SafetyConfig(watchdog_cycles=10))
    link = lossy_link(
        key_dir, served.endpoint, drop={10, 20, 21, 40}, delay={30, 50}, delay_by=0.03
    )
    try:
        result = deploy(
            NetworkRobot(load_client_keys(key_dir), link.endpoint),
            linear_policy(4, 2),
            DeployConfig(episode_steps=80),
            record=tmp_path / "r.h5",
        )
    finally:
        link.close()
    status = served.server.status
    assert result.termination is Termination.COMPLETED
    assert sorted(link.dropped) == [10, 20, 21, 40]
    assert sorted(link.delayed) == [30, 50]
    assert status.missed >= 6
    assert status.late >= 2
    log = read_run(tmp_path / "r.h5")
    assert 6 <= log.lost_cycles() <= status.missed
    late = [e for e in log.events if e.kind.name == "LATE_MESSAGE"]
    assert len(late) >= 2
    assert all(e.source.name == "ROBOT" for e in late)
    held = [e for e in log.events if e.kind.name == "MISSED_COMMAND" and e.source.name == "ROBOT"]
    assert len(held) >= 6


def test_a_burst_of_lost_commands_trips_the_server_watchdog(
    serve, key_dir: Path, tmp_path: Path, linear_policy
) -> None:
    served = serve(MockRobot(mock_spec(rate=50.0)), SafetyConfig(watchdog_cycles=3))
    link = lossy_link(key_dir, served.endpoint, drop=set(range(15, 25)))
    try:
        result = deploy(
            NetworkRobot(load_client_keys(key_dir), link.endpoint),
            linear_policy(4, 2),
            DeployConfig(episode_steps=80),
            record=tmp_path / "r.h5",
        )
    finally:
        link.close()
    assert result.termination is Termination.ROBOT_STOPPED
    assert "watchdog" in result.detail
    assert served.server.status.watchdog_trips == 1
    robot = served.robot
    np.testing.assert_array_equal(robot.last_command, [0.0, 0.0])  # held still
    log = read_run(tmp_path / "r.h5")
    assert log.complete
    assert log.termination == "robot_stopped"
