"""Learned dynamics: a probabilistic ensemble, its trainer, and imagined rollouts for planners."""

from robot_rl.models.ensemble import (
    Activation,
    GaussianEnsemble,
    GaussianPrediction,
    GroupedForward,
    check_model_dims,
)

__all__ = [
    "Activation",
    "GaussianEnsemble",
    "GaussianPrediction",
    "GroupedForward",
    "check_model_dims",
]
