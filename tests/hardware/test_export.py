from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.checkpoint import save_checkpoint
from robot_rl.hardware import DeployConfig, Pacing, SimRobot, deploy
from robot_rl.hardware.export import (
    OnnxPolicy,
    PolicyMetadata,
    TorchScriptPolicy,
    export_onnx,
    export_torchscript,
)
from robot_rl.hardware.policies import ZeroPolicy, load_policy


def actor(obs_dim: int = 5, act_dim: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 16), torch.nn.Tanh(), torch.nn.Linear(16, act_dim), torch.nn.Tanh()
    )


METADATA = PolicyMetadata(obs_dim=5, act_dim=1, env_id="robot_rl/CartpoleSwingup-v0", history=1)


HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
EXPORTS = [
    pytest.param(export_torchscript, ".pt", TorchScriptPolicy, id="torchscript"),
    pytest.param(
        export_onnx,
        ".onnx",
        OnnxPolicy,
        id="onnx",
        marks=pytest.mark.skipif(not HAVE_ONNX, reason="needs the [onnx] extra"),
    ),
]


@pytest.mark.parametrize(("export", "suffix", "kind"), EXPORTS)
def test_an_exported_policy_acts_like_the_module(tmp_path: Path, export, suffix, kind) -> None:
    module = actor()
    path = export(module, tmp_path / f"policy{suffix}", METADATA)
    policy, metadata = load_policy(str(path), act_dim=1)
    assert isinstance(policy, kind)
    assert metadata == METADATA
    obs = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(obs)).numpy()
    actions = np.array([policy.act(o) for o in obs])
    np.testing.assert_allclose(actions, expected, atol=1e-5)
    assert actions.dtype == np.float64
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        policy.act(np.zeros(4))


def test_an_exported_policy_deploys_without_training_code(tmp_path: Path) -> None:
    path = export_torchscript(actor(), tmp_path / "policy.pt", METADATA)
    policy, _ = load_policy(str(path), act_dim=1)
    result = deploy(
        SimRobot.make(METADATA.env_id), policy, DeployConfig(episodes=1, pacing=Pacing.NONE)
    )
    assert result.termination.value == "completed"
    assert result.cycles == 101


def test_exports_check_the_module_against_the_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not \(1, 2\)"):
        export_torchscript(actor(), tmp_path / "p.pt", PolicyMetadata(obs_dim=5, act_dim=2))
    assert not (tmp_path / "p.pt").exists()


def test_policy_sources_and_clear_errors(tmp_path: Path) -> None:
    assert isinstance(load_policy("zero", 3)[0], ZeroPolicy)
    random, _ = load_policy("random:4", 2)
    assert np.all(np.abs(random.act(np.zeros(5))) <= 1)
    with pytest.raises(ValueError, match="neither 'zero'"):
        load_policy("nothing-here.onnx", 1)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"junk")
    with pytest.raises(
        ValueError, match="not an ONNX file, a TorchScript archive or a robot_rl checkpoint"
    ):
        load_policy(str(junk), 1)
    ckpt = save_checkpoint(tmp_path / "agent.pt", {"w": torch.zeros(1)}, {"algorithm": "mystery"})
    with pytest.raises(ValueError, match="algorithm 'mystery', which has no policy loader"):
        load_policy(str(ckpt), 1)


def test_a_registered_checkpoint_loader_deploys_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from robot_rl.checkpoint import load_checkpoint, require_metadata
    from robot_rl.cli import main
    from robot_rl.hardware.export import TorchPolicy
    from robot_rl.hardware.policies import CHECKPOINT_LOADERS

    module = actor()
    ckpt = save_checkpoint(
        tmp_path / "agent.pt",
        {k: v for k, v in module.state_dict().items()},
        {"algorithm": "tiny", "env_id": METADATA.env_id},
    )

    def load_tiny(path: Path) -> TorchPolicy:
        tensors, metadata = load_checkpoint(path)
        require_metadata(metadata, {"algorithm": "tiny"}, path)
        net = actor()
        net.load_state_dict(tensors)
        return TorchPolicy(net, PolicyMetadata(5, 1, metadata["env_id"], algorithm="tiny"))

    monkeypatch.setitem(CHECKPOINT_LOADERS, "tiny", load_tiny)
    policy, metadata = load_policy(str(ckpt))
    assert metadata.algorithm == "tiny"
    obs = np.linspace(-1, 1, 5)
    assert main(["export", str(ckpt), str(tmp_path / "tiny.pt")]) == 0
    exported, _ = load_policy(str(tmp_path / "tiny.pt"))
    np.testing.assert_allclose(exported.act(obs), policy.act(obs), atol=1e-6)
    assert "exported" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "tiny.pt"), str(tmp_path / "again.pt")]) == 2
    assert "not a neural policy that can be exported" in capsys.readouterr().err


def test_gps_checkpoints_and_their_torchscript_deploy_and_export(tmp_path: Path) -> None:
    from robot_rl.agents.gps.policy import GaussianPolicy, GPSPolicy
    from robot_rl.cli import main

    torch.manual_seed(0)
    gps = GPSPolicy(GaussianPolicy(10, 2, hidden=(16,)))
    ckpt = gps.save(tmp_path / "gps.pt", extra={"env": "robot_rl/ReacherTwoLink-v0"})
    policy, metadata = load_policy(str(ckpt))
    assert metadata == PolicyMetadata(10, 2, "robot_rl/ReacherTwoLink-v0", algorithm="gps")
    obs = np.random.default_rng(0).normal(size=10)
    np.testing.assert_allclose(policy.act(obs), gps.act(obs), atol=1e-6)
    assert main(["export", str(ckpt), str(tmp_path / "gps-exported.pt")]) == 0
    exported, _ = load_policy(str(tmp_path / "gps-exported.pt"))
    np.testing.assert_allclose(exported.act(obs), gps.act(obs), atol=1e-6)
    # GPS's own TorchScript export carries no robot_rl metadata: it still deploys.
    plain, plain_metadata = load_policy(str(gps.export_torchscript(tmp_path / "plain.pt")))
    assert plain_metadata is None
    result = deploy(
        SimRobot.make(metadata.env_id), plain, DeployConfig(episodes=1, pacing=Pacing.NONE)
    )
    assert result.termination.value == "completed"
