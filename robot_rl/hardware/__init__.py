"""The hardware abstraction layer: deploy any policy or planner to a robot, safely.

- ``RobotInterface`` (``interface.py``): configure / activate / read / write / deactivate /
  shutdown, a context manager that always ends in a safe stop; ``RobotSpec`` (joint names,
  limits, rates) describes the robot.
- ``SafetySupervisor`` (``safety.py``): limits, slew limits, soft margins, watchdog, latched
  e-stop between the policy and the robot; starts disarmed.
- ``FixedRateLoop`` (``loop.py``): deadlines, jitter and overrun accounting; observation
  history and action low-pass filter.
- Backends: ``SimRobot`` (any env on either engine), ``NetworkRobot`` + ``RobotServer``
  (ZeroMQ + CURVE, protocol in ``PROTOCOL.md``), ``MockRobot`` (failures injectable).
- ``deploy`` (``deploy.py``): runs any ``Policy`` on any robot and records every cycle
  (``record.py``, HDF5).

Policy export (TorchScript, ONNX) lives in ``robot_rl.hardware.export`` and loading policies
by name in ``robot_rl.hardware.policies``; they import torch, so they are not imported here.
"""

from robot_rl.hardware.backends.mock import MockFaults, MockRobot, mock_spec
from robot_rl.hardware.backends.network import NetworkRobot
from robot_rl.hardware.backends.server import RobotServer, ServerStatus
from robot_rl.hardware.backends.sim import RealityGap, SimRobot
from robot_rl.hardware.deploy import (
    DeployConfig,
    Deployment,
    PolicyError,
    PolicyRunner,
    RunResult,
    deploy,
)
from robot_rl.hardware.description import RobotSpec, SafeBehaviour, spec_from_robot
from robot_rl.hardware.events import Event, EventKind, EventSource, Termination
from robot_rl.hardware.interface import (
    BaseState,
    Lifecycle,
    LifecycleError,
    RobotConnectionError,
    RobotError,
    RobotInterface,
    RobotState,
    RobotStoppedError,
    RobotTimeoutError,
)
from robot_rl.hardware.keys import (
    ClientKeys,
    ServerKeys,
    default_key_dir,
    init_keys,
    load_client_keys,
    load_server_keys,
)
from robot_rl.hardware.loop import (
    FixedRateLoop,
    LoopStats,
    LowPassFilter,
    ObservationHistory,
    Pacing,
)
from robot_rl.hardware.record import RunLog, RunRecorder, read_run
from robot_rl.hardware.safety import (
    Decision,
    SafetyConfig,
    SafetyError,
    SafetySupervisor,
    safe_command,
)

__all__ = [
    "BaseState",
    "ClientKeys",
    "Decision",
    "DeployConfig",
    "Deployment",
    "Event",
    "EventKind",
    "EventSource",
    "FixedRateLoop",
    "Lifecycle",
    "LifecycleError",
    "LoopStats",
    "LowPassFilter",
    "MockFaults",
    "MockRobot",
    "NetworkRobot",
    "ObservationHistory",
    "Pacing",
    "PolicyError",
    "PolicyRunner",
    "RealityGap",
    "RobotConnectionError",
    "RobotError",
    "RobotInterface",
    "RobotServer",
    "RobotSpec",
    "RobotState",
    "RobotStoppedError",
    "RobotTimeoutError",
    "RunLog",
    "RunRecorder",
    "RunResult",
    "SafeBehaviour",
    "SafetyConfig",
    "SafetyError",
    "SafetySupervisor",
    "ServerKeys",
    "ServerStatus",
    "SimRobot",
    "Termination",
    "default_key_dir",
    "deploy",
    "init_keys",
    "load_client_keys",
    "load_server_keys",
    "mock_spec",
    "read_run",
    "safe_command",
    "spec_from_robot",
]
