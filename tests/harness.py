"""Test harness: read a shard into plain rows, run the CLI in-process and open what it built, or load a
model with both classifier engines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
from click.testing import CliRunner

from analyzer.classifier_model import DomainModel
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


def load_with_both_engines(
    model_path: Path, texts: Sequence[str], expected_lines: Sequence[str]
) -> tuple[dict[str, DomainModel], np.ndarray]:
    """Load a model with each engine; check both prepare `texts` as `expected_lines` (training's
    preparation) and predict them alike; return the models by engine and fastText's probabilities."""
    models, probabilities = {}, {}
    for engine in ("vectorised", "fasttext"):
        models[engine] = DomainModel.load(model_path, engine=engine)
        assert models[engine].normalise(texts) == list(expected_lines)
        probabilities[engine] = models[engine].predict_proba(texts)
    np.testing.assert_allclose(probabilities["vectorised"], probabilities["fasttext"], atol=5e-5)
    return models, probabilities["fasttext"]
