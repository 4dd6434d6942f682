"""The main job: sim -> learned model -> planner -> robot -> system identification -> report.

``robot-rl run`` runs it with the embedded default ``RunConfig``; each stage leaves its
artifacts in a run folder and a kill at any point can be resumed (``--resume RUN``).
"""

from robot_rl.pipeline.config import (
    Agent,
    CollectConfig,
    EvaluateConfig,
    IdentifyConfig,
    LearnConfig,
    RobotBackend,
    RobotConfig,
    RunConfig,
)
from robot_rl.pipeline.rundir import RunDir, RunDirError
from robot_rl.pipeline.runner import execute, resume, start

__all__ = [
    "Agent",
    "CollectConfig",
    "EvaluateConfig",
    "IdentifyConfig",
    "LearnConfig",
    "RobotBackend",
    "RobotConfig",
    "RunConfig",
    "RunDir",
    "RunDirError",
    "execute",
    "resume",
    "start",
]
