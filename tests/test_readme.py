"""The README's Python loop (env -> ensemble -> MPC -> robot) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- tested by tests/test_readme.py -->"


def test_the_readme_loop_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    text = README.read_text()
    assert MARKER in text
    snippet = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert snippet is not None
    monkeypatch.chdir(tmp_path)  # the snippet writes its run record to the working folder
    exec(compile(snippet.group(1), str(README), "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[0] == "Termination.COMPLETED"
    assert (tmp_path / "cartpole.h5").stat().st_size > 1000
