"""The store's share estimates come from per-cluster and global sums computed in DuckDB
(sql/11_share_blocks.sql); they must equal the per-document path (`estimate_shares` on one row per
document, the previous design) for every estimator: same points, same intervals, same seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer import DOMAINS
from analyzer.estimates import corpus_shares
from analyzer.estimates.corpus_shares import MEASURES, EstimateSettings, share_estimates
from analyzer.estimates.dev_predictions import load_dev_predictions, training_prior_for
from analyzer.estimates.intervals import ESTIMATORS, ShareEstimate, ShareStatistics, estimate_shares
from analyzer.estimates.quantification import expectation_maximisation_priors, expectation_maximisation_shares
from analyzer.estimates.source_shift import SourceShift, load_source_shift, write_source_shift

S = len(DOMAINS)
TRAIN_COUNTS = {"finance": 240, "law": 180, "code": 150, "medical": 130, "other": 300}

# The previous design's per-document query: what the per-document path reads.
PER_DOCUMENT = """
SELECT
    dense_rank() OVER (ORDER BY shard, row_index // $block_size) - 1 AS cluster_index,
    cluster_id,
    array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS domain_index,
    n_tokens::DOUBLE AS tokens,
    (n_tokens * (NOT is_duplicate)::INTEGER)::DOUBLE AS dedup_tokens,
    n_bytes::DOUBLE AS bytes,
    sample_weight::DOUBLE AS sample_weight,
    calibration_size::DOUBLE AS calibration_size,
    p_finance::DOUBLE AS p_finance, p_law::DOUBLE AS p_law, p_code::DOUBLE AS p_code,
    p_medical::DOUBLE AS p_medical, p_other::DOUBLE AS p_other
FROM documents
ORDER BY doc_seq
"""


DUMP_OF_SHARD = {"s0": "CC-1", "s1": "CC-1", "s2": "CC-2", "s3": "CC-3", "s4": None}


def generated_store(seed: int = 0) -> duckdb.DuckDBPyConnection:
    """A `documents` table like a sampled run's: uneven shards, per-shard sample weights, soft float32
    posteriors, duplicates (a whole block of them, so dedup_tokens drops a cluster), empty documents."""
    rng = np.random.default_rng(seed)
    sizes = [700, 90, 1300, 5, 400]
    shard = np.concatenate([np.full(n, f"s{k}") for k, n in enumerate(sizes)])
    row_index = np.concatenate([np.arange(n) for n in sizes])
    n = shard.size
    true = rng.choice(S, size=n, p=[0.1, 0.05, 0.15, 0.05, 0.65])
    logits = 1.5 * np.eye(S)[true] + rng.normal(size=(n, S))
    p = np.exp(logits)
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    n_tokens = rng.gamma(2.0, 300.0, size=n).astype(np.int64)
    n_tokens[rng.random(n) < 0.02] = 0
    is_duplicate = rng.random(n) < 0.15
    is_duplicate[(shard == "s0") & (row_index < 64)] = True
    # a duplicate joins the cluster of an earlier document, sometimes in another shard or group
    cluster_id = np.arange(n)
    for index in np.flatnonzero(is_duplicate):
        cluster_id[index] = cluster_id[rng.integers(0, index)] if index else 0
    weight_of_shard = {f"s{k}": w for k, w in enumerate([1.0, 2.5, 1.25, 4.0, 1.0])}
    table = pa.table(
        {
            "shard": shard,
            "row_index": row_index,
            "doc_seq": np.arange(n),
            "cluster_id": cluster_id,
            "domain": np.array(DOMAINS)[p.argmax(axis=1)],
            **{f"p_{label}": p[:, k] for k, label in enumerate(DOMAINS)},
            "n_tokens": n_tokens,
            "n_bytes": n_tokens * 4 + rng.integers(0, 50, size=n),
            # what a census calibrates on: here a token-like count of its own (read only with one)
            "calibration_size": n_tokens + rng.integers(0, 20, size=n),
            "is_duplicate": is_duplicate,
            "sample_weight": np.array([weight_of_shard[s] for s in shard]),
            # groups for share_estimates_by_group: a dump per shard (s4 has none, s3 is one block),
            # sources that split shards mid-block, some documents without one
            "dump": np.array([DUMP_OF_SHARD[s] for s in shard], dtype=object),
            "source": np.where(row_index % 300 < 200, "web", np.where(row_index % 300 < 280, "books", None)),
        }
    )
    connection = duckdb.connect()
    connection.register("documents_source", table)
    connection.execute("CREATE TABLE documents AS SELECT * FROM documents_source")
    connection.unregister("documents_source")
    return connection


def write_dev_predictions(folder: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    n = 1500
    true = rng.integers(0, S, size=n)
    logits = 2.0 * np.eye(S)[true] + rng.normal(size=(n, S))
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    path = folder / "model.dev-predictions.parquet"
    pq.write_table(
        pa.table(
            {
                "label": np.array(DOMAINS)[true],
                **{f"p_{label}": p[:, k] for k, label in enumerate(DOMAINS)},
                "n_bytes": rng.integers(100, 5000, size=n),
            }
        ),
        path,
    )
    (folder / "model.metrics.json").write_text(json.dumps({"train": {"train_counts": TRAIN_COUNTS}}))
    return path


def per_document_estimates(
    connection: duckdb.DuckDBPyConnection,
    settings: EstimateSettings,
    fractions: list[float],
    census: bool = False,
) -> pa.Table:
    """The store's table the previous way: every document fetched, `estimate_shares` on the arrays,
    with the store's sampling fraction of each measure (how f is defined is not at stake here).
    `census`: the weights were calibrated to a census of `calibration_size`, so every cluster's
    weighted sizes (all its documents', also those without weight in the measure) are the strata."""
    docs = connection.execute(PER_DOCUMENT, {"block_size": settings.block_size}).fetchnumpy()
    assert settings.dev_predictions is not None
    dev = load_dev_predictions(settings.dev_predictions)
    prior = training_prior_for(settings.dev_predictions, dev)
    shift = load_source_shift(settings.source_shift) if settings.source_shift else None
    ids = np.asarray(docs["cluster_index"], dtype=np.int64)
    duplicate_sets = np.asarray(docs["cluster_id"], dtype=np.int64)
    probabilities = np.column_stack([np.asarray(docs[f"p_{label}"], dtype=np.float64) for label in DOMAINS])
    sample_weight = np.asarray(docs["sample_weight"], dtype=np.float64)
    predicted = np.asarray(docs["domain_index"], dtype=np.int64)
    columns: dict[str, list[object]] = {"domain": list(DOMAINS)}
    for (measure, prefix), fraction in zip(MEASURES, fractions, strict=True):
        weighted = np.asarray(docs[measure], dtype=np.float64) * sample_weight
        keep = weighted > 0
        stratum_weights = None
        if census:
            keep = np.isin(ids, ids[keep])
            stratum_weights = (np.asarray(docs["calibration_size"], dtype=np.float64) * sample_weight)[keep]
        _, dense = np.unique(ids[keep], return_inverse=True)
        result = estimate_shares(
            dense.reshape(-1),
            weighted[keep],
            probabilities[keep],
            settings.estimator,
            dev=dev,
            training_prior=prior,
            sampling_fraction=fraction,
            predicted=predicted[keep],
            duplicate_sets=duplicate_sets[keep],
            stratum_weights=stratum_weights,
            sample_weights=sample_weight[keep],
            source_shift=shift,
            replicates=settings.replicates,
            confidence=settings.confidence,
            seed=settings.seed,
        )
        values = (result.point, result.input_lo, result.input_hi, result.corpus_lo, result.corpus_hi)
        for suffix, value in zip(("", "_lo", "_hi", "_corpus_lo", "_corpus_hi"), values, strict=True):
            columns[f"{prefix}{suffix}"] = list(value)
        if measure == "tokens" and shift is not None:
            columns["unfamiliar_fraction"] = [result.unfamiliar_fraction] * S
    return pa.table(columns)


def write_source_shift_rows(folder: Path) -> Path:
    """Rows that read other as finance now and then, with unsure shares that put the generated
    store's (98.5 % of its token weight below 0.9) between familiar and unseen."""
    rates = np.vstack([np.eye(S)[:4], [[0.03, 0, 0, 0, 0.97]], [[0.08, 0.02, 0, 0, 0.9]]])
    shift = SourceShift(("a", "b", "c", "d", "e", "f"), np.array([0, 1, 2, 3, 4, 4]), rates, 0.97, 0.995)
    path = folder / "model.source-shift.json"
    write_source_shift(shift, path)
    return path


@pytest.mark.parametrize(
    ("estimator", "census", "shifted"),
    [
        *((name, False, False) for name in ESTIMATORS),
        ("cc", True, False),
        ("acc", True, False),
        ("cc", True, True),
    ],
)
def test_aggregated_store_path_equals_the_per_document_path(
    tmp_path: Path, estimator: str, census: bool, shifted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = generated_store()
    # a --classify-all run: the census's presence makes the store re-calibrate each replicate
    connection.execute(
        "CREATE TABLE census AS SELECT * FROM (VALUES ('s0', 'other', 10, 5000)) "
        "AS c(shard, domain, docs, bytes)" + ("" if census else " WHERE false")
    )
    settings = EstimateSettings(
        dev_predictions=write_dev_predictions(tmp_path),
        source_shift=write_source_shift_rows(tmp_path) if shifted else None,
        estimator=estimator,
        block_size=64,
        replicates=400,
        seed=7,
    )
    fractions: list[float] = []
    from_statistics = corpus_shares.estimate_shares_from_statistics

    def spy(statistics: ShareStatistics, method: str, **options: Any) -> ShareEstimate:
        fractions.append(options["sampling_fraction"])
        return from_statistics(statistics, method, **options)

    monkeypatch.setattr(corpus_shares, "estimate_shares_from_statistics", spy)
    aggregated = share_estimates(connection, settings)
    monkeypatch.undo()
    assert len(fractions) == len(MEASURES) and min(fractions) < 1.0  # a sampled input
    expected = per_document_estimates(connection, settings, fractions, census)
    assert aggregated.column("estimator").to_pylist() == [estimator] * S
    if shifted:  # the term is at stake only part of the way
        assert 0.0 < expected.column("unfamiliar_fraction")[0].as_py() < 1.0
    else:
        assert aggregated.column("unfamiliar_fraction").to_pylist() == [None] * S
    for name in expected.column_names[1:]:
        got = np.array(aggregated.column(name).to_pylist(), dtype=np.float64)
        want = np.array(expected.column(name).to_pylist(), dtype=np.float64)
        # Only the order of floating-point sums differs (DuckDB vs numpy). Points agree to rounding;
        # bounds to ~1e-10: the label-noise covariance is singular (rows sum to 0), and the square
        # root of its rounding-level null eigenvalue (~1e-20) enters every draw.
        tolerance = 1e-12 if name.endswith("share") else 1e-8
        # SQUAREM lets that rounding move where EM stops (seen up to ~1e-6): emq's points and
        # bounds, cc's bounds (its interval reads EMQ's posteriors)
        if estimator == "emq" or (estimator == "cc" and not name.endswith("share")):
            tolerance = 1e-5
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance, err_msg=f"{estimator} {name}")
    # the generated store exercises what matters: a sampled input and a cluster without dedup weight
    point = np.array(aggregated.column("token_share").to_pylist())
    assert point.sum() == pytest.approx(1.0)
    lo, hi = (np.array(aggregated.column(c).to_pylist()) for c in ("token_share_lo", "token_share_hi"))
    assert np.all(hi - lo > 0)


def test_emq_on_several_weightings_at_once_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(S), size=3000)
    weights = rng.gamma(2.0, 100.0, size=(3, 3000))
    weights[1, :1000] = 0.0
    prior = np.array(list(TRAIN_COUNTS.values()), dtype=np.float64)

    def sums(ratios: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.stack(
            [w @ (p * r / (p * r).sum(axis=1, keepdims=True)) for w, r in zip(weights, ratios, strict=True)]
        )
        return out

    shares, ratios = expectation_maximisation_priors(sums, weights.sum(axis=1), prior)
    for k in range(3):
        alone, posterior = expectation_maximisation_shares(p, weights[k], prior)
        np.testing.assert_allclose(shares[k], alone, rtol=1e-12, atol=1e-15)
        reweighted = p * ratios[k] / (p * ratios[k]).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(reweighted, posterior, rtol=1e-12, atol=1e-15)


def test_dev_predictions_are_read_once_per_file_version(tmp_path: Path) -> None:
    path = write_dev_predictions(tmp_path, seed=1)
    first = load_dev_predictions(path)
    assert load_dev_predictions(path) is first  # a run's build asks several times
    table = pq.read_table(path).slice(0, 100)
    pq.write_table(table, path)  # the file changes: read again
    changed = load_dev_predictions(path)
    assert changed is not first and changed.true_index.size == 100
