"""Learning agents: SAC, safe (Lagrangian) SAC, reset-free SAC and PETS.

The learners (``SAC``, ``SafeSAC``) hold networks, losses and gradient steps; the trainers
(``Trainer``, ``ResetFreeTrainer``) run the loop collect → update → evaluate → checkpoint.
"""

from robot_rl.agents.buffers import ReplayBuffer
from robot_rl.agents.envs import make_env
from robot_rl.agents.networks import ActorPolicy, EnsembleCritic, SquashedGaussianActor
from robot_rl.agents.pets import PETS, EpisodeLog, PETSConfig
from robot_rl.agents.reset_free import (
    ResetFreeConfig,
    ResetFreeEnv,
    ResetFreeTrainer,
    ResetReward,
)
from robot_rl.agents.sac import (
    SAC,
    Counters,
    NonFiniteError,
    Precision,
    SACConfig,
    TrainConfig,
    Trainer,
    configure_torch,
    load_actor,
)
from robot_rl.agents.safe_sac import CostEstimate, LagrangeUpdate, SafeSAC, SafeSACConfig

__all__ = [
    "PETS",
    "SAC",
    "ActorPolicy",
    "CostEstimate",
    "Counters",
    "EnsembleCritic",
    "EpisodeLog",
    "LagrangeUpdate",
    "NonFiniteError",
    "PETSConfig",
    "Precision",
    "ReplayBuffer",
    "ResetFreeConfig",
    "ResetFreeEnv",
    "ResetFreeTrainer",
    "ResetReward",
    "SACConfig",
    "SafeSAC",
    "SafeSACConfig",
    "SquashedGaussianActor",
    "TrainConfig",
    "Trainer",
    "configure_torch",
    "load_actor",
    "make_env",
]
