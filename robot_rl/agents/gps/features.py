"""What the global policy reads from an observation.

GPS trains its policy on a handful of conditions (training goals). Which observation features
the network sees decides whether it can carry what it learned to other goals:

- ``RAW``: the whole observation.
- ``GOAL_FREE``: the observation without the absolute goal coordinates. The goal is implied by
  the rest (forward kinematics of q minus the tip-goal offset), so nothing is lost, and the
  network cannot tell the conditions apart by their constant goal coordinates.
- ``BASE_FRAME``: for arms whose first joint turns the whole arm about the vertical axis
  through the base, the tip-goal offset (and, for the 7-DoF arm, the flange position) are
  rotated into the frame of that first joint, which is then left out. The task is symmetric
  under that rotation, so a policy on these features acts the same on a goal and on the goal
  turned about the base: four training goals then cover every direction.

Every feature map is a small ``nn.Module`` (TorchScript-compatible), so it is part of the
policy's weights, checkpoint and export.

A feature map may also declare its **rest state**: ``rest_mask`` (out_features,) is 1 for the
features of the arm's configuration and 0 for those that vanish when the arm is at rest with
its tip on the goal (velocities, tip-goal offsets). ``features * rest_mask`` is then the
features of the same configuration at rest on the goal, which the policy can be anchored to
(``GaussianPolicy(rest_anchor=True)``). ``None``: no rest state is known (e.g. the raw
observation, whose goal coordinates would have to move to the tip).
"""

from __future__ import annotations

import enum

import torch
from torch import nn

from robot_rl.envs.tasks.base import Task
from robot_rl.envs.tasks.reaching import ArmReach, ReacherTwoLink


class Features(enum.Enum):
    """Which features the global policy reads (see the module docstring)."""

    RAW = "raw"
    GOAL_FREE = "goal_free"
    BASE_FRAME = "base_frame"


class SelectFeatures(nn.Module):
    """The observation entries ``indices``: (..., obs) -> (..., len(indices))."""

    def __init__(self, indices: list[int], rest_mask: list[float] | None = None) -> None:
        super().__init__()
        if not indices or min(indices) < 0:
            raise ValueError(f"feature indices must be non-empty and non-negative, got {indices}")
        if rest_mask is not None and len(rest_mask) != len(indices):
            raise ValueError(
                f"rest_mask needs one entry per index ({len(indices)}), got {len(rest_mask)}"
            )
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.long))
        self.out_features = len(indices)
        self.rest_mask = None if rest_mask is None else torch.tensor(rest_mask)
        self.spec: dict = {"type": "select", "indices": list(indices)}
        if rest_mask is not None:
            self.spec["rest_mask"] = [float(v) for v in rest_mask]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.index_select(-1, self.indices)


class ReacherBaseFrame(nn.Module):
    """Two-link reacher: (..., 10) -> (..., 6) = cos q2, sin q2, q̇ (2), R(-q1)(tip - goal) (2).

    The offset is scaled from m to dm so all features are of order one.
    """

    out_features = 6
    spec = {"type": "reacher_base_frame"}  # noqa: RUF012
    rest_mask = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        c1, c2, s1, s2 = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
        dx, dy = obs[..., 8], obs[..., 9]
        rx = c1 * dx + s1 * dy
        ry = -s1 * dx + c1 * dy
        return torch.stack([c2, s2, obs[..., 4], obs[..., 5], 10.0 * rx, 10.0 * ry], dim=-1)


class ArmBaseFrame(nn.Module):
    """7-DoF arm: (..., 23) -> (..., 20) = q2..q7 (6), q̇ (7), Rz(-q1) flange (3, m),
    Rz(-q1)(flange - target) (3, dm), |flange - target| (1, dm).

    Joint 1 of the iiwa turns the arm about the world z axis through the base, so the flange
    and the offset are rotated by -q1 about z and q1 itself is left out.
    """

    out_features = 20
    spec = {"type": "arm_base_frame"}  # noqa: RUF012
    rest_mask = torch.tensor([1.0] * 6 + [0.0] * 7 + [1.0] * 3 + [0.0] * 4)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q1 = obs[..., 0]
        c, s = torch.cos(q1), torch.sin(q1)
        ee, off = obs[..., 14:17], obs[..., 20:23]
        ee_r = torch.stack(
            [c * ee[..., 0] + s * ee[..., 1], -s * ee[..., 0] + c * ee[..., 1], ee[..., 2]], dim=-1
        )
        off_r = torch.stack(
            [c * off[..., 0] + s * off[..., 1], -s * off[..., 0] + c * off[..., 1], off[..., 2]],
            dim=-1,
        )
        norm = torch.linalg.vector_norm(off, dim=-1, keepdim=True)
        return torch.cat([obs[..., 1:7], obs[..., 7:14], ee_r, 10.0 * off_r, 10.0 * norm], dim=-1)


def make_features(kind: Features, task: Task, obs_size: int) -> nn.Module:
    """The feature map ``kind`` for ``task``; it has an ``out_features`` attribute.

    Raises:
        ValueError: ``GOAL_FREE`` or ``BASE_FRAME`` for a task that has no goal layout known here.
    """
    kind = Features(kind)
    if kind is Features.RAW:
        return SelectFeatures(list(range(obs_size)))
    if kind is Features.GOAL_FREE:
        # (goal coordinates, entries that vanish at rest on the goal: velocities and offset)
        if isinstance(task, ReacherTwoLink):
            goal, moving = range(6, 8), [*range(4, 6), *range(8, 10)]
        elif isinstance(task, ArmReach):
            goal, moving = range(17, 20), [*range(7, 14), *range(20, 23)]
        else:
            raise ValueError(f"no goal layout known for {type(task).__name__}")
        indices = [i for i in range(obs_size) if i not in goal]
        return SelectFeatures(indices, [0.0 if i in moving else 1.0 for i in indices])
    if isinstance(task, ReacherTwoLink):
        return ReacherBaseFrame()
    if isinstance(task, ArmReach):
        return ArmBaseFrame()
    raise ValueError(f"no base-frame features known for {type(task).__name__}")


def features_from_spec(spec: dict) -> nn.Module:
    """Rebuild a feature map from its ``spec`` (as stored in a checkpoint).

    Raises:
        ValueError: an unknown or malformed spec.
    """
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "select":
        rest = spec.get("rest_mask")
        return SelectFeatures(
            [int(i) for i in spec["indices"]], None if rest is None else [float(v) for v in rest]
        )
    if kind == "reacher_base_frame":
        return ReacherBaseFrame()
    if kind == "arm_base_frame":
        return ArmBaseFrame()
    raise ValueError(f"unknown feature spec {spec!r}")
