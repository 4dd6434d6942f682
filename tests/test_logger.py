from __future__ import annotations

import csv

import pytest

from robot_rl.logger import CSVOutput, LogFormat, Logger, make_logger


def test_csv_header_grows_with_new_metrics(tmp_path) -> None:
    log = Logger([CSVOutput(tmp_path / "progress.csv")])
    log.record("train/loss", 1.5)
    log.dump(step=1)
    log.record_many({"train/loss": 1.0, "eval/return": -3.0})
    log.dump(step=2)
    with (tmp_path / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0] == {"step": "1", "train/loss": "1.5", "eval/return": ""}
    assert rows[1] == {"step": "2", "train/loss": "1.0", "eval/return": "-3.0"}


def test_metrics_must_be_namespaced() -> None:
    with pytest.raises(ValueError, match="namespaced"):
        Logger().record("loss", 1.0)


def test_stdout_and_file_formats(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_logger(tmp_path, [LogFormat.STDOUT, "csv"])
    log.record("rollout/return", 2.0)
    assert log.dump(step=5) == {"rollout/return": 2.0}
    assert "rollout/return" in capsys.readouterr().out
    with pytest.raises(ValueError, match="run directory"):
        make_logger(None, ["csv"])
