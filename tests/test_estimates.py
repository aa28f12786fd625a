"""Statistical kernels of `analyzer.estimates` on generated data with known answers."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.stats import norm

from analyzer.estimates import (
    acc_estimator,
    adjusted_classify_and_count,
    block_cluster_ids,
    cc_estimator,
    classify_and_count,
    cluster_bootstrap,
    cluster_totals,
    confusion_counts,
    convert_tokens,
    extrapolate,
    first_n_mask,
    inclusion_weight,
    pacc_estimator,
    pcc_estimator,
    probabilistic_adjusted_classify_and_count,
    probabilistic_average,
    probabilistic_confusion_totals,
    probability_cluster_totals,
    rates_from_counts,
    ratio_to_reference,
    resample_confusion,
    resample_probabilistic_confusion,
    sample_mask,
    shard_weight,
)
from analyzer.estimates.bootstrap import IntervalMethod
from analyzer.estimates.quantification import expectation_maximisation_priors, reweighted_posteriors

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# finance, law, code, medical, other: a web-like mix where 'other' dominates.
TRUE_SHARES = np.array([0.05, 0.03, 0.04, 0.02, 0.86])
# Uneven errors: 8% of 'other' is called finance, only 2% of finance is called other.
BIASED_CONFUSION = np.array(
    [
        [0.96, 0.005, 0.01, 0.005, 0.02],
        [0.02, 0.93, 0.01, 0.01, 0.03],
        [0.01, 0.005, 0.97, 0.005, 0.01],
        [0.01, 0.01, 0.01, 0.92, 0.05],
        [0.08, 0.02, 0.01, 0.015, 0.875],
    ]
)
S = TRUE_SHARES.size


def draw_labels(rng: np.random.Generator, shares: FloatArray, n: int) -> IntArray:
    return rng.choice(shares.size, size=n, p=shares).astype(np.int64)


def draw_predictions(rng: np.random.Generator, true: IntArray, confusion: FloatArray) -> IntArray:
    """Predicted label per document, drawn from the confusion row of its true class."""
    cumulative = confusion.cumsum(axis=1)[true]
    pred = (rng.random(true.size)[:, None] > cumulative).sum(axis=1)
    # Guard against cumulative rows that round to just under 1.
    out: IntArray = np.minimum(pred, confusion.shape[1] - 1).astype(np.int64)
    return out


# (a) ACC removes the bias of a deliberately biased classifier -------------------------------------------


def test_acc_removes_bias_of_biased_classifier() -> None:
    rng = np.random.default_rng(1)
    true = draw_labels(rng, TRUE_SHARES, 200_000)
    pred = draw_predictions(rng, true, BIASED_CONFUSION)
    raw = classify_and_count(pred, None, S)
    assert abs(raw[0] - TRUE_SHARES[0]) > 0.01  # CC overstates finance by ~6 points

    known = adjusted_classify_and_count(raw, BIASED_CONFUSION)
    assert np.max(np.abs(known - TRUE_SHARES)) < 0.005

    # The realistic case: error rates estimated on a labelled dev set with a different (uniform) mix.
    dev_true = draw_labels(rng, np.full(S, 1 / S), 50_000)
    dev_pred = draw_predictions(rng, dev_true, BIASED_CONFUSION)
    estimated = rates_from_counts(confusion_counts(dev_true, dev_pred, None, S))
    acc = adjusted_classify_and_count(raw, estimated)
    assert np.max(np.abs(acc - TRUE_SHARES)) < 0.005
    assert acc.min() >= 0 and acc.sum() == pytest.approx(1.0, abs=1e-12)


def test_token_weighted_confusion_corrects_length_dependent_errors() -> None:
    """Short 'other' documents are misread as finance; only a token-weighted confusion matrix knows that."""
    rng = np.random.default_rng(2)

    def corpus(n: int, shares: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
        true = draw_labels(rng, shares, n)
        tokens = rng.lognormal(6.0, 1.0, n)
        short = tokens < np.exp(6.0)
        confusion_short = BIASED_CONFUSION.copy()
        confusion_short[4] = [0.16, 0.02, 0.01, 0.015, 0.795]
        pred = np.where(
            short, draw_predictions(rng, true, confusion_short), draw_predictions(rng, true, np.eye(S))
        )
        return true, pred, tokens

    true, pred, tokens = corpus(200_000, TRUE_SHARES)
    token_truth = np.bincount(true, weights=tokens, minlength=S) / tokens.sum()
    observed = classify_and_count(pred, tokens, S)
    dev_true, dev_pred, dev_tokens = corpus(100_000, np.full(S, 1 / S))
    by_doc = adjusted_classify_and_count(
        observed, rates_from_counts(confusion_counts(dev_true, dev_pred, None, S))
    )
    by_token = adjusted_classify_and_count(
        observed, rates_from_counts(confusion_counts(dev_true, dev_pred, dev_tokens, S))
    )
    assert abs(by_doc[0] - token_truth[0]) > 0.01  # document-weighted rates over-correct token shares
    assert np.max(np.abs(by_token - token_truth)) < 0.005


# (b) PCC / PACC on calibrated probabilities ------------------------------------------------------------

# Neighbouring classes overlap (~11% of each tail crosses the midpoint) yet stay well conditioned for PACC.
FEATURE_MEANS = np.array([0.0, 2.5, 5.0, 7.5, 10.0])


def calibrated_probs(rng: np.random.Generator, true: IntArray) -> FloatArray:
    """Exact posteriors under a uniform prior for a 1-d Gaussian feature per class: calibrated by design."""
    x = rng.normal(FEATURE_MEANS[true], 1.0)
    likelihood = norm.pdf(x[:, None] - FEATURE_MEANS[None, :])
    out: FloatArray = likelihood / likelihood.sum(axis=1, keepdims=True)
    return out


def test_pcc_is_unbiased_when_calibrated_for_the_corpus_mix() -> None:
    rng = np.random.default_rng(3)
    true = draw_labels(rng, np.full(S, 1 / S), 100_000)
    pcc = probabilistic_average(calibrated_probs(rng, true), None)
    assert np.max(np.abs(pcc - 1 / S)) < 0.005


def test_pacc_corrects_pcc_under_label_shift() -> None:
    rng = np.random.default_rng(4)
    true = draw_labels(rng, TRUE_SHARES, 400_000)
    probs = calibrated_probs(rng, true)
    weights = rng.uniform(50, 500, true.size)  # tokens independent of the feature: weighting is harmless
    pcc = probabilistic_average(probs, weights)
    # Calibrated for a uniform mix, not this one: PCC drags 'other' towards 1/S by tens of points.
    assert np.max(np.abs(pcc - TRUE_SHARES)) > 0.01

    dev_true = draw_labels(rng, np.full(S, 1 / S), 100_000)
    dev_probs = calibrated_probs(rng, dev_true)
    matrix = rates_from_counts(probabilistic_confusion_totals(dev_true, dev_probs, None))
    pacc = probabilistic_adjusted_classify_and_count(pcc, matrix)
    assert np.max(np.abs(pacc - TRUE_SHARES)) < 0.005


# (c) cluster bootstrap coverage -------------------------------------------------------------------------


def simulated_corpora(
    rng: np.random.Generator, n_corpora: int, n_shards: int, concentration: float
) -> FloatArray:
    """(corpora, shards, S) document counts per true domain; shard mixes are Dirichlet around the truth."""
    mixes = rng.dirichlet(concentration * TRUE_SHARES, size=(n_corpora, n_shards))
    docs = rng.integers(200, 2000, size=(n_corpora, n_shards))
    return rng.multinomial(docs, mixes).astype(np.float64)


@pytest.mark.parametrize("method", ["percentile", "basic", "bca"])
def test_cluster_bootstrap_covers_population_share(method: IntervalMethod) -> None:
    rng = np.random.default_rng(5)
    corpora = simulated_corpora(rng, n_corpora=200, n_shards=50, concentration=50.0)
    covered = np.zeros((corpora.shape[0], S), dtype=bool)
    for k, shard_totals in enumerate(corpora):
        interval = cluster_bootstrap(shard_totals, n_replicates=300, seed=k, method=method)
        covered[k] = (interval.lo <= TRUE_SHARES) & (interval.hi >= TRUE_SHARES)
    coverage = covered.mean()
    print(f"{method} coverage {coverage:.3f}, per domain {np.round(covered.mean(axis=0), 3).tolist()}")
    assert 0.88 <= coverage <= 0.99
    assert covered.mean(axis=0).min() >= 0.85


def test_bootstrap_is_fast_on_ten_thousand_clusters() -> None:
    rng = np.random.default_rng(6)
    totals = rng.multinomial(100, TRUE_SHARES, size=10_000).astype(np.float64)
    start = time.perf_counter()
    interval = cluster_bootstrap(totals, acc_estimator(BIASED_CONFUSION), n_replicates=1000, seed=0)
    elapsed = time.perf_counter() - start
    print(f"1000 ACC replicates over 10,000 clusters: {elapsed:.3f} s")
    assert elapsed < 2.0  # typically well under 1 s; slack for loaded CI machines
    assert np.all(interval.lo <= interval.point) and np.all(interval.point <= interval.hi)


def test_model_uncertainty_widens_acc_interval_and_restores_coverage() -> None:
    rng = np.random.default_rng(7)
    n_corpora, misses_without, misses_with = 100, 0, 0
    width_without, width_with = [], []
    for k in range(n_corpora):
        true = draw_labels(rng, TRUE_SHARES, 40_000)
        pred = draw_predictions(rng, true, BIASED_CONFUSION)
        shards = np.repeat(np.arange(80), 500)
        totals = cluster_totals(shards, pred, None, 80, S)
        # A small dev set: its error in the confusion rates dominates the corpus sampling error.
        dev_true = draw_labels(rng, np.full(S, 1 / S), 1_500)
        dev_pred = draw_predictions(rng, dev_true, BIASED_CONFUSION)
        confusion = rates_from_counts(confusion_counts(dev_true, dev_pred, None, S))
        without = cluster_bootstrap(totals, acc_estimator(confusion), n_replicates=300, seed=k)
        with_model = cluster_bootstrap(
            totals,
            acc_estimator(confusion),
            confusions=resample_confusion(dev_true, dev_pred, None, n=300, seed=k),
            n_replicates=300,
            seed=k,
        )
        misses_without += int(not without.lo[0] <= TRUE_SHARES[0] <= without.hi[0])
        misses_with += int(not with_model.lo[0] <= TRUE_SHARES[0] <= with_model.hi[0])
        width_without.append(without.hi[0] - without.lo[0])
        width_with.append(with_model.hi[0] - with_model.lo[0])
    coverage_without = 1 - misses_without / n_corpora
    coverage_with = 1 - misses_with / n_corpora
    print(f"finance ACC coverage: corpus only {coverage_without:.2f}, with dev set {coverage_with:.2f}")
    assert np.mean(width_with) > 1.5 * np.mean(width_without)
    assert coverage_with >= 0.88
    assert coverage_without < coverage_with


def test_same_seed_pairs_estimators_and_pcc_uses_probability_totals() -> None:
    rng = np.random.default_rng(8)
    counts = rng.multinomial(300, TRUE_SHARES, size=40).astype(np.float64)
    cc = cluster_bootstrap(counts, cc_estimator, n_replicates=200, seed=3)
    pcc = cluster_bootstrap(counts, pcc_estimator, probability_totals=counts, n_replicates=200, seed=3)
    np.testing.assert_allclose(cc.replicates, pcc.replicates)
    np.testing.assert_allclose(cc.point, counts.sum(axis=0) / counts.sum())
    with pytest.raises(ValueError, match="probability_totals"):
        cluster_bootstrap(counts, pcc_estimator, n_replicates=10)
    with pytest.raises(ValueError, match="confusion matrices"):
        cluster_bootstrap(
            counts, acc_estimator(BIASED_CONFUSION), confusions=[BIASED_CONFUSION], n_replicates=10
        )
    pacc = cluster_bootstrap(
        counts, pacc_estimator(BIASED_CONFUSION), probability_totals=counts, n_replicates=50, seed=3
    )
    acc = cluster_bootstrap(counts, acc_estimator(BIASED_CONFUSION), n_replicates=50, seed=3)
    np.testing.assert_allclose(pacc.point, acc.point)
    assert cc.standard_error.shape == (S,)


def test_cluster_helpers_hand_example() -> None:
    cluster = [0, 0, 1, 1, 1]
    pred = [0, 1, 1, 1, 0]
    tokens = [10.0, 20.0, 30.0, 40.0, 50.0]
    np.testing.assert_allclose(cluster_totals(cluster, pred, tokens, 2, 2), [[10, 20], [50, 70]])
    probs = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    np.testing.assert_allclose(probability_cluster_totals(cluster, probs, tokens, 2), [[20, 10], [50, 70]])
    ids = block_cluster_ids([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], block_size=2)
    assert ids.tolist() == [0, 0, 1, 2, 2]


def test_resampled_confusions_are_rates_centred_on_the_dev_estimate() -> None:
    rng = np.random.default_rng(9)
    dev_true = draw_labels(rng, np.full(S, 1 / S), 5_000)
    dev_pred = draw_predictions(rng, dev_true, BIASED_CONFUSION)
    weights = rng.uniform(1, 3, dev_true.size)
    full = rates_from_counts(confusion_counts(dev_true, dev_pred, weights, S))
    draws = np.stack(list(resample_confusion(dev_true, dev_pred, weights, n=400, seed=1)))
    assert draws.shape == (400, S, S)
    np.testing.assert_allclose(draws.sum(axis=2), 1.0)
    np.testing.assert_allclose(draws.mean(axis=0), full, atol=0.005)
    again = np.stack(list(resample_confusion(dev_true, dev_pred, weights, n=400, seed=1)))
    np.testing.assert_array_equal(draws, again)
    probs = calibrated_probs(rng, dev_true)
    pdraws = np.stack(list(resample_probabilistic_confusion(dev_true, probs, None, n=50, seed=1)))
    np.testing.assert_allclose(pdraws.sum(axis=2), 1.0)
    with pytest.raises(ValueError, match="true class"):
        next(resample_confusion(np.zeros(10, dtype=np.int64), np.zeros(10, dtype=np.int64), None, n=5))


# (d) the simplex constraint --------------------------------------------------------------------------------


def objective(x: FloatArray, confusion: FloatArray, observed: FloatArray) -> float:
    return float(np.sum((confusion.T @ x - observed) ** 2))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), noise=st.floats(0.0, 0.5), n_classes=st.integers(2, 6))
def test_acc_stays_in_simplex_and_is_optimal(seed: int, noise: float, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    confusion = rng.dirichlet(np.ones(n_classes), size=n_classes) + rng.uniform(0, 3) * np.eye(n_classes)
    confusion /= confusion.sum(axis=1, keepdims=True)
    truth = rng.dirichlet(np.ones(n_classes) * 0.3)
    observed = (1 - noise) * (confusion.T @ truth) + noise * rng.dirichlet(np.ones(n_classes))
    shares = adjusted_classify_and_count(observed, confusion)
    assert shares.min() >= 0.0
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    # No feasible point may fit better: compare with a generic constrained solver (SLSQP).
    reference = minimize(
        objective,
        np.full(n_classes, 1 / n_classes),
        args=(confusion, observed),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_classes,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert objective(shares, confusion, observed) <= objective(reference.x, confusion, observed) + 1e-8
    if noise == 0.0:
        np.testing.assert_allclose(shares, truth, atol=1e-6)


def test_acc_degenerate_confusion_still_returns_simplex_point() -> None:
    uninformative = np.full((S, S), 1 / S)  # singular: the classifier says nothing
    shares = adjusted_classify_and_count(TRUE_SHARES, uninformative)
    assert shares.min() >= 0 and shares.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="true class"):
        rates_from_counts(np.array([[3.0, 1.0], [0.0, 0.0]]))


# (e) sampling determinism, extrapolation and unit conversion --------------------------------------------


def test_sample_mask_is_deterministic_proportional_and_nested() -> None:
    ids = [f"cc-main-2024/shard-{i // 1000:03d}/doc-{i}" for i in range(20_000)]
    mask = sample_mask(ids, 0.2, seed=0)
    np.testing.assert_array_equal(mask, sample_mask(list(ids), 0.2, seed=0))
    assert 0.18 <= mask.mean() <= 0.22
    other_seed = sample_mask(ids, 0.2, seed=1)
    assert (mask != other_seed).mean() > 0.2
    assert not np.any(sample_mask(ids, 0.1, seed=0) & ~mask)  # lower rates keep a subset
    assert sample_mask(ids, 1.0).all()
    # The rule is reproducible outside this code: xxh3_64(id, seed) < floor(rate * 2**64).
    by_hand = [xxhash.xxh3_64_intdigest(i.encode(), seed=0) < int(0.2 * 2**64) for i in ids[:50]]
    assert mask[:50].tolist() == by_hand
    with pytest.raises(ValueError):
        sample_mask(ids, 0.0)
    assert inclusion_weight(0.2) == pytest.approx(5.0)


def test_first_n_mask_and_shard_weight() -> None:
    assert first_n_mask(5, 3).tolist() == [True, True, True, False, False]
    assert first_n_mask(2, 3).all() and first_n_mask(4, None).all()
    assert shard_weight(n_total=1000, n_kept=250) == 4.0


def test_extrapolation_and_unit_conversion_hand_example() -> None:
    result = extrapolate([0.1, 0.2, 0.7], [0.08, 0.15, 0.65], [0.12, 0.25, 0.75], corpus_tokens=2e9)
    np.testing.assert_allclose(result.tokens, [2e8, 4e8, 1.4e9])
    np.testing.assert_allclose(result.lo, [1.6e8, 3e8, 1.3e9])
    np.testing.assert_allclose(result.hi, [2.4e8, 5e8, 1.5e9])
    np.testing.assert_allclose(ratio_to_reference(result.tokens, [1e8, 8e8, 7e8]), [2.0, 0.5, 2.0])
    # 1,000 tokens at 4.0 bytes/token are 4,000 bytes, i.e. 1,250 tokens at 3.2 bytes/token.
    np.testing.assert_allclose(convert_tokens([1000.0, 600.0], [4.0, 3.0], [3.2, 2.0]), [1250.0, 900.0])
    with pytest.raises(ValueError):
        extrapolate([0.5], [0.6], [0.4], 1.0)


# (f) hand-computed two-class ACC -------------------------------------------------------------------------


def test_two_class_acc_by_hand() -> None:
    # tpr = P(pred finance | finance) = 0.9, fpr = P(pred finance | other) = 0.2.
    confusion = rates_from_counts([[90, 10], [20, 80]])
    np.testing.assert_allclose(confusion, [[0.9, 0.1], [0.2, 0.8]])
    # True finance 0.3: observed = 0.3 * 0.9 + 0.7 * 0.2 = 0.41, and (0.41 - 0.2) / (0.9 - 0.2) = 0.3.
    np.testing.assert_allclose(adjusted_classify_and_count([0.41, 0.59], confusion), [0.3, 0.7], atol=1e-9)
    # Observed 0.15 < fpr: the unconstrained answer is -1/14; the simplex optimum is the vertex (0, 1).
    np.testing.assert_allclose(adjusted_classify_and_count([0.15, 0.85], confusion), [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(classify_and_count([0, 1, 1, 0], [1.0, 1.0, 1.0, 2.0], 2), [0.6, 0.4])


def test_accelerated_emq_reaches_plain_em_fixed_point_in_fewer_passes() -> None:
    rng = np.random.default_rng(11)
    n = 4000
    # no document of class 0: EM drives its share towards 0, where plain steps crawl (sublinearly)
    true = rng.choice(5, size=n, p=[0.0, 0.15, 0.3, 0.15, 0.4])
    probs = np.exp(1.5 * np.eye(5)[true] + rng.normal(size=(n, 5)))
    probs /= probs.sum(axis=1, keepdims=True)
    weights = rng.gamma(2.0, 300.0, size=n)
    prior = np.array([0.3, 0.3, 0.1, 0.1, 0.2])
    passes = 0

    def sums(ratios: np.ndarray) -> np.ndarray:
        nonlocal passes
        passes += 1
        return np.stack([weights @ reweighted_posteriors(probs, row) for row in ratios])

    shares, _ = expectation_maximisation_priors(sums, np.array([weights.sum()]), prior)
    accelerated_passes = passes
    # the reference: plain EM, run far past any stopping rule
    plain = prior.copy()
    for _ in range(20_000):
        plain = weights @ reweighted_posteriors(probs, plain / prior) / weights.sum()
    assert shares[0] == pytest.approx(plain, abs=1e-7)
    assert accelerated_passes <= 20  # plain EM stops after 50 here


def test_recalibrated_bootstrap_keeps_a_stratum_no_replicate_cluster_holds() -> None:
    """With a census (`strata`), a domain whose tagged documents sit in one cluster is missing from
    about a third of the replicates; the census says how much of it there is, so it keeps its point
    totals there instead of reading 0 (which made small dumps' intervals span almost [0, 1])."""
    rng = np.random.default_rng(3)
    clusters, classes = 12, 3
    counts = rng.uniform(50, 100, size=(clusters, classes))
    counts[1:, 1] = 0.0  # domain 1 only in cluster 0
    sizes = counts * 4.0  # bytes, 4 per token
    split = np.zeros((clusters, classes, classes))
    for k in range(classes):
        split[:, k, k] = counts[:, k]
    interval = cluster_bootstrap(
        counts, cc_estimator, probability_totals=counts, n_replicates=300, seed=1, strata=(sizes, split)
    )
    assert np.all(interval.replicates[:, 1] > 0)
    # tokens per byte is the same in every cluster, so calibration leaves no sampling error at all
    np.testing.assert_allclose(interval.replicates, np.repeat(interval.point[None], 300, axis=0), atol=1e-12)
