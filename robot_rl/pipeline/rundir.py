"""A run folder: every stage's artifacts plus a manifest that makes runs resumable.

``manifest.json`` records the robot_rl version and run-folder format that wrote it, the
resolved configuration, and each stage's status (``done`` with its summary, or absent). It
is rewritten atomically after every stage, so a kill at any point leaves either the old or
the new manifest, never a torn one; a stage whose status is not ``done`` is simply run again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import robot_rl
from robot_rl.files import atomic_path

FORMAT = "robot_rl.run/1"


class RunDirError(ValueError):
    """A run folder is missing, from another version, or damaged."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


class RunDir:
    """One run's folder (``runs/<name>``) and its manifest."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest

    @classmethod
    def create(cls, root: Path, config: dict[str, Any], name: str | None = None) -> RunDir:
        """A fresh run folder under ``root`` (named by the time unless ``name`` is given)."""
        name = name or time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(root) / f"{name}-{suffix}"
        path.mkdir(parents=True)
        manifest = {
            "format": FORMAT,
            "robot_rl_version": robot_rl.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": config,
            "stages": {},
        }
        run = cls(path, manifest)
        run._save()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run folder, checked to be one this version can resume."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise RunDirError(f"{path} is not a run folder (no manifest.json)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise RunDirError(f"{manifest_path} is damaged: {err}") from err
        if manifest.get("format") != FORMAT:
            raise RunDirError(
                f"{path} was written in format {manifest.get('format')!r}; this robot_rl reads {FORMAT!r}"
            )
        if manifest.get("robot_rl_version") != robot_rl.__version__:
            raise RunDirError(
                f"{path} was written by robot_rl {manifest.get('robot_rl_version')}; this is "
                f"{robot_rl.__version__}, which cannot safely resume it (start a new run)"
            )
        return cls(path, manifest)

    @property
    def config(self) -> dict[str, Any]:
        return self._manifest["config"]

    def done(self, stage: str) -> bool:
        return self._manifest["stages"].get(stage, {}).get("status") == "done"

    def summary(self, stage: str) -> dict[str, Any]:
        """The summary a finished stage recorded."""
        if not self.done(stage):
            raise RunDirError(f"stage {stage!r} has not finished in {self.path}")
        return self._manifest["stages"][stage]["summary"]

    def mark_done(self, stage: str, summary: dict[str, Any], seconds: float) -> None:
        self._manifest["stages"][stage] = {
            "status": "done",
            "summary": summary,
            "seconds": round(seconds, 2),
        }
        self._save()

    def stage_dir(self, stage: str) -> Path:
        path = self.path / stage
        path.mkdir(exist_ok=True)
        return path

    def _save(self) -> None:
        write_json_atomic(self.path / "manifest.json", self._manifest)
