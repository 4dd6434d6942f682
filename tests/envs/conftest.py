from __future__ import annotations

import pytest

import robot_rl
from robot_rl.envs import Engine

ENV_IDS = [entry.id for entry in robot_rl.registered_envs()]
ENGINES = [e.value for e in Engine]


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param
