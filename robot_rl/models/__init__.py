"""Learned dynamics: a probabilistic ensemble, its trainer, and imagined rollouts for planners."""

from robot_rl.models.dataset import TransitionDataset, collect_episode
from robot_rl.models.ensemble import (
    Activation,
    GaussianEnsemble,
    GaussianPrediction,
    GroupedForward,
    MeanStep,
    check_model_dims,
)
from robot_rl.models.model_env import ModelEnv, Propagation, TerminationFn
from robot_rl.models.prediction import prediction_error_by_horizon
from robot_rl.models.simulator import ControlDelay, SimulatorDynamics
from robot_rl.models.trainer import (
    EnsembleTrainer,
    FitResult,
    ModelScore,
    check_batch,
    inputs_and_targets,
    score,
)

__all__ = [
    "Activation",
    "ControlDelay",
    "EnsembleTrainer",
    "FitResult",
    "GaussianEnsemble",
    "GaussianPrediction",
    "GroupedForward",
    "MeanStep",
    "ModelEnv",
    "ModelScore",
    "Propagation",
    "SimulatorDynamics",
    "TerminationFn",
    "TransitionDataset",
    "check_batch",
    "check_model_dims",
    "collect_episode",
    "inputs_and_targets",
    "prediction_error_by_horizon",
    "score",
]
