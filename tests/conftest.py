"""Shared test settings: quiet progress bars, one torch thread (tests are small)."""

from __future__ import annotations

import os

os.environ.setdefault("ROBOT_RL_NO_PROGRESS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
# One thread per torch op: the test tensors are small, and the machine is shared.
os.environ.setdefault("OMP_NUM_THREADS", "1")
