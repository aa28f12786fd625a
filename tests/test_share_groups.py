"""Share estimates within each crawl dump / Dolma source (`share_estimates_by_group`, sql/11 grouped):
a group's estimate is the whole-input estimate of a store holding only its documents, its interval
covers the group's truth, a group too small to bootstrap gets NULL bounds, and the breakdown views
keep their columns."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from generated import corpus_documents, dolma_records, write_fineweb_parquet, write_jsonl_gz
from harness import run_and_open
from test_share_aggregation import generated_store, write_dev_predictions

from analyzer import DOMAINS
from analyzer.estimates import corpus_shares
from analyzer.estimates.corpus_shares import (
    MEASURES,
    EstimateSettings,
    share_estimates,
    share_estimates_by_group,
)
from analyzer.estimates.intervals import ESTIMATORS
from analyzer.sampler import design_sampling_fraction
from analyzer.sql_library import load_sql

S = len(DOMAINS)
ESTIMATE_COLUMNS = [
    f"{prefix}{suffix}" for _, prefix in MEASURES for suffix in ("", "_lo", "_hi", "_corpus_lo", "_corpus_hi")
]


def only_group(connection: duckdb.DuckDBPyConnection, grouping: str, value: str) -> duckdb.DuckDBPyConnection:
    """A store whose `documents` are one group's documents of `connection`."""
    table = connection.sql(
        f"SELECT * FROM documents WHERE coalesce({grouping}, '(none)') = $value ORDER BY doc_seq",
        params={"value": value},
    ).to_arrow_table()
    alone = duckdb.connect()
    alone.register("documents_source", table)
    alone.execute("CREATE TABLE documents AS SELECT * FROM documents_source")
    alone.unregister("documents_source")
    return alone


def rows_of(table: pa.Table, grouping: str, value: str) -> pa.Table:
    mask = [
        g == grouping and v == value
        for g, v in zip(table["grouping"].to_pylist(), table["group_value"].to_pylist(), strict=True)
    ]
    return table.filter(pa.array(mask))


def test_raw_shares_of_a_group_are_the_raw_shares_of_its_documents_alone() -> None:
    connection = generated_store()
    connection.execute(load_sql("04a_document_groups"))
    connection.execute(load_sql("05_domain_shares_raw"))
    grouped = connection.sql("FROM raw_domain_shares(['dump', 'source'])").to_arrow_table()
    groups = set(zip(grouped["grouping"].to_pylist(), grouped["group_value"].to_pylist(), strict=True))
    assert ("dump", "(none)") in groups and ("source", "books") in groups and len(groups) == 7
    columns = ["docs", "tokens", "token_share", "dedup_docs", "dedup_tokens", "dedup_token_share",
               "byte_share", "doc_share", "estimated_input_tokens"]  # fmt: skip
    for grouping, value in groups:
        alone = only_group(connection, grouping, value)
        alone.execute(load_sql("04a_document_groups"))
        alone.execute(load_sql("05_domain_shares_raw"))
        want = alone.sql(
            f"SELECT domain, {', '.join(columns)} FROM domain_shares_raw WHERE docs > 0"
        ).fetchall()
        got = connection.sql(
            f"SELECT domain, {', '.join(columns)} FROM raw_domain_shares([$grouping]) "
            "WHERE group_value = $value ORDER BY list_position($domains, domain)",
            params={"grouping": grouping, "value": value, "domains": list(DOMAINS)},
        ).fetchall()
        assert [row[0] for row in got] == [row[0] for row in want]
        np.testing.assert_allclose(
            [row[1:] for row in got], [row[1:] for row in want], rtol=1e-12, err_msg=f"{grouping}={value}"
        )
        assert sum(row[3] for row in got) == pytest.approx(1.0)
    with pytest.raises(
        duckdb.InvalidInputException, match="unknown grouping 'host'; use all, dump or source"
    ):
        connection.sql("FROM raw_domain_shares(['host'])").fetchall()


# emq runs one SQL pass per EM step for the grouped store and again for every group alone (~35 s)
GROUP_ESTIMATORS = [pytest.param(e, marks=pytest.mark.slow) if e == "emq" else e for e in ESTIMATORS]


@pytest.mark.parametrize("estimator", GROUP_ESTIMATORS)
def test_each_group_is_estimated_as_if_it_were_the_whole_input(tmp_path: Path, estimator: str) -> None:
    connection = generated_store()
    settings = EstimateSettings(
        dev_predictions=write_dev_predictions(tmp_path),
        estimator=estimator,
        block_size=64,
        replicates=300,
        seed=3,
    )
    grouped = share_estimates_by_group(connection, settings)
    groups = sorted(
        set(zip(grouped["grouping"].to_pylist(), grouped["group_value"].to_pylist(), strict=True))
    )
    # documents with a NULL dump (shard s4) or source form the group '(none)'
    assert groups == [
        ("dump", "(none)"),
        ("dump", "CC-1"),
        ("dump", "CC-2"),
        ("dump", "CC-3"),
        ("source", "(none)"),
        ("source", "books"),
        ("source", "web"),
    ]
    for grouping, value in groups:
        rows = rows_of(grouped, grouping, value)
        assert rows["domain"].to_pylist() == list(DOMAINS)
        alone = share_estimates(only_group(connection, grouping, value), settings)
        assert rows["estimator"].to_pylist() == alone["estimator"].to_pylist()
        for name in ESTIMATE_COLUMNS:
            got, want = rows[name].to_pylist(), alone[name].to_pylist()
            assert (None in got) == (None in want), f"{grouping}={value} {name}"
            if None in want:
                continue
            # points to rounding; bounds also share the clusters, the seed and the sampling fraction.
            # EMQ's extrapolating steps (SQUAREM) let DuckDB's run-to-run summation-order rounding
            # move where EM stops within its tolerance; seen up to 1.3e-6 on a small group's bounds
            # (emq's points and bounds; cc's bounds, which read EMQ's posteriors, not its points).
            tolerance = 1e-12 if name.endswith("share") else 1e-8
            if estimator == "emq" or (estimator == "cc" and not name.endswith("share")):
                tolerance = 1e-5
            np.testing.assert_allclose(
                got, want, rtol=0, atol=tolerance, err_msg=f"{grouping}={value} {name}"
            )


def test_a_group_of_one_cluster_gets_its_point_and_null_bounds() -> None:
    connection = generated_store()  # dump CC-3 is shard s3: 5 documents, one block
    grouped = share_estimates_by_group(connection, EstimateSettings(block_size=64, replicates=200))
    rows = rows_of(grouped, "dump", "CC-3")
    point = np.array(rows["token_share"].to_pylist(), dtype=np.float64)
    assert point.sum() == pytest.approx(1.0)
    for name in ("token_share_lo", "token_share_hi", "token_share_corpus_lo", "dedup_token_share_hi"):
        assert rows[name].to_pylist() == [None] * S
    other = rows_of(grouped, "dump", "CC-2")
    assert None not in other["token_share_lo"].to_pylist()


def test_a_column_that_is_null_throughout_is_skipped() -> None:
    connection = generated_store()
    connection.execute("UPDATE documents SET source = NULL")
    grouped = share_estimates_by_group(connection, EstimateSettings(block_size=64, replicates=100))
    assert set(grouped["grouping"].to_pylist()) == {"dump"}
    connection.execute("UPDATE documents SET dump = NULL")
    empty = share_estimates_by_group(connection, EstimateSettings(block_size=64, replicates=100))
    assert empty.num_rows == 0 and "token_share_lo" in empty.column_names


def test_group_sampling_fraction_is_the_design_fraction_of_its_documents() -> None:
    connection = generated_store()
    connection.execute("UPDATE documents SET sample_weight = 1 + (doc_seq % 7) / 3.0")  # unequal pi, some 1
    # _group_estimates defines these macros for _share_sums
    connection.execute(load_sql("04a_document_groups"))
    connection.execute(load_sql("04b_measure_weights"))
    sums = corpus_shares._share_sums(connection, 64, ("all",), None)[("all", "all")]
    docs = connection.execute(
        "SELECT n_tokens, (n_tokens * (NOT is_duplicate)::INTEGER) AS dedup_tokens, n_bytes, sample_weight, "
        "array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS predicted "
        "FROM documents"
    ).fetchnumpy()
    want = [
        design_sampling_fraction(docs[column], docs["sample_weight"], docs["predicted"])
        for column in ("n_tokens", "dedup_tokens", "n_bytes")
    ]
    np.testing.assert_allclose(corpus_shares._design_sampling_fractions(sums), want, rtol=1e-12)
    assert min(want) < 1.0


def sampled_store(seed: int, rate: float = 0.3) -> tuple[duckdb.DuckDBPyConnection, dict[str, np.ndarray]]:
    """A perfect classifier on a Bernoulli sample: 12 shards in 3 dumps of different domain mixes,
    weights calibrated per shard like sql/04; returns the store and each dump's true token shares
    over every document (sampled out or not)."""
    rng = np.random.default_rng(seed)
    mixes = {
        "CC-A": [0.10, 0.05, 0.15, 0.05, 0.65],
        "CC-B": [0.20, 0.10, 0.05, 0.10, 0.55],
        "CC-C": [0.05, 0.20, 0.25, 0.02, 0.48],
    }
    columns: dict[str, list[np.ndarray]] = {
        name: [] for name in ("shard", "row_index", "true", "tokens", "weight", "dump")
    }
    truth: dict[str, np.ndarray] = {dump: np.zeros(S) for dump in mixes}
    for shard in range(12):
        dump = list(mixes)[shard % 3]
        n = 500
        true = rng.choice(S, size=n, p=mixes[dump])
        tokens = rng.gamma(2.0, 200.0, size=n).astype(np.int64) + 1
        truth[dump] += np.bincount(true, weights=tokens, minlength=S)
        keep = rng.random(n) < rate
        columns["shard"].append(np.full(keep.sum(), f"s{shard:02d}"))
        columns["row_index"].append(np.arange(keep.sum()))
        columns["true"].append(true[keep])
        columns["tokens"].append(tokens[keep])
        columns["weight"].append(np.full(keep.sum(), n / keep.sum()))
        columns["dump"].append(np.full(keep.sum(), dump))
    data = {name: np.concatenate(parts) for name, parts in columns.items()}
    p = np.eye(S)[data["true"]]
    table = pa.table(
        {
            "shard": data["shard"],
            "row_index": data["row_index"],
            "doc_seq": np.arange(data["shard"].size),
            "cluster_id": np.arange(data["shard"].size),  # no duplicates
            "domain": np.array(DOMAINS)[data["true"]],
            **{f"p_{label}": p[:, k] for k, label in enumerate(DOMAINS)},
            "n_tokens": data["tokens"],
            "n_bytes": data["tokens"] * 4,
            "calibration_size": data["tokens"] * 4,
            "is_duplicate": np.zeros(data["shard"].size, dtype=bool),
            "sample_weight": data["weight"],
            "dump": data["dump"],
            "source": pa.nulls(data["shard"].size, pa.string()),
        }
    )
    connection = duckdb.connect()
    connection.register("documents_source", table)
    connection.execute("CREATE TABLE documents AS SELECT * FROM documents_source")
    connection.unregister("documents_source")
    return connection, {dump: total / total.sum() for dump, total in truth.items()}


def test_group_intervals_cover_each_groups_truth_under_sampling() -> None:
    covered, cells, widths = 0, 0, []
    for seed in range(8):
        connection, truth = sampled_store(seed)
        grouped = share_estimates_by_group(
            connection, EstimateSettings(block_size=32, replicates=400, seed=seed)
        )
        assert set(grouped["grouping"].to_pylist()) == {"dump"}  # source is NULL throughout
        for dump, share in truth.items():
            rows = rows_of(grouped, "dump", dump)
            lo = np.array(rows["token_share_lo"].to_pylist(), dtype=np.float64)
            hi = np.array(rows["token_share_hi"].to_pylist(), dtype=np.float64)
            corpus_lo = np.array(rows["token_share_corpus_lo"].to_pylist(), dtype=np.float64)
            assert np.all(corpus_lo <= lo + 1e-12)  # the corpus-level interval is the wider one
            covered += int(np.sum((lo <= share) & (share <= hi)))
            cells += S
            widths.append(hi - lo)
    # 95% intervals: nominal 114 of 120; a perfect classifier leaves sampling error only
    assert covered / cells >= 0.88, (covered, cells)
    assert 0.0 < np.mean(widths) < 0.1


def test_breakdown_views_keep_their_columns_and_carry_intervals(tmp_path: Path, tiny_model: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_fineweb_parquet(corpus / "000.parquet", corpus_documents(300, seed=1, prefix="a"))
    write_jsonl_gz(corpus / "001.jsonl.gz", dolma_records(corpus_documents(300, seed=2, prefix="b")))
    with run_and_open(corpus, tmp_path / "out", tiny_model, "--bootstrap-block", "16") as db:
        by_dump = db.sql("SELECT * FROM domain_shares_by_dump").to_arrow_table()
        by_source = db.sql("SELECT * FROM domain_shares_by_source").to_arrow_table()
        table = db.sql("SELECT * FROM share_estimates_by_group").to_arrow_table()
    assert by_dump.column_names[:6] == ["dump", "domain", "docs", "tokens", "token_share", "dedup_tokens"]
    assert by_source.column_names[:5] == ["source", "domain", "docs", "tokens", "token_share"]
    for view in (by_dump, by_source):
        for name in ("token_share_lo", "token_share_hi", "token_share_raw", "dedup_token_share_lo"):
            assert name in view.column_names
    # the Dolma shard has no dump and the FineWeb one no source: each lands under '(none)'
    assert set(by_dump["dump"].to_pylist()) == {"(none)", "CC-MAIN-2021-04", "CC-MAIN-2023-50"}
    assert set(by_source["source"].to_pylist()) == {"(none)", "common-crawl"}
    assert sum(by_source["docs"].to_pylist()) == 600 and sum(by_dump["docs"].to_pylist()) == 600
    for name in ("grouping", "group_value", "domain", "token_share", "token_share_lo", "token_share_hi"):
        assert name in table.column_names
    for view in (by_dump, by_source):
        share, lo, hi = (
            np.array(view[c].to_pylist(), dtype=np.float64)
            for c in ("token_share", "token_share_lo", "token_share_hi")
        )
        assert not np.isnan(lo).any()
        assert np.all((lo <= share + 1e-12) & (share <= hi + 1e-12))
