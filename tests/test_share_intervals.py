"""EMQ and the input-level / corpus-level share intervals (analyzer.estimates.intervals), on generated
data with known answers: prior shift that EMQ removes, finite-population sampling, classifier error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from generated import corpus_documents, write_fineweb_parquet
from harness import run_and_open

from analyzer.estimates.intervals import estimate_shares
from analyzer.estimates.quantification import (
    covariance_square_root,
    expectation_maximisation_shares,
    label_noise_covariance,
    label_noise_covariance_from_moments,
    label_noise_moments,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

S = 5
TRAIN_PRIOR = np.array([0.24, 0.18, 0.15, 0.13, 0.30])
CORPUS_SHARES = np.array([0.05, 0.03, 0.06, 0.02, 0.84])
# Class-conditional feature means SEPARATION * e_k: classes overlap, so posteriors are soft and CC/PCC
# are biased.
SEPARATION = 1.6
# Code documents are long, law medium, the rest short: token shares differ from document shares.
MEAN_TOKENS = np.array([600.0, 900.0, 1500.0, 500.0, 400.0])


def generate(
    rng: np.random.Generator,
    n: int,
    shares: FloatArray,
    prior: FloatArray = TRAIN_PRIOR,
    separation: float = SEPARATION,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """(true label, posteriors calibrated for `prior`, tokens) per document; lengths depend on class only."""
    means = separation * np.eye(S)
    true = rng.choice(S, size=n, p=shares).astype(np.int64)
    x = means[true] + rng.normal(size=(n, S))
    log_likelihood = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    logits = log_likelihood + np.log(prior)[None]
    posterior = np.exp(logits - logits.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    tokens = rng.gamma(2.0, MEAN_TOKENS[true] / 2.0)
    return true, posterior, tokens


def token_shares(true: IntArray, tokens: FloatArray) -> FloatArray:
    out: FloatArray = np.bincount(true, weights=tokens, minlength=S) / tokens.sum()
    return out


# EMQ: a classifier biased by its training prior, corrected ------------------------------------------------


def test_emq_removes_the_training_prior_bias_of_a_calibrated_classifier() -> None:
    rng = np.random.default_rng(11)
    true, posterior, tokens = generate(rng, 60_000, CORPUS_SHARES)
    truth = token_shares(true, tokens)
    cc = np.bincount(posterior.argmax(axis=1), weights=tokens, minlength=S) / tokens.sum()
    pcc = tokens @ posterior / tokens.sum()
    # The classifier leans towards its training mix: 'other' is under-counted by several points.
    assert truth[4] - cc[4] > 0.03 and truth[4] - pcc[4] > 0.03
    emq, adjusted = expectation_maximisation_shares(posterior, tokens, TRAIN_PRIOR)
    assert np.max(np.abs(emq - truth)) < 0.006
    assert emq.sum() == pytest.approx(1.0) and adjusted.shape == posterior.shape
    # Told the wrong training prior (the corpus's own), EM has nothing to correct and keeps the bias.
    wrong, _ = expectation_maximisation_shares(posterior, tokens, CORPUS_SHARES)
    assert np.max(np.abs(wrong - truth)) > 0.02


def test_emq_is_a_fixed_point_when_corpus_mix_equals_training_mix() -> None:
    rng = np.random.default_rng(12)
    true, posterior, _ = generate(rng, 40_000, TRAIN_PRIOR)
    emq, _ = expectation_maximisation_shares(posterior, None, TRAIN_PRIOR)
    doc_truth = np.bincount(true, minlength=S) / true.size
    assert np.max(np.abs(emq - doc_truth)) < 0.01


def test_label_noise_covariance_hand_example() -> None:
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    cov = label_noise_covariance(probs, np.array([1.0, 3.0]))
    # only the first document is uncertain: variance 1^2 * 0.25 / 4^2
    assert cov == pytest.approx(np.array([[0.25, -0.25], [-0.25, 0.25]]) / 16)


def test_label_noise_draws_change_continuously_with_the_covariance() -> None:
    # five equally uncertain domains: one eigenvalue four times, so any basis of its eigenspace is an
    # eigenbasis; a rounding-sized change of the matrix must not change the draws by more than rounding
    shares = np.full(S, 1.0 / S)
    covariance = (np.diag(shares) - np.outer(shares, shares)) / 100
    root = covariance_square_root(covariance)
    np.testing.assert_allclose(root @ root, covariance, atol=1e-15)
    np.testing.assert_allclose(root, root.T, atol=1e-15)
    nudge = np.random.default_rng(1).normal(size=(S, S)) * 1e-13
    nudged = covariance_square_root(covariance + nudge + nudge.T)
    z = np.random.default_rng(2).standard_normal((300, S))
    scale = float(np.sqrt(covariance[0, 0]))
    assert np.abs(z @ root - z @ nudged).max() < 1e-4 * scale


def test_label_noise_of_a_sample_is_the_inputs() -> None:
    """Which of the input's texts are misread: a 20 % sample weighted 5 estimates the input's label-
    noise covariance (Horvitz-Thompson, w^2 / s), not five times it (w^2 alone)."""
    rng = np.random.default_rng(31)
    n = 40_000
    probs = rng.dirichlet(np.full(S, 0.6), size=n)
    tokens = rng.gamma(2.0, 300.0, size=n)
    full = label_noise_covariance_from_moments(*label_noise_moments(probs, tokens))
    kept = rng.random(n) < 0.2
    weight = np.full(int(kept.sum()), n / kept.sum())
    sampled = label_noise_covariance_from_moments(
        *label_noise_moments(probs[kept], tokens[kept] * weight, None, weight)
    )
    unscaled = label_noise_covariance_from_moments(*label_noise_moments(probs[kept], tokens[kept] * weight))
    ratio = np.diag(sampled) / np.diag(full)
    assert np.all((ratio > 0.9) & (ratio < 1.1)), ratio
    assert np.allclose(np.diag(unscaled) / np.diag(sampled), n / kept.sum())
    # copies of one text: a set's weighted mean sample weight, so a set sampled whole is read once
    sets = np.arange(n) // 2
    in_sets = label_noise_moments(probs[:10], tokens[:10], sets[:10], np.full(10, 2.0))
    plain = label_noise_moments(probs[:10], tokens[:10], sets[:10])
    assert np.allclose(in_sets[0], plain[0] / 2) and np.allclose(in_sets[1], plain[1] / 2)


def test_label_noise_treats_near_duplicates_as_one_reading() -> None:
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    weights = np.array([1.0, 1.0, 2.0])
    apart = label_noise_covariance_from_moments(*label_noise_moments(probs, weights))
    together = label_noise_covariance_from_moments(*label_noise_moments(probs, weights, np.array([7, 7, 9])))
    # two copies misread independently: 2 * 1^2 * 0.25; misread together: (1 + 1)^2 * 0.25
    assert apart == pytest.approx(np.array([[0.5, -0.5], [-0.5, 0.5]]) / 16)
    assert together == pytest.approx(np.array([[1.0, -1.0], [-1.0, 1.0]]) / 16)


def test_label_noise_with_duplicate_sets_matches_simulated_shared_misreads() -> None:
    rng = np.random.default_rng(3)
    n_sets = 300
    copies = rng.integers(1, 5, size=n_sets)
    sets = np.repeat(np.arange(n_sets), copies)
    set_probs = rng.dirichlet(np.ones(3), size=n_sets)
    weights = rng.gamma(2.0, 100.0, size=sets.size)
    covariance = label_noise_covariance_from_moments(*label_noise_moments(set_probs[sets], weights, sets))
    # every copy of a text takes the label drawn once for its set
    draws = np.array([(rng.random((n_sets, 1)) > set_probs.cumsum(axis=1)).sum(axis=1) for _ in range(4000)])
    totals = np.stack([np.bincount(labels[sets], weights=weights, minlength=3) for labels in draws])
    shares = totals / weights.sum()
    assert np.cov(shares.T) == pytest.approx(covariance, rel=0.1, abs=1e-6)


# intervals: finite population, sampling, classifier error -------------------------------------------------


def shard_population(
    rng: np.random.Generator, n_shards: int = 40, docs: int = 400
) -> tuple[IntArray, IntArray, IntArray]:
    """A fixed input: shards with their own domain mix (Dirichlet around CORPUS_SHARES)."""
    mixes = rng.dirichlet(40 * CORPUS_SHARES, size=n_shards)
    true = np.concatenate([rng.choice(S, size=docs, p=mix) for mix in mixes]).astype(np.int64)
    shard = np.repeat(np.arange(n_shards), docs)
    row = np.tile(np.arange(docs), n_shards)
    return true, shard, row


def blocks(shard: IntArray, row: IntArray, size: int = 64) -> IntArray:
    _, dense = np.unique(shard * 100_000 + row // size, return_inverse=True)
    out: IntArray = dense.reshape(-1).astype(np.int64)
    return out


def test_perfect_classifier_reading_everything_has_a_zero_width_input_interval() -> None:
    rng = np.random.default_rng(13)
    true, shard, row = shard_population(rng)
    tokens = rng.gamma(2.0, MEAN_TOKENS[true] / 2.0)
    one_hot = np.eye(S)[true]
    result = estimate_shares(blocks(shard, row), tokens, one_hot, "cc", replicates=300)
    truth = token_shares(true, tokens)
    assert result.point == pytest.approx(truth)
    assert result.input_lo == pytest.approx(truth) and result.input_hi == pytest.approx(truth)
    # ... while the corpus-level interval (these shards as a sample of a larger corpus) keeps its width.
    assert np.all(result.corpus_hi - result.corpus_lo > 0.005)


def test_input_interval_carries_classifier_error_when_everything_is_read() -> None:
    """f = 1: no sampling error, but misread documents still make CC wrong; the interval must cover."""
    rng = np.random.default_rng(14)
    n_inputs, covered, widths, corpus_widths, errors = 60, [], [], [], []
    for k in range(n_inputs):
        _, shard, row = shard_population(rng, n_shards=20, docs=300)
        # posteriors calibrated for the corpus mix: the labels really are drawn from them; lengths
        # independent of the class, since the posteriors do not see length
        true, posterior, _ = generate(rng, shard.size, CORPUS_SHARES, prior=CORPUS_SHARES)
        tokens = rng.gamma(2.0, 300.0, size=shard.size)
        truth = token_shares(true, tokens)
        result = estimate_shares(blocks(shard, row), tokens, posterior, "cc", replicates=300, seed=k)
        covered.append((result.input_lo <= truth) & (truth <= result.input_hi))
        widths.append(result.input_hi - result.input_lo)
        corpus_widths.append(result.corpus_hi - result.corpus_lo)
        errors.append(np.abs(result.point - truth))
    coverage = np.mean(covered, axis=0)
    print(f"f=1 CC coverage per domain {np.round(coverage, 3).tolist()}")
    assert np.mean(errors) > 0.002  # the classifier really errs, so a zero-width interval would miss
    assert coverage.min() >= 0.88
    assert np.all(np.mean(widths, axis=0) > 0.002)
    assert np.all(np.mean(widths, axis=0) < np.mean(corpus_widths, axis=0))


def test_cc_interval_reads_the_prior_adjusted_posteriors_under_label_shift() -> None:
    """Posteriors calibrated for the training mix, an input of another mix (label shift): CC and the
    posteriors' plain average (PCC) are biased the same way, so an interval spanning CC and PCC
    misses; given the training prior, CC's interval spans EMQ's reading instead, and covers."""
    rng = np.random.default_rng(17)
    adjusted_covered, plain_covered = [], []
    for k in range(40):
        _, shard, row = shard_population(rng, n_shards=20, docs=300)
        # calibrated for TRAIN_PRIOR; classes apart enough that CC is right for about 9 in 10
        true, posterior, _ = generate(rng, shard.size, CORPUS_SHARES, separation=2.5)
        tokens = rng.gamma(2.0, 300.0, size=shard.size)
        truth = token_shares(true, tokens)
        ids = blocks(shard, row)
        adjusted = estimate_shares(
            ids, tokens, posterior, "cc", training_prior=TRAIN_PRIOR, replicates=300, seed=k
        )
        plain = estimate_shares(ids, tokens, posterior, "cc", replicates=300, seed=k)
        assert adjusted.point == pytest.approx(plain.point)  # the point is classify-and-count either way
        adjusted_covered.append((adjusted.input_lo <= truth) & (truth <= adjusted.input_hi))
        plain_covered.append((plain.input_lo <= truth) & (truth <= plain.input_hi))
    adjusted_coverage, plain_coverage = np.mean(adjusted_covered, axis=0), np.mean(plain_covered, axis=0)
    print(f"coverage {np.round(adjusted_coverage, 3).tolist()}")
    print(f"coverage spanning PCC {np.round(plain_coverage, 3).tolist()}")
    assert adjusted_coverage.min() >= 0.9
    assert plain_coverage[4] <= 0.5  # 'other', the share the training mix biases most


def test_mid_is_the_centre_of_cc_and_emq_inside_ccs_interval() -> None:
    """mid = (CC + EMQ) / 2 with cc's interval: under label shift (posteriors calibrated for the
    training mix, EMQ consistent) it carries about half CC's bias, and its interval covers as cc's."""
    rng = np.random.default_rng(23)
    mid_errors, cc_errors, covered = [], [], []
    for k in range(40):
        _, shard, row = shard_population(rng, n_shards=20, docs=300)
        true, posterior, _ = generate(rng, shard.size, CORPUS_SHARES, separation=2.5)
        tokens = rng.gamma(2.0, 300.0, size=shard.size)
        truth = token_shares(true, tokens)
        ids = blocks(shard, row)
        options = {"training_prior": TRAIN_PRIOR, "replicates": 200, "seed": k}
        mid = estimate_shares(ids, tokens, posterior, "mid", **options)  # type: ignore[arg-type]
        cc = estimate_shares(ids, tokens, posterior, "cc", **options)  # type: ignore[arg-type]
        emq = estimate_shares(ids, tokens, posterior, "emq", **options)  # type: ignore[arg-type]
        np.testing.assert_allclose(mid.point, (cc.point + emq.point) / 2, atol=1e-12)
        np.testing.assert_array_equal(mid.input_lo, np.minimum(cc.input_lo, mid.point))
        np.testing.assert_array_equal(mid.input_hi, np.maximum(cc.input_hi, mid.point))
        assert np.all(mid.input_lo <= mid.point) and np.all(mid.point <= mid.input_hi)
        mid_errors.append(mid.point - truth)
        cc_errors.append(cc.point - truth)
        covered.append((mid.input_lo <= truth) & (truth <= mid.input_hi))
    mid_bias, cc_bias = np.abs(np.mean(mid_errors, axis=0)), np.abs(np.mean(cc_errors, axis=0))
    print(f"bias mid {np.round(mid_bias, 4).tolist()} cc {np.round(cc_bias, 4).tolist()}")
    assert mid_bias[4] < 0.7 * cc_bias[4]  # 'other', which the training mix biases most
    assert np.mean(covered, axis=0).min() >= 0.9
    with pytest.raises(ValueError, match="training prior"):
        estimate_shares(ids, tokens, posterior, "mid", replicates=50)


@pytest.mark.parametrize("rate", [0.2, 0.9])
def test_bernoulli_sample_interval_is_finite_population_corrected_and_covers(rate: float) -> None:
    """A fixed input, sampled again and again: the input-level interval covers the input's share, and
    its sampling part shrinks by sqrt(1 - f) against the plain cluster bootstrap."""
    rng = np.random.default_rng(15)
    true, shard, row = shard_population(rng, n_shards=30, docs=400)
    tokens = rng.gamma(2.0, MEAN_TOKENS[true] / 2.0)
    truth = token_shares(true, tokens)
    one_hot = np.eye(S)[true]  # a perfect classifier isolates the sampling error
    covered, corpus_covered, ratios = [], [], []
    for k in range(120):
        kept = rng.random(true.size) < rate
        weight = np.ones(true.size)
        for code in np.unique(shard):
            members = shard == code
            weight[members] = members.sum() / max(int((kept & members).sum()), 1)
        w = tokens[kept] * weight[kept]
        fraction = float(tokens[kept].sum() / w.sum())
        result = estimate_shares(
            blocks(shard[kept], row[kept]),
            w,
            one_hot[kept],
            "cc",
            sampling_fraction=fraction,
            replicates=300,
            seed=k,
        )
        covered.append((result.input_lo <= truth) & (truth <= result.input_hi))
        corpus_covered.append((result.corpus_lo <= truth) & (truth <= result.corpus_hi))
        ratios.append((result.input_hi - result.input_lo) / (result.corpus_hi - result.corpus_lo))
    coverage = np.mean(covered, axis=0)
    ratio = float(np.median(ratios))
    print(f"rate {rate}: input coverage {np.round(coverage, 3).tolist()}, width ratio {ratio:.3f}")
    assert coverage.min() >= 0.88
    assert np.mean(corpus_covered) >= np.mean(covered)
    assert ratio == pytest.approx(np.sqrt(1 - rate), abs=0.06)


def test_census_calibrated_sample_interval_covers_and_is_narrower() -> None:
    """`--classify-all`: the sample's weights are calibrated to every predicted domain's bytes, so a
    token share only carries the sample's error in tokens per byte within a domain; re-calibrating
    each replicate makes the interval that narrow and it still covers the input's share."""
    rng = np.random.default_rng(21)
    true, shard, row = shard_population(rng, n_shards=30, docs=400)
    tokens = rng.gamma(2.0, MEAN_TOKENS[true] / 2.0)
    n_bytes = tokens * np.array([4.1, 4.4, 3.2, 4.6, 4.3])[true] * rng.lognormal(0.0, 0.15, size=true.size)
    truth = token_shares(true, tokens)
    census = np.bincount(true, weights=n_bytes, minlength=S)
    one_hot = np.eye(S)[true]  # a perfect classifier isolates the sampling error
    rate = 0.2
    covered, widths, plain_widths, errors, byte_widths = [], [], [], [], []
    for k in range(100):
        kept = rng.random(true.size) < rate
        weight = (census / np.bincount(true[kept], weights=n_bytes[kept], minlength=S))[true[kept]]
        fraction = float(kept.mean())
        arguments = (blocks(shard[kept], row[kept]), tokens[kept] * weight, one_hot[kept], "cc")
        strata = n_bytes[kept] * weight
        result = estimate_shares(
            *arguments, sampling_fraction=fraction, stratum_weights=strata, replicates=300, seed=k
        )
        plain = estimate_shares(*arguments, sampling_fraction=fraction, replicates=300, seed=k)
        by_bytes = estimate_shares(
            blocks(shard[kept], row[kept]),
            strata,
            one_hot[kept],
            "cc",
            sampling_fraction=fraction,
            stratum_weights=strata,
            replicates=300,
            seed=k,
        )
        covered.append((result.input_lo <= truth) & (truth <= result.input_hi))
        widths.append(result.input_hi - result.input_lo)
        plain_widths.append(plain.input_hi - plain.input_lo)
        # another draw of blocks from the corpus would have other census totals: not re-calibrated
        np.testing.assert_allclose(result.corpus_lo, plain.corpus_lo)
        np.testing.assert_allclose(result.corpus_hi, plain.corpus_hi)
        errors.append(result.point - truth)
        byte_widths.append(by_bytes.input_hi - by_bytes.input_lo)
    coverage = np.mean(covered, axis=0)
    ratio = float(np.median(np.array(widths) / np.array(plain_widths)))
    rms = np.sqrt(np.mean(np.square(errors), axis=0))
    print(f"census: coverage {np.round(coverage, 3).tolist()}, width ratio {ratio:.3f}, rms {rms}")
    # a ratio estimator's bootstrap covers a little under 95 % in small strata (medical, 2 % of the
    # documents: 0.90-0.95 over 300 draws of two other inputs)
    assert coverage.min() >= 0.85 and coverage.mean() >= 0.9
    assert ratio < 0.5
    # the interval is about as wide as the estimator actually varies (95 %: about 4 rms)
    assert np.all(np.median(widths, axis=0) < 6 * rms)
    assert np.max(byte_widths) < 1e-6  # the calibrated measure itself is known (up to rounding)


def test_emq_interval_brackets_its_point_and_rejects_a_missing_prior() -> None:
    rng = np.random.default_rng(16)
    true, shard, row = shard_population(rng, n_shards=10, docs=200)
    _, posterior, tokens = generate(rng, true.size, CORPUS_SHARES)
    result = estimate_shares(
        blocks(shard, row), tokens, posterior, "emq", training_prior=TRAIN_PRIOR, replicates=200
    )
    assert np.all(result.input_lo <= result.point) and np.all(result.point <= result.input_hi)
    assert np.all(result.input_hi - result.input_lo <= result.corpus_hi - result.corpus_lo + 0.01)
    with pytest.raises(ValueError, match="training prior"):
        estimate_shares(blocks(shard, row), tokens, posterior, "emq", replicates=50)


# the store -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["mid", "cc", "emq"])
def test_domain_shares_has_input_and_corpus_intervals(
    tmp_path: Path, tiny_model: Path, estimator: str
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_fineweb_parquet(corpus / "000.parquet", corpus_documents(300, seed=4, prefix="s"))
    with run_and_open(corpus, tmp_path / "out", tiny_model, "--estimator", estimator) as db:
        rows = db.execute(
            "SELECT token_share, token_share_lo, token_share_hi, token_share_corpus_lo, "
            "token_share_corpus_hi, estimator FROM domain_shares"
        ).fetchall()
    assert sum(row[0] for row in rows) == pytest.approx(1.0)
    for share, lo, hi, corpus_lo, corpus_hi, _ in rows:
        assert lo <= share <= hi and corpus_lo <= share <= corpus_hi
        assert hi - lo <= corpus_hi - corpus_lo + 0.01
    assert rows[0][5].startswith(estimator if estimator == "cc" else (estimator, "cc"))
