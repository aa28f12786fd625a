"""`--sample-rate` and `--max-docs-per-shard`: deterministic, accounted for, and scaled back up."""

from __future__ import annotations

from pathlib import Path

import pytest
from generated import corpus_documents, write_fineweb_parquet
from harness import run_and_open


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    write_fineweb_parquet(directory / "000.parquet", corpus_documents(400, seed=1, prefix="a"))
    write_fineweb_parquet(directory / "001.parquet", corpus_documents(300, seed=2, prefix="b"))
    return directory


def test_sample_rate_is_deterministic_and_accounted(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    picked = []
    for attempt in ("first", "second"):
        with run_and_open(corpus, tmp_path / attempt, tiny_model, "--sample-rate", "0.25") as db:
            picked.append(db.execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall())
            tagged, not_sampled = db.execute(
                "SELECT (SELECT count(*) FROM documents), "
                "(SELECT count(*) FROM skipped WHERE reason = 'not_sampled')"
            ).fetchone() or (0, 0)
            assert tagged + not_sampled == 700
            assert 0.18 < tagged / 700 < 0.32
            weights = db.execute("SELECT min(sample_weight), max(sample_weight) FROM documents").fetchone()
            assert weights is not None and 3.0 < weights[0] <= weights[1] < 5.5
            assert db.execute("SELECT bool_and(balanced) FROM shard_balance").fetchone() == (True,)
    assert picked[0] == picked[1]


def test_sampled_shares_stay_close_to_the_full_run(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    query = "SELECT domain, token_share_raw FROM domain_shares ORDER BY domain"
    with run_and_open(corpus, tmp_path / "full", tiny_model) as db:
        full = dict(db.execute(query).fetchall())
    with run_and_open(corpus, tmp_path / "half", tiny_model, "--sample-rate", "0.5") as db:
        half = dict(db.execute(query).fetchall())
        estimated = db.execute("SELECT sum(estimated_input_tokens) FROM domain_shares").fetchone()
        total = db.execute("SELECT sum(n_tokens) FROM documents").fetchone()
    assert all(abs(full[d] - half[d]) < 0.05 for d in full)
    assert estimated is not None and total is not None and estimated[0] > 1.6 * total[0]


def test_max_docs_per_shard_keeps_the_first_rows(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    with run_and_open(corpus, tmp_path / "first", tiny_model, "--max-docs-per-shard", "50") as db:
        rows = db.execute("SELECT shard, max(row_index), count(*) FROM documents GROUP BY shard").fetchall()
        assert sorted(count for _, _, count in rows) == [50, 50]
        assert all(last == 49 for _, last, _ in rows)
        weight = db.execute("SELECT sample_weight FROM documents WHERE shard LIKE '%000.parquet'").fetchone()
        assert weight == (8.0,)
