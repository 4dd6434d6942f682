from __future__ import annotations

import pickle

import pytest
import torch

from robot_rl.checkpoint import CheckpointError, load_checkpoint, require_metadata, save_checkpoint


def test_round_trip(tmp_path) -> None:
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(7)}
    path = save_checkpoint(tmp_path / "a.ckpt", tensors, {"env": "x", "n": 3})
    loaded, meta = load_checkpoint(path)
    assert meta == {"env": "x", "n": 3}
    assert torch.equal(loaded["w"], tensors["w"])
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_missing_corrupt_and_foreign_files(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"not a robot_rl\.checkpoint"):
        load_checkpoint(foreign)


class _Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_pickled_code_is_never_executed(tmp_path) -> None:
    evil = tmp_path / "evil.ckpt"
    with evil.open("wb") as f:
        pickle.dump({"format": "robot_rl.checkpoint/1", "x": _Evil()}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)


def test_metadata_mismatch_names_the_key(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="env='a'"):
        require_metadata({"env": "a"}, {"env": "b"}, tmp_path / "c.ckpt")
