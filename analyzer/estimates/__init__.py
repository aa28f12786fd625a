"""Estimates a researcher can defend: sampling, misclassification-adjusted shares, cluster bootstrap
intervals and token extrapolation, as pure functions on numpy arrays."""

from analyzer.estimates.bootstrap import (
    AdjustedEstimator,
    ShareEstimator,
    ShareInterval,
    acc_estimator,
    block_cluster_ids,
    cc_estimator,
    cluster_bootstrap,
    cluster_totals,
    pacc_estimator,
    pcc_estimator,
    probability_cluster_totals,
    resample_confusion,
    resample_probabilistic_confusion,
)
from analyzer.estimates.extrapolation import DomainTokens, convert_tokens, extrapolate, ratio_to_reference
from analyzer.estimates.quantification import (
    adjusted_classify_and_count,
    classify_and_count,
    confusion_counts,
    expectation_maximisation_shares,
    label_noise_covariance,
    probabilistic_adjusted_classify_and_count,
    probabilistic_average,
    probabilistic_confusion_totals,
    rates_from_counts,
)
from analyzer.estimates.sampling import first_n_mask, inclusion_weight, sample_mask, shard_weight

__all__ = [
    "AdjustedEstimator",
    "DomainTokens",
    "ShareEstimator",
    "ShareInterval",
    "acc_estimator",
    "adjusted_classify_and_count",
    "block_cluster_ids",
    "cc_estimator",
    "classify_and_count",
    "cluster_bootstrap",
    "cluster_totals",
    "confusion_counts",
    "convert_tokens",
    "expectation_maximisation_shares",
    "extrapolate",
    "first_n_mask",
    "inclusion_weight",
    "label_noise_covariance",
    "pacc_estimator",
    "pcc_estimator",
    "probabilistic_adjusted_classify_and_count",
    "probabilistic_average",
    "probabilistic_confusion_totals",
    "probability_cluster_totals",
    "rates_from_counts",
    "ratio_to_reference",
    "resample_confusion",
    "resample_probabilistic_confusion",
    "sample_mask",
    "shard_weight",
]
