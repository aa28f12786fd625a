"""Dedup modes, banding maths and candidate verification, end to end on generated shards."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from generated import corpus_documents, write_fineweb_parquet

from analyzer.cli import main
from analyzer.dedup.banding import banding_for_threshold, candidate_probability


def near_copy(text: str, rng: random.Random) -> str:
    """Drop one word in the middle: most word 5-grams survive."""
    words = text.split()
    del words[rng.randrange(len(words) // 3, 2 * len(words) // 3)]
    return " ".join(words)


@pytest.fixture()
def shards_with_duplicates(tmp_path: Path) -> Path:
    rng = random.Random(5)
    directory = tmp_path / "corpus"
    directory.mkdir()
    first = corpus_documents(40, seed=7, prefix="a")
    second = corpus_documents(30, seed=8, prefix="b")
    for index in range(5):  # exact copies across shards, upper-cased: same content hash
        second.append(dict(first[index], id=f"exact-{index}", text=first[index]["text"].upper()))
    for index in range(5, 10):  # near copies across shards
        second.append(dict(first[index], id=f"near-{index}", text=near_copy(str(first[index]["text"]), rng)))
    write_fineweb_parquet(directory / "000.parquet", first)
    write_fineweb_parquet(directory / "001.parquet", second)
    return directory


def run(corpus: Path, out: Path, model: Path, *extra: str) -> duckdb.DuckDBPyConnection:
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(corpus),
            "--out",
            str(out),
            "--model",
            str(model),
            "--no-progress",
            "--workers",
            "1",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.stderr
    return duckdb.connect(str(out / "analysis.duckdb"), read_only=True)


def kinds(db: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(db.execute("SELECT doc_id, dup_kind FROM documents WHERE is_duplicate").fetchall())


def test_near_mode_finds_exact_and_near_copies_across_shards(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    with run(shards_with_duplicates, tmp_path / "near", tiny_model) as db:
        marked = kinds(db)
        # the copies sit in the second shard, so they (not the originals) are the duplicates
        assert {f"exact-{i}" for i in range(5)} <= marked.keys()
        assert {f"near-{i}" for i in range(5, 10)} <= marked.keys()
        assert all(marked[f"exact-{i}"] == "exact" for i in range(5))
        assert all(marked[f"near-{i}"] == "near" for i in range(5, 10))
        spans = db.execute("SELECT count(*), max(shards) FROM duplicate_clusters").fetchone()
        assert spans is not None and spans[0] >= 10 and spans[1] == 2
        rate = db.execute("SELECT sum(duplicates) FROM duplicate_rate_by_domain").fetchone()
        assert rate == (len(marked),)


def test_exact_mode_ignores_near_copies_and_off_keeps_everything(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    with run(shards_with_duplicates, tmp_path / "exact", tiny_model, "--dedup", "exact") as db:
        marked = kinds(db)
        assert marked.keys() == {f"exact-{i}" for i in range(5)}
        assert db.execute("SELECT count(*) FROM documents WHERE dup_kind = 'near'").fetchone() == (0,)
    with run(shards_with_duplicates, tmp_path / "off", tiny_model, "--dedup", "off") as db:
        assert kinds(db) == {}
        assert db.execute("SELECT count(DISTINCT cluster_id) = count(*) FROM documents").fetchone() == (True,)


def test_verification_drops_candidates_below_the_estimated_jaccard(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    # estimated Jaccard of a one-word deletion is below 1, so a threshold of 1 keeps only exact copies
    with run(shards_with_duplicates, tmp_path / "strict", tiny_model, "--verify-jaccard", "1.0") as db:
        assert kinds(db).keys() == {f"exact-{i}" for i in range(5)}


def test_banding_for_threshold_puts_the_s_curve_around_the_threshold() -> None:
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = banding_for_threshold(threshold, 112)
        assert bands * rows <= 112
        assert candidate_probability(threshold + 0.15, bands, rows) > 0.85 or threshold + 0.15 > 1
        assert candidate_probability(threshold - 0.3, bands, rows) < 0.2


def test_candidate_probability_matches_the_closed_form() -> None:
    assert candidate_probability(1.0, 14, 8) == 1.0
    assert candidate_probability(0.0, 14, 8) == 0.0
    assert candidate_probability(0.5, 2, 1) == pytest.approx(0.75)
