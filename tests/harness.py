"""Test harness: read a shard into plain rows, or run the CLI in-process and open what it built."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.config import ReaderOptions
from analyzer.readers import read_shard
from analyzer.shards import Shard, resolve_shards


def shard_of(path: Path) -> Shard:
    return resolve_shards([str(path)])[0]


def read_all(path: Path, **options: object) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    """Every document of a shard as a dict, and every skipped row as (row_index, reason)."""
    documents: list[dict[str, object]] = []
    skipped: list[tuple[int, str]] = []
    for batch in read_shard(shard_of(path), ReaderOptions(**options)):  # type: ignore[arg-type]
        documents.extend(batch.documents.to_pylist())
        skipped.extend((row.row_index, row.reason) for row in batch.skipped)
    return documents, skipped


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
