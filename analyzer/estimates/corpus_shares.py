"""Corrected domain shares with intervals for a finished store: the `share_estimates` table.

Reads per-block totals (sql/11_share_blocks.sql), corrects classify-and-count with the model's
dev-set confusion (adjusted classify-and-count) and bounds it with a cluster bootstrap whose
replicates also resample the dev set. Without dev predictions (a model brought by the user), the
estimate is plain classify-and-count and the interval covers sampling only; `estimator` says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer import DOMAINS
from analyzer.errors import ModelError
from analyzer.estimates.bootstrap import (
    ShareEstimator,
    acc_estimator,
    cc_estimator,
    cluster_bootstrap,
    pacc_estimator,
    pcc_estimator,
    resample_confusion,
    resample_probabilistic_confusion,
)
from analyzer.estimates.quantification import (
    confusion_counts,
    probabilistic_confusion_totals,
    rates_from_counts,
)
from analyzer.sql_library import load_sql

DEV_PREDICTION_COLUMNS = ("label", *(f"p_{label}" for label in DOMAINS), "n_bytes")
ESTIMATORS = ("cc", "acc", "pcc", "pacc")
"""cc: classify and count; acc: adjusted with the dev confusion; pcc: probability average;
pacc: probability average adjusted with the dev mean-probability matrix."""
MEASURES = (("tokens", "token_share"), ("dedup_tokens", "dedup_token_share"), ("bytes", "byte_share"))


@dataclass(frozen=True)
class EstimateSettings:
    """How shares are corrected and bounded; recorded with the run's options."""

    dev_predictions: Path | None = None
    """Parquet of the model's dev-set predictions (label, p_*, n_bytes), shipped beside the model."""
    estimator: str = "cc"
    """One of ESTIMATORS. cc is the default because, judged by cross-fitted models on the shared
    corpus (bench/estimate_accuracy.py), the dev set's per-class error rates did not carry over:
    acc/pacc over-corrected finance and other by 2-4 points while cc stayed within about 1.2."""
    block_size: int = 256
    """Consecutive rows of one shard that form one bootstrap cluster."""
    replicates: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class DevPredictions:
    """A model's predictions on its labelled dev set, as class indices in DOMAINS order."""

    true_index: np.ndarray
    predicted_index: np.ndarray
    weights: np.ndarray
    probabilities: np.ndarray

    def confusion(self) -> np.ndarray:
        """P(predicted j | true i), weighted by bytes so it applies to token-like totals."""
        counts = confusion_counts(self.true_index, self.predicted_index, self.weights, len(DOMAINS))
        return rates_from_counts(counts)

    def probabilistic_confusion(self) -> np.ndarray:
        """Row i: the mean probability vector of dev documents of true class i (byte-weighted)."""
        totals = probabilistic_confusion_totals(self.true_index, self.probabilities, self.weights)
        return rates_from_counts(totals)


def dev_predictions_path_for(model_path: Path) -> Path:
    """Where a model's dev predictions live: `<model stem>.dev-predictions.parquet`."""
    return model_path.with_name(f"{model_path.stem}.dev-predictions.parquet")


def load_dev_predictions(path: Path) -> DevPredictions:
    """Read the dev predictions parquet; a broken file is a ModelError naming it."""
    try:
        table = pq.read_table(path, columns=list(DEV_PREDICTION_COLUMNS))
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise ModelError(
            f"{path}: dev predictions unreadable ({exc}); rebuild them with `make classifier`"
        ) from exc
    index_of = {label: index for index, label in enumerate(DOMAINS)}
    labels = table.column("label").to_pylist()
    unknown = sorted({label for label in labels if label not in index_of})
    if unknown:
        raise ModelError(f"{path}: labels {unknown} are not domains {list(DOMAINS)}; rebuild them")
    probabilities = np.column_stack([table.column(f"p_{label}").to_numpy() for label in DOMAINS])
    return DevPredictions(
        true_index=np.array([index_of[label] for label in labels], dtype=np.int64),
        predicted_index=probabilities.argmax(axis=1).astype(np.int64),
        weights=table.column("n_bytes").to_numpy().astype(np.float64),
        probabilities=probabilities,
    )


def share_estimates(connection: duckdb.DuckDBPyConnection, settings: EstimateSettings) -> pa.Table:
    """One row per domain: token, dedup-token and byte shares by the chosen estimator, with intervals."""
    if settings.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {settings.estimator!r}; choose one of {ESTIMATORS}")
    blocks = connection.execute(load_sql("11_share_blocks"), {"block_size": settings.block_size}).fetchnumpy()
    n_clusters = int(blocks["cluster_index"].max()) + 1 if len(blocks["cluster_index"]) else 0
    dev = load_dev_predictions(settings.dev_predictions) if settings.dev_predictions else None
    method = settings.estimator if dev is not None or settings.estimator in ("cc", "pcc") else "cc"
    columns: dict[str, list[object]] = {"domain": list(DOMAINS)}
    for measure, prefix in MEASURES:
        counts = _cluster_matrix(blocks, measure, n_clusters)
        probabilities = _probability_matrix(blocks, measure, n_clusters)
        point, lo, hi = _interval(method, counts, probabilities, dev, settings)
        columns[prefix], columns[f"{prefix}_lo"], columns[f"{prefix}_hi"] = point, lo, hi
    note = "" if method == settings.estimator else f" ({settings.estimator} needs dev predictions)"
    columns["estimator"] = [method + note] * len(DOMAINS)
    columns["confidence"] = [settings.confidence] * len(DOMAINS)
    return pa.table(columns)


def _estimator_and_model_draws(
    method: str, dev: DevPredictions | None, settings: EstimateSettings
) -> tuple[ShareEstimator, Iterator[np.ndarray] | None]:
    """The estimator and, for corrected ones, one dev-resampled matrix per bootstrap replicate."""
    if method == "cc" or dev is None:
        return (pcc_estimator if method == "pcc" else cc_estimator), None
    if method == "pcc":
        return pcc_estimator, None
    if method == "acc":
        draws = resample_confusion(
            dev.true_index, dev.predicted_index, dev.weights, settings.replicates, settings.seed
        )
        return acc_estimator(dev.confusion()), draws
    draws = resample_probabilistic_confusion(
        dev.true_index, dev.probabilities, dev.weights, settings.replicates, settings.seed
    )
    return pacc_estimator(dev.probabilistic_confusion()), draws


def _cluster_matrix(blocks: dict[str, np.ndarray], measure: str, n_clusters: int) -> np.ndarray:
    """(cluster x domain) totals of one measure from the long per-block table."""
    totals = np.zeros((n_clusters, len(DOMAINS)), dtype=np.float64)
    if n_clusters:
        domain_index = {label: index for index, label in enumerate(DOMAINS)}
        columns = np.array([domain_index[str(label)] for label in blocks["domain"]], dtype=np.int64)
        np.add.at(totals, (blocks["cluster_index"].astype(np.int64), columns), blocks[measure].astype(float))
    return totals


def _probability_matrix(blocks: dict[str, np.ndarray], measure: str, n_clusters: int) -> np.ndarray:
    """(cluster x domain) probability-weighted totals of one measure (summed over predicted domains)."""
    totals = np.zeros((n_clusters, len(DOMAINS)), dtype=np.float64)
    if n_clusters:
        clusters = blocks["cluster_index"].astype(np.int64)
        for index, label in enumerate(DOMAINS):
            np.add.at(totals[:, index], clusters, blocks[f"p_{label}_{measure}"].astype(float))
    return totals


def _interval(
    method: str,
    counts: np.ndarray,
    probabilities: np.ndarray,
    dev: DevPredictions | None,
    settings: EstimateSettings,
) -> tuple[list[object], list[object], list[object]]:
    if counts.sum() <= 0:
        empty: list[object] = [None] * len(DOMAINS)
        return empty, empty, empty
    estimator, model_draws = _estimator_and_model_draws(method, dev, settings)
    try:
        interval = cluster_bootstrap(
            counts,
            estimator,
            probability_totals=probabilities,
            confusions=model_draws,
            n_replicates=settings.replicates,
            confidence=settings.confidence,
            seed=settings.seed,
        )
    except ValueError:
        # fewer than two clusters or a replicate of empty clusters (tiny inputs): point only
        point = estimator(counts.sum(axis=0, keepdims=True), probabilities.sum(axis=0, keepdims=True), None)[
            0
        ]
        return list(point), [None] * len(DOMAINS), [None] * len(DOMAINS)
    return list(interval.point), list(interval.lo), list(interval.hi)
