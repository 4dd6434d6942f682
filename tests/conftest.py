"""Shared test settings: quiet progress bars and one compute thread.

Tests use small models, where one thread is fastest and immune to the OpenMP spin-waiting
that makes multi-threaded small ops crawl on a loaded machine. The thread counts are set
through the environment, before torch or any BLAS is loaded, so tests that never need torch
do not pay for importing it.
"""

from __future__ import annotations

import os

os.environ.setdefault("ROBOT_RL_NO_PROGRESS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
