"""Neural-network building blocks shared by the dynamics ensemble and the agents.

``EnsembleLinear`` evaluates E independent linear layers as one batched matmul, so an
ensemble of E networks (dynamics members, twin critics) costs one kernel per layer rather
than a Python loop over models.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """E linear layers at once: (E, B, in_features) -> (E, B, out_features).

    Each member is initialised like ``torch.nn.Linear`` (uniform in ±1/sqrt(in_features)),
    independently.
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh weights, from ``generator`` when given (so a seed fixes the model)."""
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound, generator=generator)
        nn.init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def ensemble_mlp(
    members: int,
    in_features: int,
    out_features: int,
    hidden: Sequence[int],
    activation: Callable[[], nn.Module] = nn.SiLU,
) -> nn.Sequential:
    """E MLPs evaluated together: (E, B, in_features) -> (E, B, out_features)."""
    sizes = [in_features, *hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [EnsembleLinear(members, fan_in, fan_out), activation()]
    layers.append(EnsembleLinear(members, sizes[-1], out_features))
    return nn.Sequential(*layers)


def mlp(
    in_features: int,
    out_features: int,
    hidden: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """A plain MLP: (B, in_features) -> (B, out_features)."""
    sizes = [in_features, *hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    layers.append(nn.Linear(sizes[-1], out_features))
    return nn.Sequential(*layers)
