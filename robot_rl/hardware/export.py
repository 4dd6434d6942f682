"""Export policies to TorchScript and ONNX, and load them back as ``Policy`` objects, so a
robot computer deploys a policy without any training code.

An exportable policy is a ``torch.nn.Module`` mapping observations (B, obs_dim) float32 to
deterministic actions (B, act_dim) in [-1, 1] (for a stochastic actor: its mean action,
squashed). The export carries ``PolicyMetadata`` -- sizes, the env it was trained on, the
observation history and action filter it expects -- inside the file (a TorchScript extra file,
ONNX ``metadata_props``).

TorchScript (``torch.jit``) is deprecated upstream in favour of ``torch.export`` but remains
what C++ robot runtimes (libtorch) load, so it is still offered; ONNX needs the ``onnx`` extra
(``pip install robot-rl[onnx]``: onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.files import atomic_path

EXPORT_FORMAT = "robot_rl.policy/1"
METADATA_KEY = "robot_rl_policy"


@dataclass(frozen=True)
class PolicyMetadata:
    """What a deployment needs to know about an exported policy.

    Attributes:
        obs_dim: length of the policy's input (the stacked observation history).
        act_dim: length of its output.
        env_id: the env it was trained on ('' if unknown).
        history: observations stacked into its input.
        action_filter: low-pass cutoff it was trained with, Hz (None: none).
        algorithm: what produced it (``sac``, ``gps`` ...).
    """

    obs_dim: int
    act_dim: int
    env_id: str = ""
    history: int = 1
    action_filter: float | None = None
    algorithm: str = ""

    def to_json(self) -> str:
        return json.dumps({"format": EXPORT_FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str | Path) -> PolicyMetadata:
        try:
            data = json.loads(text)
            if data.pop("format", None) != EXPORT_FORMAT:
                raise ValueError(f"not {EXPORT_FORMAT} metadata")
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source} carries no valid robot_rl policy metadata: {err}") from None


class TorchPolicy:
    """A torch policy module with its metadata: a ``Policy`` that can also be exported.

    Checkpoint loaders of neural agents return one (see ``robot_rl.hardware.policies``), so
    ``robot-rl deploy`` can run the checkpoint and ``robot-rl export`` can export it.

    Args:
        module: maps (B, obs_dim) float32 to (B, act_dim) deterministic actions in [-1, 1].
        metadata: its sizes and training settings.
    """

    def __init__(self, module: torch.nn.Module, metadata: PolicyMetadata) -> None:
        self.module = module.eval()
        self.metadata = metadata

    def reset(self) -> None:
        """Memoryless."""

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        return self.module(x)[0].double().numpy()


def _example(module: torch.nn.Module, metadata: PolicyMetadata) -> torch.Tensor:
    example = torch.zeros(1, metadata.obs_dim)
    with torch.no_grad():
        out = module(example)
    if tuple(out.shape) != (1, metadata.act_dim):
        raise ValueError(
            f"policy maps (1, {metadata.obs_dim}) to {tuple(out.shape)}, "
            f"not (1, {metadata.act_dim}) as its metadata says"
        )
    return example


def export_torchscript(module: torch.nn.Module, path: str | Path, metadata: PolicyMetadata) -> Path:
    """Trace ``module`` to TorchScript at ``path`` (``.pt``), metadata included."""
    module = module.eval()
    example = _example(module, metadata)

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
        traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(tmp), _extra_files={METADATA_KEY: metadata.to_json()})
    return Path(path)


def export_onnx(module: torch.nn.Module, path: str | Path, metadata: PolicyMetadata) -> Path:
    """Export ``module`` to ONNX at ``path`` (``.onnx``) with a dynamic batch axis."""
    onnx = _require("onnx")
    _require("onnxscript")
    module = module.eval()
    example = _example(module, metadata)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch.export
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["obs"],
            output_names=["action"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    with atomic_path(path) as tmp:
        program.save(str(tmp))
        model = onnx.load(str(tmp))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, metadata.to_json()
        onnx.save(model, str(tmp))
    return Path(path)


def _require(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            f"{name} is needed for ONNX policies: pip install 'robot-rl[onnx]'"
        ) from None


class _ExportedPolicy:
    """Shared checks of exported policies: (obs_dim,) in, (act_dim,) float64 out."""

    metadata: PolicyMetadata | None

    def reset(self) -> None:
        """Exported policies are stateless (histories and filters live in the deployment)."""

    def _check(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        expected = None if self.metadata is None else (self.metadata.obs_dim,)
        if obs.ndim != 1 or (expected is not None and obs.shape != expected):
            raise ValueError(
                f"policy expects an observation of shape {expected or '(obs_dim,)'}, "
                f"got {obs.shape}"
            )
        return obs[None]


class TorchScriptPolicy(_ExportedPolicy):
    """A policy exported by ``export_torchscript`` -- or any TorchScript module mapping
    (B, obs_dim) to (B, act_dim), whose ``metadata`` is then None (sizes unchecked)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except (RuntimeError, ValueError, OSError) as err:
            raise ValueError(f"{path} is not a TorchScript policy: {err}") from err
        self.metadata = (
            PolicyMetadata.from_json(extra[METADATA_KEY], path) if extra[METADATA_KEY] else None
        )
        self.module.eval()

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(self._check(obs)))
        return out[0].double().numpy()


class OnnxPolicy(_ExportedPolicy):
    """A policy exported by ``export_onnx``, run by onnxruntime on the CPU."""

    def __init__(self, path: str | Path) -> None:
        ort = _require("onnxruntime")
        path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"{path} is not an ONNX policy: {err}") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(f"{path} carries no robot_rl policy metadata")
        self.metadata = PolicyMetadata.from_json(meta[METADATA_KEY], path)

    def act(self, obs: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(["action"], {"obs": self._check(obs)})
        return np.asarray(out[0], dtype=np.float64)


def is_torchscript(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with a ``code/`` folder)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
