"""Run the CLI in-process from tests and open what it built."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from analyzer.cli import main


def run_and_open(corpus: Path, out: Path, model: Path, *extra: str) -> duckdb.DuckDBPyConnection:
    """`analyzer run CORPUS --out OUT --model MODEL` on one worker; the built database, read-only."""
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(corpus),
            "--out",
            str(out),
            "--model",
            str(model),
            "--workers",
            "1",
            "--no-progress",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.stderr
    return duckdb.connect(str(out / "analysis.duckdb"), read_only=True)
