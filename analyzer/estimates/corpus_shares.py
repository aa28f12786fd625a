"""Corrected domain shares with intervals for a finished store: the `share_estimates` table.

Reads per bootstrap block (cluster) and overall sums of the tagged documents from DuckDB
(sql/11_share_blocks.sql; never one row per document, so memory follows the number of blocks), estimates
shares with the chosen estimator (cc, acc, pcc, pacc or emq) and bounds them twice: for the analysed
input (finite-population-corrected sampling error plus the classifier's own error) and for the
corpus the input was drawn from (the full cluster bootstrap plus the classifier's error). Without
dev predictions (a model brought by the user), acc/pacc fall back to classify-and-count and
`estimator` says so.
"""

from __future__ import annotations

import json
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
    cluster_totals,
    pacc_estimator,
    pcc_estimator,
    probability_cluster_totals,
    resample_confusion,
    resample_probabilistic_confusion,
)
from analyzer.estimates.quantification import (
    confusion_counts,
    expectation_maximisation_priors,
    expectation_maximisation_shares,
    label_noise_covariance_from_moments,
    label_noise_moments,
    probabilistic_confusion_totals,
    rates_from_counts,
)
from analyzer.sampler import design_sampling_fractions
from analyzer.sql_library import load_sql

DEV_PREDICTION_COLUMNS = ("label", *(f"p_{label}" for label in DOMAINS), "n_bytes")
ESTIMATORS = ("cc", "acc", "pcc", "pacc", "emq")
"""cc: classify and count; acc: adjusted with the dev confusion; pcc: probability average;
pacc: probability average adjusted with the dev mean-probability matrix; emq: EM prior re-estimation
(Saerens, Latinne & Decaestecker 2002) on the calibrated posteriors, token-weighted."""
MEASURES = (("tokens", "token_share"), ("dedup_tokens", "dedup_token_share"), ("bytes", "byte_share"))


@dataclass(frozen=True)
class EstimateSettings:
    """How shares are corrected and bounded; recorded with the run's options."""

    dev_predictions: Path | None = None
    """Parquet of the model's dev-set predictions (label, p_*, n_bytes), shipped beside the model."""
    estimator: str = "cc"
    """One of ESTIMATORS. cc is the default because, judged by cross-fitted models on the shared
    corpus (bench/estimate_accuracy.py), it had the smallest errors: the dev set's per-class error
    rates and the model's training prior did not carry over to the corpus, so acc/pacc over-corrected
    finance and other by 2-4 points and emq by up to 1.7, while cc stayed within 1.1 (README)."""
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


def training_prior_for(dev_predictions: Path | None, dev: DevPredictions | None) -> np.ndarray | None:
    """The class prior the model's posteriors are calibrated for (EMQ needs it).

    From `<model>.metrics.json` (`train.train_counts`, written by `analyzer train`) when it sits beside
    the dev predictions; otherwise the dev set's mean posterior, the prior the model expresses on
    labelled text. None without either.
    """
    if dev_predictions is not None:
        stem = dev_predictions.name.removesuffix(".dev-predictions.parquet")
        metrics = dev_predictions.with_name(f"{stem}.metrics.json")
        try:
            counts = json.loads(metrics.read_text())["train"]["train_counts"]
            prior = np.array([float(counts[label]) for label in DOMAINS])
            if np.all(prior > 0):
                normalised: np.ndarray = prior / prior.sum()
                return normalised
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if dev is None:
        return None
    mean = np.asarray(dev.probabilities.mean(axis=0), dtype=np.float64)
    dev_prior: np.ndarray = mean / mean.sum()
    return dev_prior


@dataclass(frozen=True)
class ShareEstimate:
    """Point estimate with two intervals: for the analysed input and for the corpus it was drawn from."""

    point: np.ndarray
    input_lo: np.ndarray
    input_hi: np.ndarray
    corpus_lo: np.ndarray
    corpus_hi: np.ndarray
    sampling_fraction: float


@dataclass(frozen=True)
class ShareStatistics:
    """All that `estimate_shares_from_statistics` needs of one measure's documents: sums only.

    C clusters (bootstrap blocks, in a fixed order) by S domains, plus a few global sums; the store
    computes them in DuckDB (sql/11_share_blocks.sql), `document_statistics` from per-document arrays.
    The posteriors q are the calibrated probabilities, or EMQ's re-weighted ones.
    """

    counts: np.ndarray
    """(C, S) weight per cluster and predicted domain."""
    posterior_totals: np.ndarray
    """(C, S) sum of w q per cluster."""
    calibrated_totals: np.ndarray
    """(S,) sum of w p with the calibrated probabilities (the PCC reading)."""
    noise_diagonal: np.ndarray
    """(S,) sum of w^2 q: with `noise_outer` the label-noise covariance."""
    noise_outer: np.ndarray
    """(S, S) sum of w^2 q q^T."""
    total_weight: float
    """sum of w."""


def document_statistics(
    cluster_ids: np.ndarray,
    weights: np.ndarray,
    probabilities: np.ndarray,
    *,
    predicted: np.ndarray | None = None,
    posteriors: np.ndarray | None = None,
) -> ShareStatistics:
    """The sums of `ShareStatistics` from one row per document (dense cluster ids, weights, calibrated
    probabilities, rows renormalised here; `predicted` defaults to the argmax, `posteriors` to them)."""
    ids = np.asarray(cluster_ids, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    posterior = p if posteriors is None else np.asarray(posteriors, dtype=np.float64)
    n_classes = p.shape[1]
    n_clusters = int(ids.max()) + 1 if ids.size else 0
    top = p.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    diagonal, outer, total = label_noise_moments(posterior, w)
    return ShareStatistics(
        counts=cluster_totals(ids, top, w, n_clusters, n_classes),
        posterior_totals=probability_cluster_totals(ids, posterior, w, n_clusters),
        calibrated_totals=w @ p,
        noise_diagonal=diagonal,
        noise_outer=outer,
        total_weight=total,
    )


def estimate_shares(
    cluster_ids: np.ndarray,
    weights: np.ndarray,
    probabilities: np.ndarray,
    method: str,
    *,
    dev: DevPredictions | None = None,
    training_prior: np.ndarray | None = None,
    sampling_fraction: float = 1.0,
    predicted: np.ndarray | None = None,
    replicates: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ShareEstimate:
    """Shares of one measure by `method` from one row per document; see `estimate_shares_from_statistics`.

    Per document: its bootstrap cluster (dense ids), its weight (e.g. tokens x sample weight) and its
    calibrated probabilities; `predicted` is its top domain (default: the argmax). A thin wrapper:
    EMQ's posteriors, then `document_statistics`, then the estimate from those sums (the store
    computes the same sums in DuckDB instead).
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")
    if not 0.0 < sampling_fraction <= 1.0:
        raise ValueError(f"sampling_fraction must be in (0, 1], got {sampling_fraction}")
    w = np.asarray(weights, dtype=np.float64)
    posterior = None
    if method == "emq":
        if training_prior is None:
            raise ValueError("the EMQ estimator needs the model's training prior")
        p = np.asarray(probabilities, dtype=np.float64)
        _, posterior = expectation_maximisation_shares(p / p.sum(axis=1, keepdims=True), w, training_prior)
    statistics = document_statistics(cluster_ids, w, probabilities, predicted=predicted, posteriors=posterior)
    return estimate_shares_from_statistics(
        statistics,
        method,
        dev=dev,
        sampling_fraction=sampling_fraction,
        replicates=replicates,
        confidence=confidence,
        seed=seed,
    )


def estimate_shares_from_statistics(
    statistics: ShareStatistics,
    method: str,
    *,
    dev: DevPredictions | None = None,
    sampling_fraction: float = 1.0,
    replicates: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ShareEstimate:
    """Shares of one measure by `method`, with an input-level and a corpus-level interval.

    For EMQ, `statistics` must hold its re-weighted posteriors (they are the PCC of them). Every
    replicate adds up
    - sampling: a cluster bootstrap deviation with the point model; for the input-level interval it
      is scaled by sqrt(1 - f) (finite-population correction: with every document read, f = 1, there
      is no sampling error about the input), for the corpus-level one it is kept whole;
    - the model's calibration (acc, pacc): the estimate with a dev-resampled matrix, minus the point;
    - label noise: which documents are misread is unknown even when all are read, so a draw from
      N(0, sum_d w_d^2 (diag(p_d) - p_d p_d^T) / W^2) (the posteriors' multinomial covariance);
    - decision-rule ambiguity: the gap b = |CC - PCC| between counting top labels and averaging
      posteriors bounds a bias of unknown sign that the dev set cannot size for a corpus unlike it
      (README); as a GUM type-B term it enters as N(0, b^2 / 3), so the 95% bounds reach 1.13 b.
    Percentile bounds of the sums, clipped to [0, 1]. For cc the bounds also span the PCC reading
    (PCC with its own sampling deviation and label noise), the truth if the posteriors are calibrated.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")
    if not 0.0 < sampling_fraction <= 1.0:
        raise ValueError(f"sampling_fraction must be in (0, 1], got {sampling_fraction}")
    counts = np.asarray(statistics.counts, dtype=np.float64)
    n_classes = counts.shape[1]
    cc_point = counts.sum(axis=0) / counts.sum()
    pcc_point = statistics.calibrated_totals / statistics.total_weight
    prob_totals = np.asarray(statistics.posterior_totals, dtype=np.float64)
    estimator = _point_estimator(method, dev)
    sampling = cluster_bootstrap(
        counts,
        estimator,
        probability_totals=prob_totals,
        n_replicates=replicates,
        confidence=confidence,
        seed=seed,
    )
    point = sampling.point
    deviation = sampling.replicates - point
    model = np.zeros_like(deviation)
    draws = _model_draws(method, dev, replicates, seed)
    if draws is not None:
        totals = np.repeat(counts.sum(axis=0)[None], replicates, axis=0)
        ptotals = np.repeat(prob_totals.sum(axis=0)[None], replicates, axis=0)
        matrices = np.stack([next(draws) for _ in range(replicates)])
        model = estimator(totals, ptotals, matrices) - point
    rng = np.random.default_rng(seed + 1)
    covariance = label_noise_covariance_from_moments(
        statistics.noise_diagonal, statistics.noise_outer, statistics.total_weight
    )
    noise = rng.multivariate_normal(np.zeros(n_classes), covariance, size=replicates, method="eigh")
    # A bias of unknown sign up to b = |CC - PCC| is a rectangular distribution on [-b, b]: standard
    # uncertainty b / sqrt(3) (GUM type B), combined as a normal term so the bounds reach past +-b.
    ambiguity = rng.normal(size=(replicates, n_classes)) * (np.abs(cc_point - pcc_point) / np.sqrt(3.0))[None]
    classifier = model + noise + ambiguity
    readings = [(point, deviation, classifier)]
    if method == "cc":
        # CC's bias is the gap to PCC if the posteriors are calibrated for this input: then the truth
        # is PCC up to label noise, so the interval also spans that reading (paired cluster draws).
        pcc_sampling = cluster_bootstrap(
            counts, pcc_estimator, probability_totals=prob_totals, n_replicates=replicates, seed=seed
        )
        readings.append((pcc_sampling.point, pcc_sampling.replicates - pcc_sampling.point, noise))
    alpha = 1.0 - confidence
    bounds = []
    for scale in (np.sqrt(1.0 - sampling_fraction), 1.0):
        lo, hi = point.copy(), point.copy()
        for centre, sampled, classifier_error in readings:
            draws_total = centre + scale * sampled + classifier_error
            q_lo, q_hi = np.quantile(draws_total, [alpha / 2, 1 - alpha / 2], axis=0)
            lo, hi = np.minimum(lo, q_lo), np.maximum(hi, q_hi)
        bounds.append((np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)))
    return ShareEstimate(point, bounds[0][0], bounds[0][1], bounds[1][0], bounds[1][1], sampling_fraction)


def _point_estimator(method: str, dev: DevPredictions | None) -> ShareEstimator:
    if method == "acc" and dev is not None:
        return acc_estimator(dev.confusion())
    if method == "pacc" and dev is not None:
        return pacc_estimator(dev.probabilistic_confusion())
    if method in ("pcc", "emq"):
        return pcc_estimator
    if method in ("acc", "pacc"):
        raise ValueError(f"the {method} estimator needs dev predictions")
    return cc_estimator


def _model_draws(
    method: str, dev: DevPredictions | None, replicates: int, seed: int
) -> Iterator[np.ndarray] | None:
    """One dev-resampled matrix per replicate for the adjusted estimators, else None."""
    if dev is None or method not in ("acc", "pacc"):
        return None
    if method == "acc":
        return resample_confusion(dev.true_index, dev.predicted_index, dev.weights, replicates, seed)
    return resample_probabilistic_confusion(dev.true_index, dev.probabilities, dev.weights, replicates, seed)


def share_estimates(connection: duckdb.DuckDBPyConnection, settings: EstimateSettings) -> pa.Table:
    """One row per domain: token, dedup-token and byte shares by the chosen estimator, with intervals.

    `<prefix>_lo/_hi` bound the share of the analysed input (finite-population corrected, so they
    narrow to the classifier's own error when every document was read); `<prefix>_corpus_lo/_hi`
    bound the share of the corpus the input's blocks stand for (full cluster bootstrap), which is
    what `analyzer estimate --corpus` extrapolates. Only per-cluster and global sums leave DuckDB
    (sql/11_share_blocks.sql), so memory grows with the number of clusters, not of documents; EMQ
    runs each of its iterations as one more aggregation over `documents`.
    """
    method, dev, prior = _resolved_estimator(settings)
    # f of the input-level factor sqrt(1 - f) from each document's inclusion probability, not the
    # tagged fraction: they differ under the size-aware design (analyzer/sampler.py, sql/11a)
    fractions = design_sampling_fractions(connection, [measure for measure, _ in MEASURES])
    estimates = _group_estimates(connection, settings, (WHOLE_INPUT,), method, dev, prior, fractions)
    columns = estimates.get((WHOLE_INPUT, WHOLE_INPUT)) or _no_estimates()
    return pa.table(_with_estimator_columns({"domain": list(DOMAINS), **columns}, method, settings))


GROUPINGS = ("dump", "source")
"""The `documents` columns whose values `share_estimates_by_group` estimates shares within."""
WHOLE_INPUT = "all"
"""The grouping (and group value) of sql/11_share_blocks.sql that is the whole input."""
_ESTIMATE_SUFFIXES = ("", "_lo", "_hi", "_corpus_lo", "_corpus_hi")


def share_estimates_by_group(
    connection: duckdb.DuckDBPyConnection,
    settings: EstimateSettings,
    groupings: tuple[str, ...] = GROUPINGS,
) -> pa.Table:
    """`share_estimates` within each group of each grouping column (e.g. each crawl dump).

    One row per (grouping, group_value, domain). A group's estimate is the one `share_estimates`
    gives for a store holding only the group's documents: the same estimator and settings, its own
    clusters (the (shard, block) clusters restricted to the group), its own EMQ prior and its own
    design sampling fraction; a group of fewer than 2 clusters gets the point and NULL bounds.
    Documents with NULL in a column are in no group of it; a column that is NULL throughout is
    skipped. All groups of all columns come from one aggregation (per EMQ step).
    """
    unknown = sorted(set(groupings) - set(GROUPINGS))
    if unknown:
        raise ValueError(f"unknown groupings {unknown}; choose from {GROUPINGS}")
    method, dev, prior = _resolved_estimator(settings)
    present = _non_null_groupings(connection, groupings)
    estimates = _group_estimates(connection, settings, present, method, dev, prior, None)
    columns: dict[str, list[object]] = {"grouping": [], "group_value": [], "domain": []}
    for suffix_prefix in _estimate_names():
        columns[suffix_prefix] = []
    for (grouping, group_value), values in sorted(estimates.items()):
        columns["grouping"] += [grouping] * len(DOMAINS)
        columns["group_value"] += [group_value] * len(DOMAINS)
        columns["domain"] += list(DOMAINS)
        for name, value in values.items():
            columns[name] += value
    rows = len(columns["domain"])
    columns = _with_estimator_columns(columns, method, settings, rows)
    schema = pa.schema(
        [
            ("grouping", pa.string()),
            ("group_value", pa.string()),
            ("domain", pa.string()),
            *((name, pa.float64()) for name in _estimate_names()),
            ("estimator", pa.string()),
            ("confidence", pa.float64()),
        ]
    )
    return pa.table(columns, schema=schema)


def _estimate_names() -> list[str]:
    return [f"{prefix}{suffix}" for _, prefix in MEASURES for suffix in _ESTIMATE_SUFFIXES]


def _resolved_estimator(settings: EstimateSettings) -> tuple[str, DevPredictions | None, np.ndarray | None]:
    """(the estimator that can run, dev predictions, training prior): acc/pacc/emq fall back to cc."""
    if settings.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {settings.estimator!r}; choose one of {ESTIMATORS}")
    dev = load_dev_predictions(settings.dev_predictions) if settings.dev_predictions else None
    prior = training_prior_for(settings.dev_predictions, dev)
    method = settings.estimator
    if (method in ("acc", "pacc") and dev is None) or (method == "emq" and prior is None):
        method = "cc"
    return method, dev, prior


def _with_estimator_columns(
    columns: dict[str, list[object]], method: str, settings: EstimateSettings, rows: int = len(DOMAINS)
) -> dict[str, list[object]]:
    note = "" if method == settings.estimator else f" ({settings.estimator} needs dev predictions)"
    return {**columns, "estimator": [method + note] * rows, "confidence": [settings.confidence] * rows}


def _non_null_groupings(connection: duckdb.DuckDBPyConnection, groupings: tuple[str, ...]) -> tuple[str, ...]:
    """The grouping columns with at least one non-NULL value (one cheap scan)."""
    if not groupings:
        return ()
    [counts] = connection.execute("SELECT count(dump), count(source) FROM documents").fetchall()
    present = dict(zip(GROUPINGS, counts, strict=True))
    return tuple(grouping for grouping in groupings if present[grouping])


GroupKey = tuple[str, str]


def _group_estimates(
    connection: duckdb.DuckDBPyConnection,
    settings: EstimateSettings,
    groupings: tuple[str, ...],
    method: str,
    dev: DevPredictions | None,
    prior: np.ndarray | None,
    fractions: list[float] | None,
) -> dict[GroupKey, dict[str, list[object]]]:
    """Estimate columns (`<prefix><suffix>` -> one value per domain) of every group of `groupings`.

    `fractions` (one per measure) is the design sampling fraction to use for every group; None: each
    group's own, from its statistics (`_design_sampling_fractions`, the formula of sql/11a).
    """
    if not groupings:
        return {}
    sums = _share_sums(connection, settings.block_size, groupings, None, with_blocks=True)
    calibrated = {key: group.posterior_sums for key, group in sums.items()}
    if method == "emq" and prior is not None:
        weights = {key: group.total_weight for key, group in sums.items()}
        ratios = _emq_ratios(connection, settings.block_size, groupings, weights, prior)
        sums = _share_sums(connection, settings.block_size, groupings, ratios, with_blocks=True)
    out: dict[GroupKey, dict[str, list[object]]] = {}
    for key, group in sums.items():
        group_fractions = _design_sampling_fractions(group) if fractions is None else fractions
        columns: dict[str, list[object]] = {}
        for index, (_, prefix) in enumerate(MEASURES):
            statistics = _measure_statistics(group, calibrated[key][index], index)
            values = _estimate_or_point(statistics, method, dev, group_fractions[index], settings)
            for suffix, value in zip(_ESTIMATE_SUFFIXES, values, strict=True):
                columns[f"{prefix}{suffix}"] = value
        out[key] = columns
    return out


def _no_estimates() -> dict[str, list[object]]:
    """Every estimate column NULL (nothing carries weight)."""
    return {name: [None] * len(DOMAINS) for name in _estimate_names()}


@dataclass(frozen=True)
class _ShareSums:
    """The rows of sql/11_share_blocks.sql for one group as arrays, measures (MEASURES order) first."""

    counts: np.ndarray
    """(M, C, S) weight per cluster and predicted domain."""
    posterior_totals: np.ndarray
    """(M, C, S) sum of w q per cluster."""
    posterior_sums: np.ndarray
    """(M, S) sum of w q over the whole group."""
    total_weight: np.ndarray
    """(M,) sum of w."""
    noise_diagonal: np.ndarray
    """(M, S) sum of w^2 q."""
    noise_outer: np.ndarray
    """(M, S, S) sum of w^2 q q^T."""
    squared_weight: np.ndarray
    """(M, S) sum of w^2 per predicted domain."""
    included_squared_weight: np.ndarray
    """(M, S) sum of pi w^2 per predicted domain (pi the inclusion probability)."""


_RATIOS_SCHEMA = pa.schema(
    [
        ("grouping", pa.string()),
        ("group_value", pa.string()),
        ("measure", pa.int32()),
        ("r", pa.list_(pa.float64())),
    ]
)


def _share_sums(
    connection: duckdb.DuckDBPyConnection,
    block_size: int,
    groupings: tuple[str, ...],
    ratios: dict[GroupKey, np.ndarray] | None,
    *,
    with_blocks: bool,
) -> dict[GroupKey, _ShareSums]:
    """sql/11_share_blocks.sql for every group of `groupings` at these prior ratios ((M, S) per
    group; None or a missing group: all ones), reshaped into arrays per group."""
    rows_of_ratios: dict[str, list[object]] = {name: [] for name in _RATIOS_SCHEMA.names}
    for (grouping, group_value), ratio in (ratios or {}).items():
        for measure, row in enumerate(ratio):
            rows_of_ratios["grouping"].append(grouping)
            rows_of_ratios["group_value"].append(group_value)
            rows_of_ratios["measure"].append(measure)
            rows_of_ratios["r"].append([float(value) for value in row])
    parameters = {"block_size": block_size, "with_blocks": with_blocks, "groupings": list(groupings)}
    connection.register("share_ratios", pa.table(rows_of_ratios, schema=_RATIOS_SCHEMA))
    try:
        rows = connection.sql(load_sql("11_share_blocks"), params=parameters).to_arrow_table()
    finally:
        connection.unregister("share_ratios")
    grouping = rows.column("grouping").to_numpy(zero_copy_only=False).astype(str)
    group_value = rows.column("group_value").to_numpy(zero_copy_only=False).astype(str)
    keys, inverse = np.unique(np.char.add(np.char.add(grouping, "\x1f"), group_value), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
    columns = {
        "statistic": rows.column("statistic").to_numpy(zero_copy_only=False).astype(str),
        "value": rows.column("value").fill_null(0.0).to_numpy(),
        **{
            axis: rows.column(axis).fill_null(0).to_numpy() for axis in ("measure", "cluster_index", "k", "l")
        },
    }
    out: dict[GroupKey, _ShareSums] = {}
    for index, key in enumerate(keys):
        take = order[bounds[index] : bounds[index + 1]]
        first, _, second = str(key).partition("\x1f")
        out[(first, second)] = _group_sums({name: column[take] for name, column in columns.items()})
    return out


def _group_sums(rows: dict[str, np.ndarray]) -> _ShareSums:
    """One group's long rows (sql/11_share_blocks.sql) as arrays; absent rows are 0."""
    statistic, value = rows["statistic"], rows["value"]
    clusters = rows["cluster_index"][statistic == "counts"]
    n_clusters = int(clusters.max()) + 1 if clusters.size else 0
    size = {"cluster_index": n_clusters, "k": len(DOMAINS), "l": len(DOMAINS)}

    def gather(name: str, *by: str) -> np.ndarray:
        """One statistic's rows as an array indexed by (measure, *by)."""
        out = np.zeros((len(MEASURES), *(size[axis] for axis in by)))
        rows_of = statistic == name
        out[tuple(rows[axis][rows_of] for axis in ("measure", *by))] = value[rows_of]
        return out

    upper = gather("noise_outer", "k", "l")
    return _ShareSums(
        counts=gather("counts", "cluster_index", "k"),
        posterior_totals=gather("posterior_totals", "cluster_index", "k"),
        posterior_sums=gather("posterior_sums", "k"),
        total_weight=gather("total_weight"),
        noise_diagonal=gather("noise_diagonal", "k"),
        noise_outer=upper + np.triu(upper, 1).swapaxes(1, 2),
        squared_weight=gather("squared_weight", "k"),
        included_squared_weight=gather("included_squared_weight", "k"),
    )


def _design_sampling_fractions(sums: _ShareSums) -> list[float]:
    """`design_sampling_fraction` of each measure from one group's sums: what sql/11a computes for the
    whole input, f = min over predicted domains d of sum pi e^2 / sum e^2 (e = w ([domain = d] - R_d)),
    with sum e^2 = q_d (1 - R_d)^2 + (Q - q_d) R_d^2; 1 where undefined, at least 1e-12."""
    fractions = []
    for index in range(len(MEASURES)):
        weight = sums.counts[index].sum(axis=0)
        if weight.sum() <= 0:
            fractions.append(1.0)
            continue
        share = weight / weight.sum()
        squares, included = sums.squared_weight[index], sums.included_squared_weight[index]
        total = squares * (1 - share) ** 2 + (squares.sum() - squares) * share**2
        part = included * (1 - share) ** 2 + (included.sum() - included) * share**2
        live = (weight > 0) & (total > 0)
        fraction = float((part[live] / total[live]).min()) if live.any() else 1.0
        fractions.append(min(max(fraction, 1e-12), 1.0))
    return fractions


def _emq_ratios(
    connection: duckdb.DuckDBPyConnection,
    block_size: int,
    groupings: tuple[str, ...],
    weighted: dict[GroupKey, np.ndarray],
    prior: np.ndarray,
) -> dict[GroupKey, np.ndarray]:
    """EMQ's final prior ratios per group and measure, each E and M step one aggregation in DuckDB
    over every group at once (each group converges as if run alone)."""
    keys = sorted(weighted)
    totals = np.concatenate([weighted[key] for key in keys]) if keys else np.zeros(0)
    live = np.flatnonzero(totals > 0)
    ratios = np.ones((totals.size, len(DOMAINS)))
    rows = len(MEASURES)

    def as_groups() -> dict[GroupKey, np.ndarray]:
        return {key: ratios[i * rows : (i + 1) * rows] for i, key in enumerate(keys)}

    if live.size == 0:
        return as_groups()

    def weighted_posterior_sums(live_ratios: np.ndarray) -> np.ndarray:
        ratios[live] = live_ratios
        sums = _share_sums(connection, block_size, groupings, as_groups(), with_blocks=False)
        stacked = np.concatenate([sums[key].posterior_sums for key in keys])
        result: np.ndarray = stacked[live]
        return result

    _, final = expectation_maximisation_priors(weighted_posterior_sums, totals[live], prior)
    ratios[live] = final
    return as_groups()


def _measure_statistics(sums: _ShareSums, calibrated: np.ndarray, index: int) -> ShareStatistics:
    """One measure's statistics, over the clusters that carry any of its weight."""
    counts = sums.counts[index]
    keep = counts.sum(axis=1) > 0
    return ShareStatistics(
        counts=counts[keep],
        posterior_totals=sums.posterior_totals[index][keep],
        calibrated_totals=calibrated,
        noise_diagonal=sums.noise_diagonal[index],
        noise_outer=sums.noise_outer[index],
        total_weight=float(sums.total_weight[index]),
    )


def _estimate_or_point(
    statistics: ShareStatistics,
    method: str,
    dev: DevPredictions | None,
    fraction: float,
    settings: EstimateSettings,
) -> list[list[object]]:
    """(point, lo, hi, corpus_lo, corpus_hi) as columns; None where they cannot be estimated."""
    nothing: list[object] = [None] * len(DOMAINS)
    if statistics.counts.shape[0] == 0:
        return [nothing] * 5
    try:
        result = estimate_shares_from_statistics(
            statistics,
            method,
            dev=dev,
            sampling_fraction=min(max(fraction, 1e-12), 1.0),
            replicates=settings.replicates,
            confidence=settings.confidence,
            seed=settings.seed,
        )
    except ValueError:
        # fewer than two clusters or a replicate of empty clusters (tiny inputs): point only
        estimator = _point_estimator(method, dev)
        totals = statistics.counts.sum(axis=0)[None], statistics.posterior_totals.sum(axis=0)[None]
        return [list(estimator(*totals, None)[0]), nothing, nothing, nothing, nothing]
    return [
        list(result.point),
        list(result.input_lo),
        list(result.input_hi),
        list(result.corpus_lo),
        list(result.corpus_hi),
    ]
