"""A file written through ``atomic_path`` is the old one or the whole new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.files import atomic_path


def test_a_write_that_raises_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "manifest.json"
    with atomic_path(target) as tmp:
        tmp.write_text("old")
    assert target.read_text() == "old"

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["manifest.json"]
