"""Corrected domain shares with intervals for a finished store: the `share_estimates` and
`share_estimates_by_group` tables.

Reads per bootstrap block (cluster) and overall sums of the tagged documents from DuckDB
(sql/11_share_blocks.sql; never one row per document, so memory follows the number of blocks), runs
EMQ's iterations as aggregations there too, and hands each group's sums to
`estimate_shares_from_statistics` (intervals.py) for the shares and their input- and corpus-level
intervals. Without dev predictions (a model brought by the user), acc/pacc fall back to
classify-and-count and `estimator` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from analyzer import DOMAINS
from analyzer.estimates.dev_predictions import DevPredictions, load_dev_predictions, training_prior_for
from analyzer.estimates.intervals import (
    ESTIMATORS,
    NEEDS_TRAINING_PRIOR,
    ShareStatistics,
    _point_estimator,
    estimate_shares_from_statistics,
    posteriors_are_prior_adjusted,
)
from analyzer.estimates.quantification import expectation_maximisation_priors
from analyzer.estimates.source_shift import UNSURE_THRESHOLD, SourceShift, load_source_shift
from analyzer.sql_library import define_macro, load_sql

MEASURES = (("tokens", "token_share"), ("dedup_tokens", "dedup_token_share"), ("bytes", "byte_share"))


@dataclass(frozen=True)
class EstimateSettings:
    """How shares are corrected and bounded; recorded with the run's options."""

    dev_predictions: Path | None = None
    """Parquet of the model's dev-set predictions (label, p_*, n_bytes), shipped beside the model."""
    estimator: str = "mid"
    """One of ESTIMATORS. mid is the default because, judged by cross-fitted models on the shared
    corpus (bench/estimate_accuracy.py), it had the smallest errors: the dev set's per-class error
    rates and the model's training prior did not carry over to the corpus, so acc/pacc over-corrected
    finance and other by 2-3 points; cc over-read finance and under-read other by up to 0.86 and emq
    erred the other way by up to 1.09, and their midpoint stayed within 0.49 (README)."""
    source_shift: Path | None = None
    """JSON of the model's leave-one-source-out misreading rows (`<model>.source-shift.json`): with
    it the intervals widen for input that reads as unfamiliar (source_shift.py)."""
    block_size: int = 256
    """Consecutive rows of one shard that form one bootstrap cluster."""
    replicates: int = 1000
    confidence: float = 0.95
    seed: int = 0


def check_estimate_inputs(settings: EstimateSettings) -> None:
    """Read the model's dev predictions and source-shift rows once, so that a broken file is a
    ModelError naming it before any work that needs them."""
    if settings.dev_predictions is not None:
        load_dev_predictions(settings.dev_predictions)
    if settings.source_shift is not None:
        load_source_shift(settings.source_shift)


def share_estimates(connection: duckdb.DuckDBPyConnection, settings: EstimateSettings) -> pa.Table:
    """One row per domain: token, dedup-token and byte shares by the chosen estimator, with intervals.

    `<prefix>_lo/_hi` bound the share of the analysed input (finite-population corrected, so they
    narrow to the classifier's own error when every document was read); `<prefix>_corpus_lo/_hi`
    bound the share of the corpus the input's blocks stand for (full cluster bootstrap), which is
    what `analyzer estimate --corpus` extrapolates. Only per-cluster and global sums leave DuckDB
    (sql/11_share_blocks.sql), so memory grows with the number of clusters, not of documents; EMQ
    (the emq estimator, and cc's interval when the training prior is known) runs each of its
    iterations as one more aggregation over `documents`.
    """
    method, dev, prior = _resolved_estimator(settings)
    strata = _has_census(connection)
    estimates = _group_estimates(connection, settings, (WHOLE_INPUT,), method, dev, prior, strata)
    columns = estimates.get((WHOLE_INPUT, WHOLE_INPUT)) or _no_estimates()
    return pa.table(_with_estimator_columns({"domain": list(DOMAINS), **columns}, method, settings))


GROUPINGS = ("dump", "source")
"""The `documents` columns whose values `share_estimates_by_group` estimates shares within."""
WHOLE_INPUT = "all"
"""The grouping (and group value) of sql/11_share_blocks.sql that is the whole input."""
_ESTIMATE_SUFFIXES = ("", "_lo", "_hi", "_corpus_lo", "_corpus_hi")
UNFAMILIAR_COLUMN = "unfamiliar_fraction"
"""How unfamiliar the group's text reads to the model (lambda of source_shift.py, token measure):
0 as familiar as dev, 1 as unfamiliar as sources it never saw; NULL without the model's
source-shift rows. The intervals carry the source-shift term in proportion."""


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
    estimates = _group_estimates(connection, settings, present, method, dev, prior, _has_census(connection))
    columns: dict[str, list[object]] = {"grouping": [], "group_value": [], "domain": []}
    for suffix_prefix in (*_estimate_names(), UNFAMILIAR_COLUMN):
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
            (UNFAMILIAR_COLUMN, pa.float64()),
            ("estimator", pa.string()),
            ("confidence", pa.float64()),
        ]
    )
    return pa.table(columns, schema=schema)


def _has_census(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether the run classified its sampled-out documents (`--classify-all`): then the weights
    are calibrated to the census per (predicted domain, dump, source) (sql/04_documents.sql), so
    the whole input's, each dump's and each source's sizes per predicted domain are fixed, and
    their bootstrap replicates are re-calibrated alike (`ShareStatistics.stratum_sizes`)."""
    # fetchall, not fetchone: DuckDB refuses new work while a result is not fetched to its end
    tables = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'census'"
    ).fetchall()
    if not tables[0][0]:
        return False
    return bool(connection.execute("SELECT count(*) FROM census").fetchall()[0][0])


def _estimate_names() -> list[str]:
    return [f"{prefix}{suffix}" for _, prefix in MEASURES for suffix in _ESTIMATE_SUFFIXES]


def _resolved_estimator(settings: EstimateSettings) -> tuple[str, DevPredictions | None, np.ndarray | None]:
    """(the estimator that can run, dev predictions, training prior): acc/pacc/emq fall back to cc."""
    if settings.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {settings.estimator!r}; choose one of {ESTIMATORS}")
    dev = load_dev_predictions(settings.dev_predictions) if settings.dev_predictions else None
    prior = training_prior_for(settings.dev_predictions, dev)
    method = settings.estimator
    if (method in ("acc", "pacc") and dev is None) or (method in NEEDS_TRAINING_PRIOR and prior is None):
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
    strata: bool = False,
) -> dict[GroupKey, dict[str, list[object]]]:
    """Estimate columns (`<prefix><suffix>` -> one value per domain) of every group of `groupings`.

    `strata`: the weights were calibrated to a census of every group's sizes per predicted domain
    (`_has_census`), so each bootstrap replicate is re-calibrated to the same totals.

    Each group's input-level factor sqrt(1 - f) takes f from the group's own statistics
    (`_design_sampling_fractions`): from each document's inclusion probability, not the tagged
    fraction, since they differ under the size-aware design (analyzer/sampler.py).
    """
    if not groupings:
        return {}
    # once here, not per query: looking the macro up costs ~16 ms and EMQ sums many times
    define_macro(connection, "documents_in_groups", "04a_document_groups")
    define_macro(connection, "measure_weight", "04b_measure_weights")
    ratios = None
    if prior is not None and posteriors_are_prior_adjusted(method, training_prior_known=True):
        ratios = _emq_ratios(connection, groupings, prior)
    sums = _share_sums(connection, settings.block_size, groupings, ratios, strata)
    shift = load_source_shift(settings.source_shift) if settings.source_shift is not None else None
    out: dict[GroupKey, dict[str, list[object]]] = {}
    for key, group in sums.items():
        group_fractions = _design_sampling_fractions(group)
        columns: dict[str, list[object]] = {}
        unfamiliar: list[float | None] = []
        for index, (_, prefix) in enumerate(MEASURES):
            statistics = _measure_statistics(group, index)
            values, fraction = _estimate_or_point(
                statistics, method, dev, group_fractions[index], settings, shift
            )
            unfamiliar.append(fraction)
            for suffix, value in zip(_ESTIMATE_SUFFIXES, values, strict=True):
                columns[f"{prefix}{suffix}"] = value
        # the token measure's: the shares people read first
        columns[UNFAMILIAR_COLUMN] = [unfamiliar[0]] * len(DOMAINS)
        out[key] = columns
    return out


def _no_estimates() -> dict[str, list[object]]:
    """Every estimate column NULL (nothing carries weight)."""
    return {name: [None] * len(DOMAINS) for name in (*_estimate_names(), UNFAMILIAR_COLUMN)}


@dataclass(frozen=True)
class _ShareSums:
    """The rows of sql/11_share_blocks.sql for one group as arrays, measures (MEASURES order) first."""

    counts: np.ndarray
    """(M, C, S) weight per cluster and predicted domain."""
    posterior_totals: np.ndarray
    """(M, C, S) sum of w q per cluster."""
    total_weight: np.ndarray
    """(M,) sum of w."""
    unsure_weight: np.ndarray
    """(M,) sum of w over the documents the model is unsure of (source_shift.UNSURE_THRESHOLD)."""
    noise_diagonal: np.ndarray
    """(M, S) sum of w^2 q."""
    noise_outer: np.ndarray
    """(M, S, S) sum of w^2 q q^T."""
    squared_weight: np.ndarray
    """(M, S) sum of w^2 per predicted domain."""
    included_squared_weight: np.ndarray
    """(M, S) sum of pi w^2 per predicted domain (pi the inclusion probability)."""
    stratum_posterior_totals: np.ndarray | None = None
    """(M, C, S, S) sum of w q_l per cluster and predicted domain k (rows k, columns l); only for
    a census-calibrated input."""
    stratum_sizes: np.ndarray | None = None
    """(C, S) sum of sample_weight x calibration_size per cluster and predicted domain: what the
    census fixed; only for a census-calibrated input."""


_RATIOS_SCHEMA = pa.schema(
    [
        ("grouping", pa.string()),
        ("group_value", pa.string()),
        ("measure", pa.int32()),
        ("r", pa.list_(pa.float64())),
    ]
)


def _query_at_ratios(
    connection: duckdb.DuckDBPyConnection,
    sql_file: str,
    parameters: dict[str, object],
    ratios: dict[GroupKey, np.ndarray] | None,
) -> pa.Table:
    """Run `sql/<sql_file>.sql` with these prior ratios ((M, S) per group; None or a missing group:
    all ones) registered as the relation `share_ratios` it reads."""
    rows_of_ratios: dict[str, list[object]] = {name: [] for name in _RATIOS_SCHEMA.names}
    for (grouping, group_value), ratio in (ratios or {}).items():
        for measure, row in enumerate(ratio):
            rows_of_ratios["grouping"].append(grouping)
            rows_of_ratios["group_value"].append(group_value)
            rows_of_ratios["measure"].append(measure)
            rows_of_ratios["r"].append([float(value) for value in row])
    connection.register("share_ratios", pa.table(rows_of_ratios, schema=_RATIOS_SCHEMA))
    try:
        return connection.sql(load_sql(sql_file), params=parameters).to_arrow_table()
    finally:
        connection.unregister("share_ratios")


def _share_sums(
    connection: duckdb.DuckDBPyConnection,
    block_size: int,
    groupings: tuple[str, ...],
    ratios: dict[GroupKey, np.ndarray] | None,
    strata: bool = False,
) -> dict[GroupKey, _ShareSums]:
    """sql/11_share_blocks.sql for every group of `groupings` at these prior ratios, reshaped into
    arrays per group (with `strata`, also the posterior totals by predicted domain). The connection
    must hold the `documents_in_groups` macro (sql/04a; `_group_estimates` defines it)."""
    parameters = {
        "block_size": block_size,
        "groupings": list(groupings),
        "strata": strata,
        "unsure_threshold": UNSURE_THRESHOLD,
    }
    rows = _query_at_ratios(connection, "11_share_blocks", parameters, ratios)
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
        out[(first, second)] = _group_sums({name: column[take] for name, column in columns.items()}, strata)
    return out


def _group_sums(rows: dict[str, np.ndarray], strata: bool = False) -> _ShareSums:
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
        total_weight=gather("total_weight"),
        unsure_weight=gather("unsure_weight"),
        noise_diagonal=gather("noise_diagonal", "k"),
        noise_outer=upper + np.triu(upper, 1).swapaxes(1, 2),
        squared_weight=gather("squared_weight", "k"),
        included_squared_weight=gather("included_squared_weight", "k"),
        stratum_posterior_totals=gather("stratum_posterior_totals", "cluster_index", "k", "l")
        if strata
        else None,
        # measure NULL in the rows, read as 0: one array for every measure
        stratum_sizes=gather("stratum_sizes", "cluster_index", "k")[0] if strata else None,
    )


def _design_sampling_fractions(sums: _ShareSums) -> list[float]:
    """`design_sampling_fraction` (analyzer/sampler.py) of each measure from one group's sums:
    f = min over predicted domains d of sum pi e^2 / sum e^2 (e = w ([domain = d] - R_d)), with
    sum e^2 = q_d (1 - R_d)^2 + (Q - q_d) R_d^2 from the per-domain sums q_d of w^2 (and of pi w^2
    for the numerator); 1 where undefined, at least 1e-12."""
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


def _posterior_sums(
    connection: duckdb.DuckDBPyConnection,
    groupings: tuple[str, ...],
    ratios: dict[GroupKey, np.ndarray] | None,
) -> dict[GroupKey, tuple[np.ndarray, np.ndarray]]:
    """sql/11b_posterior_sums.sql: per group, (M,) sums of w and (M, S) sums of w q at these ratios."""
    rows = _query_at_ratios(connection, "11b_posterior_sums", {"groupings": list(groupings)}, ratios)
    out: dict[GroupKey, tuple[np.ndarray, np.ndarray]] = {}
    for row in rows.to_pylist():
        key = (str(row["grouping"]), str(row["group_value"]))
        totals, sums = out.setdefault(key, (np.zeros(len(MEASURES)), np.zeros((len(MEASURES), len(DOMAINS)))))
        totals[row["measure"]] = row["total_weight"] or 0.0
        sums[row["measure"]] = [value or 0.0 for value in row["posterior_sums"]]
    return out


def _emq_ratios(
    connection: duckdb.DuckDBPyConnection, groupings: tuple[str, ...], prior: np.ndarray
) -> dict[GroupKey, np.ndarray]:
    """EMQ's final prior ratios per group and measure, each E and M step one lean aggregation in
    DuckDB (sql/11b) over every group at once (each group converges as if run alone)."""
    weighted = {key: totals for key, (totals, _) in _posterior_sums(connection, groupings, None).items()}
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
        sums = _posterior_sums(connection, groupings, as_groups())
        stacked = np.concatenate([sums[key][1] for key in keys])
        result: np.ndarray = stacked[live]
        return result

    _, final = expectation_maximisation_priors(weighted_posterior_sums, totals[live], prior)
    ratios[live] = final
    return as_groups()


def _measure_statistics(sums: _ShareSums, index: int) -> ShareStatistics:
    """One measure's statistics, over the clusters that carry any of its weight, with the census
    calibration's strata (calibrated sizes, posterior totals per predicted domain) when it has them."""
    counts = sums.counts[index]
    keep = counts.sum(axis=1) > 0
    by_stratum, sizes = sums.stratum_posterior_totals, sums.stratum_sizes
    return ShareStatistics(
        stratum_sizes=None if sizes is None else sizes[keep],
        stratum_posterior_totals=None if by_stratum is None else by_stratum[index][keep],
        counts=counts[keep],
        posterior_totals=sums.posterior_totals[index][keep],
        noise_diagonal=sums.noise_diagonal[index],
        noise_outer=sums.noise_outer[index],
        total_weight=float(sums.total_weight[index]),
        unsure_weight=float(sums.unsure_weight[index]),
    )


def _estimate_or_point(
    statistics: ShareStatistics,
    method: str,
    dev: DevPredictions | None,
    fraction: float,
    settings: EstimateSettings,
    shift: SourceShift | None = None,
) -> tuple[list[list[object]], float | None]:
    """((point, lo, hi, corpus_lo, corpus_hi) as columns, unfamiliar fraction); None where they
    cannot be estimated (the fraction also without source-shift rows)."""
    nothing: list[object] = [None] * len(DOMAINS)
    if statistics.counts.shape[0] == 0:
        return [nothing] * 5, None
    try:
        result = estimate_shares_from_statistics(
            statistics,
            method,
            dev=dev,
            sampling_fraction=min(max(fraction, 1e-12), 1.0),
            source_shift=shift,
            replicates=settings.replicates,
            confidence=settings.confidence,
            seed=settings.seed,
        )
    except ValueError:
        # fewer than two clusters or a replicate of empty clusters (tiny inputs): point only
        estimator = _point_estimator(method, dev)
        totals = statistics.counts.sum(axis=0)[None], statistics.posterior_totals.sum(axis=0)[None]
        return [list(estimator(*totals, None)[0]), nothing, nothing, nothing, nothing], None
    columns: list[list[object]] = [
        list(result.point),
        list(result.input_lo),
        list(result.input_hi),
        list(result.corpus_lo),
        list(result.corpus_hi),
    ]
    return columns, (result.unfamiliar_fraction if shift is not None else None)
