"""`--sample-rate` and `--max-docs-per-shard`: deterministic, accounted for, and scaled back up."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet
import pytest
from generated import corpus_documents, write_fineweb_parquet
from harness import run_and_open

from analyzer.config import RunConfig
from analyzer.shard_output import ShardPaths
from analyzer.shard_task import UNCLASSIFIED, ShardProcessor
from analyzer.shards import resolve_shards
from analyzer.taggers.domain import DomainTagger


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
        plain = ("--sample-rate", "0.25", "--no-classify-all")
        with run_and_open(corpus, tmp_path / attempt, tiny_model, *plain) as db:
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
    plain = ("--max-docs-per-shard", "50", "--no-classify-all")
    with run_and_open(corpus, tmp_path / "first", tiny_model, *plain) as db:
        rows = db.execute("SELECT shard, max(row_index), count(*) FROM documents GROUP BY shard").fetchall()
        assert sorted(count for _, _, count in rows) == [50, 50]
        assert all(last == 49 for _, last, _ in rows)
        weight = db.execute("SELECT sample_weight FROM documents WHERE shard LIKE '%000.parquet'").fetchone()
        assert weight == (8.0,)


def _share_rows(db: object, column: str) -> dict[str, float]:
    rows = db.execute(f"SELECT domain, {column} FROM domain_shares ORDER BY domain").fetchall()  # type: ignore[attr-defined]
    return {domain: float(value) for domain, value in rows}


def test_classify_all_calibrates_the_sample_to_the_census(
    corpus: Path, tmp_path: Path, tiny_model: Path
) -> None:
    with run_and_open(corpus, tmp_path / "full", tiny_model) as db:
        full_bytes = _share_rows(db, "byte_share_raw")
        full_tokens = _share_rows(db, "token_share_raw")
        bytes_read = db.execute("SELECT sum(n_bytes) FROM documents").fetchone()
        predicted = dict(db.execute("SELECT domain, sum(n_bytes) FROM documents GROUP BY domain").fetchall())
        dump_bytes = dict(db.execute("SELECT dump, sum(n_bytes) FROM documents GROUP BY dump").fetchall())
        full_dump_shares = db.execute(
            "SELECT group_value, domain, byte_share, byte_share_hi - byte_share_lo "
            "FROM share_estimates_by_group WHERE grouping = 'dump' ORDER BY ALL"
        ).fetchall()
    with run_and_open(
        corpus, tmp_path / "census", tiny_model, "--sample-rate", "0.2", "--classify-all"
    ) as db:
        tagged, not_sampled, census_docs = db.execute(
            "SELECT (SELECT count(*) FROM documents), "
            "(SELECT count(*) FROM skipped WHERE reason = 'not_sampled'), (SELECT sum(docs) FROM census)"
        ).fetchone() or (0, 0, 0)
        assert tagged + not_sampled == 700 and census_docs == not_sampled
        assert db.execute("SELECT bool_and(balanced) FROM shard_balance").fetchone() == (True,)
        # every predicted domain weighs exactly its bytes in the whole input, as the full run reads it
        weighted = dict(
            db.execute(
                "SELECT domain, sum(n_bytes * sample_weight) FROM documents GROUP BY domain"
            ).fetchall()
        )
        assert weighted.keys() == predicted.keys()
        assert all(abs(weighted[d] - predicted[d]) < 1e-6 * predicted[d] for d in predicted)
        census_bytes = db.execute("SELECT sum(bytes) FROM census").fetchone()
        sample_bytes = db.execute("SELECT sum(n_bytes) FROM documents").fetchone()
        assert census_bytes is not None and sample_bytes is not None and bytes_read is not None
        assert census_bytes[0] + sample_bytes[0] == bytes_read[0]
        # and so does every dump's (the census's cells are predicted domain x dump x source)
        by_dump = dict(
            db.execute("SELECT dump, sum(n_bytes * sample_weight) FROM documents GROUP BY dump").fetchall()
        )
        assert by_dump.keys() == dump_bytes.keys()
        assert all(abs(by_dump[d] - dump_bytes[d]) < 1e-6 * dump_bytes[d] for d in dump_bytes)
        dump_shares = db.execute(
            "SELECT group_value, domain, byte_share, byte_share_lo, byte_share_hi "
            "FROM share_estimates_by_group WHERE grouping = 'dump' ORDER BY ALL"
        ).fetchall()
        census_share_bytes = _share_rows(db, "byte_share_raw")
        census_tokens = _share_rows(db, "token_share_raw")
        options = db.execute("SELECT options->>'classify_all' FROM runs").fetchone()
        census_rows = db.execute("SELECT * FROM census ORDER BY ALL").fetchall()
    # a rerun reuses the finished shards, census included (it lives in their done.json)
    with run_and_open(corpus, tmp_path / "census", tiny_model, "--sample-rate", "0.2") as db:
        assert db.execute("SELECT count(*) FROM shards WHERE status = 'reused'").fetchone() == (2,)
        assert db.execute("SELECT * FROM census ORDER BY ALL").fetchall() == census_rows
    assert options == ("true",)
    assert all(abs(census_share_bytes[d] - full_bytes[d]) < 1e-9 for d in full_bytes)
    # each dump's byte shares are the full run's, and so is their interval: the replicates are
    # re-calibrated to the census (no sampling error left) and the label noise is the input's
    assert [row[:2] for row in dump_shares] == [row[:2] for row in full_dump_shares]
    for (_, _, share, lo, hi), (_, _, full_share, full_width) in zip(
        dump_shares, full_dump_shares, strict=True
    ):
        assert abs(share - full_share) < 1e-9
        assert hi - lo < 1.15 * full_width
    # tokens per byte barely vary within a domain of generated text, so the token shares follow
    assert all(abs(census_tokens[d] - full_tokens[d]) < 0.01 for d in full_tokens)


def test_classify_all_spreads_what_the_sample_cannot_carry(
    corpus: Path, tmp_path: Path, tiny_model: Path
) -> None:
    # two tagged documents (one per shard) cannot stand for every predicted domain of the census:
    # the bytes of the others are spread over them, so the weighted bytes still add up to all read
    with run_and_open(corpus, tmp_path / "full", tiny_model) as db:
        bytes_read = db.execute("SELECT sum(n_bytes) FROM documents").fetchone()
        domains_read = db.execute("SELECT count(DISTINCT domain) FROM documents").fetchone()
    with run_and_open(
        corpus, tmp_path / "two", tiny_model, "--max-docs-per-shard", "1", "--classify-all"
    ) as db:
        weighted = db.execute(
            "SELECT sum(n_bytes * sample_weight), count(DISTINCT domain) FROM documents"
        ).fetchone()
        shares = db.execute("SELECT sum(byte_share_raw) FROM domain_shares").fetchone()
    assert bytes_read is not None and weighted is not None and domains_read is not None and shares is not None
    assert weighted[1] < domains_read[0]
    assert abs(weighted[0] - bytes_read[0]) < 1e-6 * bytes_read[0]
    assert abs(shares[0] - 1.0) < 1e-9


def test_census_counts_a_document_the_model_fails_on_as_unclassified(
    corpus: Path, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(
        inputs=(str(corpus),),
        out_dir=tmp_path / "out",
        model_path=tiny_model,
        sample_rate=0.2,
        classify_all=True,
    )
    config.tags_dir.mkdir(parents=True)
    processor = ShardProcessor(config)
    tagger = next(t for t in processor.taggers if isinstance(t, DomainTagger))
    real = tagger.top_domains
    poisoned = 5  # the shard's row whose text the model cannot read

    def failing(documents: pa.RecordBatch) -> list[str]:
        if poisoned in documents.column("row_index").to_pylist():
            raise RuntimeError("cannot read this text")
        return real(documents)

    monkeypatch.setattr(tagger, "top_domains", failing)
    shard = resolve_shards([str(corpus / "000.parquet")])[0]
    accounting = processor.process(shard)
    census_docs = sum(cell["docs"] for cell in accounting.census)
    assert accounting.docs_read == 400 == accounting.docs_tagged + accounting.docs_skipped
    assert census_docs == accounting.skip_reasons["not_sampled"]
    sampled_out = (
        not pa.parquet.read_table(ShardPaths(config.tags_dir, shard.key).tags)
        .filter(pa.compute.equal(pa.compute.field("row_index"), poisoned))
        .num_rows
    )
    assert sampled_out, "the poisoned row must be one the census reads (pick another row)"
    assert sum(cell["docs"] for cell in accounting.census if cell["domain"] == UNCLASSIFIED) == 1


def test_classify_all_calibrates_on_the_shards_own_token_counts_when_they_fit(
    tmp_path: Path, tiny_model: Path
) -> None:
    # FineWeb-like shards whose token_count follows the text (words and punctuation): it predicts the
    # run's tokens better than bytes, so the census calibrates on it, scaled to bytes per cell
    directory = tmp_path / "corpus"
    directory.mkdir()
    for name, seed in (("000", 1), ("001", 2)):
        records = corpus_documents(300, seed=seed, prefix=name)
        for record in records:
            record["token_count"] = len(re.findall(r"\w+|[^\w\s]", record["text"]))
        write_fineweb_parquet(directory / f"{name}.parquet", records)
    cell = "domain, dump, source"
    with run_and_open(directory, tmp_path / "full", tiny_model) as db:
        predicted = dict(db.execute("SELECT domain, sum(n_bytes) FROM documents GROUP BY domain").fetchall())
    with run_and_open(directory, tmp_path / "census", tiny_model, "--sample-rate", "0.2") as db:
        rows = db.execute(
            f"""
            SELECT d.calibration_size, d.shard_token_count * c.bytes / c.shard_tokens
            FROM documents AS d
            JOIN (
                SELECT {cell}, sum(bytes) AS bytes, sum(shard_tokens) AS shard_tokens
                FROM (
                    SELECT {cell}, n_bytes AS bytes, shard_token_count AS shard_tokens FROM documents
                    UNION ALL
                    SELECT {cell}, bytes, shard_tokens FROM census
                )
                GROUP BY ALL
            ) AS c
                ON d.domain = c.domain AND d.dump IS NOT DISTINCT FROM c.dump
                AND d.source IS NOT DISTINCT FROM c.source
            """
        ).fetchall()
        weighted = dict(
            db.execute(
                "SELECT domain, sum(calibration_size * sample_weight) FROM documents GROUP BY domain"
            ).fetchall()
        )
        differs = db.execute("SELECT count(*) FROM documents WHERE calibration_size <> n_bytes").fetchone()
    assert rows and all(abs(size - expected) < 1e-6 * expected for size, expected in rows)
    assert differs is not None and differs[0] > 0
    # in bytes units: each predicted domain's weighted sizes are its bytes in the whole input
    assert all(abs(weighted[d] - predicted[d]) < 1e-6 * predicted[d] for d in predicted)


def test_classify_all_keeps_bytes_when_the_shards_token_counts_do_not_fit(
    corpus: Path, tmp_path: Path, tiny_model: Path
) -> None:
    # the `corpus` fixture's token_count is 100 + row: unrelated to the text, so bytes stay
    with run_and_open(corpus, tmp_path / "census", tiny_model, "--sample-rate", "0.2") as db:
        assert db.execute("SELECT bool_and(calibration_size = n_bytes) FROM documents").fetchone() == (True,)


def test_a_tagged_copy_of_a_sampled_out_text_is_a_duplicate_of_the_whole_input(
    tmp_path: Path, tiny_model: Path
) -> None:
    """With the census, a tagged document whose exact copy was read earlier but sampled out is a
    duplicate: the representative is the whole input's first copy, whichever copies the sample drew."""
    records = corpus_documents(400, seed=5, prefix="c")
    for later in range(200, 400, 2):  # every other document of the second half copies one of the first
        records[later]["text"] = records[later - 200]["text"].upper()  # case differs: still exact
    directory = tmp_path / "copies"
    directory.mkdir()
    write_fineweb_parquet(directory / "000.parquet", records)
    first_copy = {}
    expected = {}
    for record in records:
        key = " ".join(str(record["text"]).lower().split())
        expected[record["id"]] = key in first_copy
        first_copy.setdefault(key, record["id"])
    query = "SELECT doc_id, is_duplicate, dup_kind FROM documents"
    with run_and_open(
        directory, tmp_path / "census", tiny_model, "--sample-rate", "0.5", "--dedup", "exact"
    ) as db:
        rows = db.execute(query).fetchall()
        hashed = db.execute("SELECT count(content_hash) FROM skipped WHERE reason = 'not_sampled'").fetchone()
        not_sampled = db.execute("SELECT count(*) FROM skipped WHERE reason = 'not_sampled'").fetchone()
    assert hashed == not_sampled and hashed is not None and hashed[0] > 100
    assert {doc_id: duplicate for doc_id, duplicate, _ in rows} == {
        doc_id: expected[doc_id] for doc_id, *_ in rows
    }
    assert {kind for _, duplicate, kind in rows if duplicate} == {"exact"}
    # without the census only the sample's own copies are found: fewer duplicates
    with run_and_open(
        directory,
        tmp_path / "plain",
        tiny_model,
        "--sample-rate",
        "0.5",
        "--dedup",
        "exact",
        "--no-classify-all",
    ) as db:
        found = db.execute("SELECT count(*) FILTER (WHERE is_duplicate) FROM documents").fetchone()
    assert found is not None and found[0] < sum(expected[doc_id] for doc_id, *_ in rows)
