"""The agents' tests use small networks: one torch thread is fastest and immune to the
OpenMP spin-waiting that makes multi-threaded small ops crawl on a loaded machine."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
