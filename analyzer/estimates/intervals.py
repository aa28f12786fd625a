"""Shares of one measure with two intervals, from sums only: `ShareStatistics` in, `ShareEstimate` out.

`estimate_shares_from_statistics` estimates shares with the chosen estimator (cc, acc, pcc, pacc or
emq) and bounds them twice: for the analysed input (finite-population-corrected sampling error plus
the classifier's own error) and for the corpus the input was drawn from (the full cluster bootstrap
plus the classifier's error). `estimate_shares` is the same from one row per document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from analyzer.config import ESTIMATORS as ESTIMATORS  # re-exported: the estimators' home
from analyzer.estimates.bootstrap import (
    ShareEstimator,
    acc_estimator,
    cc_estimator,
    cluster_bootstrap,
    cluster_totals,
    mid_estimator,
    pacc_estimator,
    pcc_estimator,
    probability_cluster_totals,
    resample_confusion,
    resample_probabilistic_confusion,
)
from analyzer.estimates.dev_predictions import DevPredictions
from analyzer.estimates.quantification import (
    covariance_square_root,
    expectation_maximisation_shares,
    label_noise_covariance_from_moments,
    label_noise_moments,
)
from analyzer.estimates.source_shift import UNSURE_THRESHOLD, SourceShift

NEEDS_TRAINING_PRIOR = ("mid", "emq")
"""Estimators that read EMQ's re-weighted posteriors, so need the prior the model was trained at."""


@dataclass(frozen=True)
class ShareEstimate:
    """Point estimate with two intervals: for the analysed input and for the corpus it was drawn from."""

    point: np.ndarray
    input_lo: np.ndarray
    input_hi: np.ndarray
    corpus_lo: np.ndarray
    corpus_hi: np.ndarray
    sampling_fraction: float
    unfamiliar_fraction: float = 0.0
    """lambda of the source-shift term (source_shift.py): 0 for text as familiar as dev's."""


@dataclass(frozen=True)
class ShareStatistics:
    """All that `estimate_shares_from_statistics` needs of one measure's documents: sums only.

    C clusters (bootstrap blocks, in a fixed order) by S domains, plus a few global sums; the store
    computes them in DuckDB (sql/11_share_blocks.sql), `document_statistics` from per-document arrays.
    The posteriors q are the calibrated probabilities, or, when the model's training prior is known
    and the estimator is cc or emq, EMQ's re-weighted ones (`posteriors_are_prior_adjusted`): the
    posteriors adjusted to the input's own label mix.
    """

    counts: np.ndarray
    """(C, S) weight per cluster and predicted domain."""
    posterior_totals: np.ndarray
    """(C, S) sum of w q per cluster."""
    noise_diagonal: np.ndarray
    """(S,) sum of W^2 Q / S over near-duplicate sets (w^2 q / s for a document without duplicates,
    s its sample weight, `label_noise_moments`): with
    `noise_outer` the label-noise covariance (`label_noise_moments`)."""
    noise_outer: np.ndarray
    """(S, S) sum of W^2 Q Q^T / S."""
    total_weight: float
    """sum of w."""
    stratum_sizes: np.ndarray | None = None
    """(C, S) with a census (`--classify-all`): weighted `calibration_size` per cluster and
    predicted domain, the variable the weights were calibrated on; each bootstrap replicate is
    re-calibrated so its predicted domains' sizes match the point's (`cluster_bootstrap`'s
    `strata`)."""
    stratum_posterior_totals: np.ndarray | None = None
    """(C, S, S) with a census: `posterior_totals` split by predicted domain (rows)."""
    unsure_weight: float | None = None
    """sum of w over documents whose top calibrated probability is below the source-shift
    threshold (source_shift.UNSURE_THRESHOLD); None when not summed."""


def document_statistics(
    cluster_ids: np.ndarray,
    weights: np.ndarray,
    probabilities: np.ndarray,
    *,
    predicted: np.ndarray | None = None,
    posteriors: np.ndarray | None = None,
    duplicate_sets: np.ndarray | None = None,
    stratum_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> ShareStatistics:
    """The sums of `ShareStatistics` from one row per document (dense cluster ids, weights, calibrated
    probabilities, rows renormalised here; `predicted` defaults to the argmax, `posteriors` to them;
    `duplicate_sets` gives near-duplicates one id, default: every document its own;
    `stratum_weights`, each document's calibration variable, adds the census strata;
    `sample_weights` scale the label noise to the input's, `label_noise_moments`)."""
    ids = np.asarray(cluster_ids, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    posterior = p if posteriors is None else np.asarray(posteriors, dtype=np.float64)
    n_classes = p.shape[1]
    n_clusters = int(ids.max()) + 1 if ids.size else 0
    top = p.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    diagonal, outer, total = label_noise_moments(posterior, w, duplicate_sets, sample_weights)
    sizes = by_stratum = None
    if stratum_weights is not None:
        sizes = cluster_totals(ids, top, np.asarray(stratum_weights, dtype=np.float64), n_clusters, n_classes)
        by_stratum = np.zeros((n_clusters, n_classes, n_classes))
        np.add.at(by_stratum, (ids, top), w[:, None] * posterior)
    return ShareStatistics(
        stratum_sizes=sizes,
        stratum_posterior_totals=by_stratum,
        counts=cluster_totals(ids, top, w, n_clusters, n_classes),
        posterior_totals=probability_cluster_totals(ids, posterior, w, n_clusters),
        noise_diagonal=diagonal,
        noise_outer=outer,
        total_weight=total,
        unsure_weight=float(w[p.max(axis=1) < UNSURE_THRESHOLD].sum()),
    )


def posteriors_are_prior_adjusted(method: str, training_prior_known: bool) -> bool:
    """Whether `method` reads EMQ's re-weighted posteriors rather than the calibrated ones.

    emq and mid always do (their points are, or include, their average). cc does whenever the
    training prior is known: its interval spans the posteriors' reading and its label noise comes
    from them, and posteriors calibrated for the training mix are biased for an input of another
    mix (a web corpus is mostly `other`, the training set is not) by what EMQ's re-weighting
    removes if only the mix changed; the calibrated posteriors' own average (PCC) was 2.4-2.9 points
    off `other` on the cross-fitted corpus, EMQ's within 1.1 (README). pcc, acc and pacc are defined
    on the calibrated posteriors.
    """
    return method in NEEDS_TRAINING_PRIOR or (method == "cc" and training_prior_known)


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
    duplicate_sets: np.ndarray | None = None,
    stratum_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
    source_shift: SourceShift | None = None,
    replicates: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ShareEstimate:
    """Shares of one measure by `method` from one row per document; see `estimate_shares_from_statistics`.

    Per document: its bootstrap cluster (dense ids), its weight (e.g. tokens x sample weight) and its
    calibrated probabilities; `predicted` is its top domain (default: the argmax). A thin wrapper:
    EMQ's posteriors where the method reads them (`posteriors_are_prior_adjusted`), then
    `document_statistics`, then the estimate from those sums (the store computes the same sums in
    DuckDB instead). `stratum_weights`: each document's weighted calibration size when the
    weights were calibrated to a census of them (`--classify-all`); `sample_weights`: how many
    input documents each stands for (the label noise is the input's; default 1).
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")
    if not 0.0 < sampling_fraction <= 1.0:
        raise ValueError(f"sampling_fraction must be in (0, 1], got {sampling_fraction}")
    w = np.asarray(weights, dtype=np.float64)
    if method in NEEDS_TRAINING_PRIOR and training_prior is None:
        raise ValueError(f"the {method} estimator needs the model's training prior")
    posterior = None
    if training_prior is not None and posteriors_are_prior_adjusted(method, training_prior_known=True):
        p = np.asarray(probabilities, dtype=np.float64)
        _, posterior = expectation_maximisation_shares(p / p.sum(axis=1, keepdims=True), w, training_prior)
    statistics = document_statistics(
        cluster_ids,
        w,
        probabilities,
        predicted=predicted,
        posteriors=posterior,
        duplicate_sets=duplicate_sets,
        stratum_weights=stratum_weights,
        sample_weights=sample_weights,
    )
    return estimate_shares_from_statistics(
        statistics,
        method,
        dev=dev,
        sampling_fraction=sampling_fraction,
        source_shift=source_shift,
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
    source_shift: SourceShift | None = None,
    replicates: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ShareEstimate:
    """Shares of one measure by `method`, with an input-level and a corpus-level interval.

    For EMQ, `statistics` must hold its re-weighted posteriors (they are the PCC of them); call Q
    the average of the statistics' posteriors (EMQ's point when they are re-weighted, else PCC).
    Every replicate adds up
    - sampling: a cluster bootstrap deviation with the point model; for the input-level interval it
      is scaled by sqrt(1 - f) (finite-population correction: with every document read, f = 1, there
      is no sampling error about the input), for the corpus-level one it is kept whole;
    - the model's calibration (acc, pacc): the estimate with a dev-resampled matrix, minus the point;
    - label noise: which documents are misread is unknown even when all are read, so a draw from
      N(0, sum_d w_d^2 (diag(p_d) - p_d p_d^T) / (s_d W^2)) (the posteriors' multinomial covariance,
      the input's as a sample estimates it: s_d the sample weight), d running over near-duplicate
      sets rather than documents: copies of a text are misread together;
    - decision-rule ambiguity: the gap b = |CC - Q| between counting top labels and averaging
      posteriors bounds a bias of unknown sign that the dev set cannot size for a corpus unlike it
      (README); as a GUM type-B term it enters as N(0, b^2 / 3), so the 95% bounds reach 1.13 b;
    - with `source_shift` and the statistics' `unsure_weight`: the error of reading unfamiliar
      sources, one new source's misreading per domain and replicate (drawn from the model's
      leave-one-source-out rows), scaled by how unfamiliar the input reads (source_shift.py; 0 for
      an input as familiar as dev).
    Percentile bounds of the sums, clipped to [0, 1]. For cc the bounds also span the Q reading
    (with its own sampling deviation and label noise): the truth if the posteriors are calibrated
    for this input (Q = PCC) or, when re-weighted by EMQ, calibrated up to a change of label mix.
    mid is cc's interval around the midpoint of those two readings, CC and Q (= EMQ's point, since
    mid reads EMQ's posteriors): CC over-reads the small domains of a corpus that is mostly `other`
    and EMQ, which assumes only the label mix changed, over-corrects them, so the centre of the
    span is the point with the smaller worst case (README: Why mid is the default).
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")
    interval_method = "cc" if method == "mid" else method  # mid's interval is cc's
    if not 0.0 < sampling_fraction <= 1.0:
        raise ValueError(f"sampling_fraction must be in (0, 1], got {sampling_fraction}")
    counts = np.asarray(statistics.counts, dtype=np.float64)
    n_classes = counts.shape[1]
    cc_point = counts.sum(axis=0) / counts.sum()
    prob_totals = np.asarray(statistics.posterior_totals, dtype=np.float64)
    posterior_point = prob_totals.sum(axis=0) / prob_totals.sum()
    estimator = _point_estimator(interval_method, dev)
    strata = _strata_of(statistics)

    def sampling_deviations(calibrated: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, cluster-bootstrap deviations of the point, of the Q reading (cc only)); paired draws."""
        kept_strata = strata if calibrated else None
        sampling = cluster_bootstrap(
            counts,
            estimator,
            probability_totals=prob_totals,
            n_replicates=replicates,
            confidence=confidence,
            seed=seed,
            strata=kept_strata,
        )
        deviation = sampling.replicates - sampling.point
        if interval_method != "cc":  # only cc's interval spans the Q reading
            return sampling.point, deviation, np.zeros_like(deviation)
        posterior_sampling = cluster_bootstrap(
            counts,
            pcc_estimator,
            probability_totals=prob_totals,
            n_replicates=replicates,
            seed=seed,
            strata=kept_strata,
        )
        return sampling.point, deviation, posterior_sampling.replicates - posterior_sampling.point

    # A census (--classify-all) fixes the input's sizes per predicted domain, so the input-level
    # interval re-calibrates each replicate; the corpus-level one does not (another draw of blocks
    # from the corpus would have other totals): the plain bootstrap, wider, stands for it.
    point, input_deviation, input_posterior_deviation = sampling_deviations(calibrated=True)
    _, corpus_deviation, corpus_posterior_deviation = (
        sampling_deviations(calibrated=False)
        if strata is not None
        else (point, input_deviation, input_posterior_deviation)
    )
    model = np.zeros_like(input_deviation)
    draws = _model_draws(interval_method, dev, replicates, seed)
    if draws is not None:
        totals = np.repeat(counts.sum(axis=0)[None], replicates, axis=0)
        ptotals = np.repeat(prob_totals.sum(axis=0)[None], replicates, axis=0)
        matrices = np.stack([next(draws) for _ in range(replicates)])
        model = estimator(totals, ptotals, matrices) - point
    rng = np.random.default_rng(seed + 1)
    covariance = label_noise_covariance_from_moments(
        statistics.noise_diagonal, statistics.noise_outer, statistics.total_weight
    )
    noise = rng.standard_normal((replicates, n_classes)) @ covariance_square_root(covariance)
    # A bias of unknown sign up to b = |CC - Q| is a rectangular distribution on [-b, b]: standard
    # uncertainty b / sqrt(3) (GUM type B), combined as a normal term so the bounds reach past +-b.
    gap = np.abs(cc_point - posterior_point)
    ambiguity = rng.normal(size=(replicates, n_classes)) * (gap / np.sqrt(3.0))[None]
    unfamiliar = 0.0
    if source_shift is not None and statistics.unsure_weight is not None and statistics.total_weight > 0:
        unfamiliar = source_shift.unfamiliar_fraction(statistics.unsure_weight / statistics.total_weight)
    shift = (
        source_shift.deviations(cc_point, unfamiliar, replicates, rng)
        if source_shift is not None
        else np.zeros_like(noise)
    )
    classifier = model + noise + ambiguity + shift
    alpha = 1.0 - confidence
    bounds = []
    for scale, deviation, posterior_deviation in (
        (np.sqrt(1.0 - sampling_fraction), input_deviation, input_posterior_deviation),
        (1.0, corpus_deviation, corpus_posterior_deviation),
    ):
        readings = [(point, deviation, classifier)]
        if interval_method == "cc":
            # CC's bias is the gap to Q if the posteriors are calibrated for this input (up to its
            # label mix): then the truth is Q up to label noise, so the interval also spans that
            # reading (paired cluster draws).
            readings.append((posterior_point, posterior_deviation, noise))
        lo, hi = point.copy(), point.copy()
        for centre, sampled, classifier_error in readings:
            draws_total = centre + scale * sampled + classifier_error
            q_lo, q_hi = np.quantile(draws_total, [alpha / 2, 1 - alpha / 2], axis=0)
            lo, hi = np.minimum(lo, q_lo), np.maximum(hi, q_hi)
        bounds.append((np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)))
    if method == "mid":  # re-centred on the midpoint of the two readings, still inside the bounds
        point = (cc_point + posterior_point) / 2
        bounds = [(np.minimum(lo, point), np.maximum(hi, point)) for lo, hi in bounds]
    return ShareEstimate(
        point, bounds[0][0], bounds[0][1], bounds[1][0], bounds[1][1], sampling_fraction, unfamiliar
    )


def _strata_of(statistics: ShareStatistics) -> tuple[np.ndarray, np.ndarray] | None:
    if statistics.stratum_sizes is None or statistics.stratum_posterior_totals is None:
        return None
    return statistics.stratum_sizes, statistics.stratum_posterior_totals


def _point_estimator(method: str, dev: DevPredictions | None) -> ShareEstimator:
    if method == "acc" and dev is not None:
        return acc_estimator(dev.confusion())
    if method == "pacc" and dev is not None:
        return pacc_estimator(dev.probabilistic_confusion())
    if method in ("pcc", "emq"):
        return pcc_estimator
    if method == "mid":
        return mid_estimator
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
