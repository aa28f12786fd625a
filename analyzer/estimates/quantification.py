"""Domain shares from classifier output: classify-and-count, probabilistic average, and their
misclassification-adjusted versions (ACC, PACC). Every estimate is a point of the simplex.

Token weighting: when shares are token-weighted (weights = n_tokens), the adjustment is only exact if the
confusion matrix is token-weighted too (dev weights = n_tokens). A document-weighted confusion matrix
assumes error rates do not depend on document length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Weight of the sum-to-one row in the augmented NNLS system: large enough that the constraint holds to
# ~1e-9 before the final renormalisation, small enough not to wreck the conditioning.
_SUM_ROW_WEIGHT = 1e4


def _weights_or_ones(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    return w


def _labels(labels: ArrayLike, n_classes: int, what: str) -> IntArray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{what} must be a 1-d integer array")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"{what} must lie in [0, {n_classes})")
    return lab.astype(np.int64, copy=False)


def _normalise(totals: FloatArray, what: str) -> FloatArray:
    total = totals.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError(f"{what} has zero total weight: no shares can be estimated")
    out: FloatArray = totals / total
    return out


def classify_and_count(predicted: ArrayLike, weights: ArrayLike | None, n_classes: int) -> FloatArray:
    """Weighted share of documents whose top label is each class (CC); sums to 1."""
    pred = _labels(predicted, n_classes, "predicted")
    w = _weights_or_ones(weights, pred.size)
    return _normalise(np.bincount(pred, weights=w, minlength=n_classes).astype(np.float64), "corpus")


def probabilistic_average(probs: ArrayLike, weights: ArrayLike | None) -> FloatArray:
    """Weighted mean of the model's class probabilities (PCC); sums to 1."""
    p = _probability_rows(probs)
    w = _weights_or_ones(weights, p.shape[0])
    return _normalise(w @ p, "corpus")


def _probability_rows(probs: ArrayLike) -> FloatArray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (n_docs, n_classes), got shape {p.shape}")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError("probs must be finite and non-negative")
    # Stored probabilities are float32 and may miss 1 by rounding; renormalise rows so shares stay exact.
    return _normalise(p, "a probability row")


def confusion_counts(
    true: ArrayLike, predicted: ArrayLike, weights: ArrayLike | None, n_classes: int
) -> FloatArray:
    """Weighted counts: entry [i, j] is the weight of dev documents of true class i predicted as j."""
    t = _labels(true, n_classes, "true")
    pred = _labels(predicted, n_classes, "predicted")
    if t.shape != pred.shape:
        raise ValueError("true and predicted must have the same length")
    w = _weights_or_ones(weights, t.size)
    flat = np.bincount(t * n_classes + pred, weights=w, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.float64)


def probabilistic_confusion_totals(
    true: ArrayLike, probs: ArrayLike, weights: ArrayLike | None
) -> FloatArray:
    """Weighted sums: row i is the summed probability vector of dev documents of true class i."""
    p = _probability_rows(probs)
    n_classes = p.shape[1]
    t = _labels(true, n_classes, "true")
    if t.size != p.shape[0]:
        raise ValueError("true and probs must have the same number of documents")
    w = _weights_or_ones(weights, t.size)
    out = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(out, t, p * w[:, None])
    return out


def rates_from_counts(counts: ArrayLike) -> FloatArray:
    """Row-normalise a (true x predicted) count or probability-sum matrix into P(predicted j | true i)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion counts must be square, got shape {c.shape}")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError("confusion counts must be finite and non-negative")
    empty = np.flatnonzero(c.sum(axis=1) <= 0)
    if empty.size:
        raise ValueError(f"no dev documents of true class(es) {empty.tolist()}: error rates unknown")
    return _normalise(c, "a confusion row")


def _check_rates(confusion: ArrayLike, n_classes: int) -> FloatArray:
    m = np.asarray(confusion, dtype=np.float64)
    if m.shape[-2:] != (n_classes, n_classes):
        raise ValueError(f"confusion must be ({n_classes}, {n_classes}), got {m.shape}")
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("confusion must be finite and non-negative")
    # Rows are conditional distributions; renormalise so counts-like input or rounding cannot bias sums.
    return _normalise(m, "a confusion row")


def simplex_least_squares(observed: FloatArray, confusion: FloatArray) -> FloatArray:
    """argmin ||confusion.T @ x - observed|| over the simplex (x >= 0, sum x = 1), via NNLS."""
    n_classes = observed.shape[0]
    a = np.vstack([confusion.T, np.full((1, n_classes), _SUM_ROW_WEIGHT)])
    b = np.concatenate([observed, [_SUM_ROW_WEIGHT]])
    from scipy.optimize import nnls  # imported here: ~0.6 s of start-up that cc runs never need

    x, _ = nnls(a, b, maxiter=50 * n_classes)
    total = x.sum()
    if total <= 0:
        raise ValueError("adjusted estimate collapsed to zero; the confusion matrix is degenerate")
    out: FloatArray = x / total
    return out


def adjust_many(observed: ArrayLike, confusion: ArrayLike) -> FloatArray:
    """Per row r, the simplex point best solving observed[r] = confusion[r].T @ true[r]; (R,S), (R|1,S,S)."""
    q = np.asarray(observed, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"observed must be (n_replicates, n_classes), got {q.shape}")
    n_rep, n_classes = q.shape
    q = _normalise(q, "observed shares")
    m = _check_rates(confusion, n_classes)
    if m.ndim == 2:
        m = m[None]
    m = np.broadcast_to(m, (n_rep, n_classes, n_classes))
    # Fast path: when the exact inverse lies in the simplex it is the constrained optimum (zero residual,
    # and it sums to 1 because confusion rows do), so NNLS is only needed for the replicates outside.
    try:
        x = np.linalg.solve(np.swapaxes(m, 1, 2), q[:, :, None])[:, :, 0]
        outside = ~np.all(np.isfinite(x) & (x >= 0), axis=1)
    except np.linalg.LinAlgError:
        x = np.empty_like(q)
        outside = np.ones(n_rep, dtype=np.bool_)
    for r in np.flatnonzero(outside):
        x[r] = simplex_least_squares(q[r], m[r])
    out: FloatArray = x / x.sum(axis=1, keepdims=True)
    return out


def adjusted_classify_and_count(observed_shares: ArrayLike, confusion: ArrayLike) -> FloatArray:
    """ACC: simplex shares that best explain the CC shares, given confusion[i, j] = P(pred j | true i)."""
    q = np.asarray(observed_shares, dtype=np.float64)
    if q.ndim != 1:
        raise ValueError(f"observed_shares must be 1-d, got shape {q.shape}")
    out: FloatArray = adjust_many(q[None], confusion)[0]
    return out


def probabilistic_adjusted_classify_and_count(
    observed_mean_probs: ArrayLike, probabilistic_confusion: ArrayLike
) -> FloatArray:
    """PACC: as ACC, with PCC shares and row i = mean predicted probability vector of true class i."""
    return adjusted_classify_and_count(observed_mean_probs, probabilistic_confusion)


def expectation_maximisation_shares(
    probs: ArrayLike,
    weights: ArrayLike | None,
    training_prior: ArrayLike,
    max_iterations: int = 300,
    tolerance: float = 1e-8,
) -> tuple[FloatArray, FloatArray]:
    """EMQ / SLD (Saerens, Latinne & Decaestecker 2002): re-estimate class priors under prior shift.

    The model's posteriors p(y|x) are calibrated for `training_prior`; under a new prior q they become
    p(y|x) q(y) / training_prior(y), renormalised. EM alternates that re-weighting (E step) with
    q = weighted mean of the re-weighted posteriors (M step) until q stops moving. With token
    weights, q estimates token shares. Returns (q, the re-weighted posteriors at q).
    """
    p = _probability_rows(probs)
    w = _weights_or_ones(weights, p.shape[0])
    if w.sum() <= 0:
        raise ValueError("corpus has zero total weight: no shares can be estimated")
    if np.shape(training_prior) != (p.shape[1],):
        raise ValueError("training_prior must be positive, one entry per class")

    def weighted_posterior_sums(ratios: FloatArray) -> FloatArray:
        sums: FloatArray = (w @ reweighted_posteriors(p, ratios[0]))[None]
        return sums

    shares, ratios = expectation_maximisation_priors(
        weighted_posterior_sums, np.array([w.sum()]), training_prior, max_iterations, tolerance
    )
    return shares[0], reweighted_posteriors(p, ratios[0])


def reweighted_posteriors(probs: FloatArray, ratio: FloatArray) -> FloatArray:
    """The E step: posteriors p(y|x) r(y), renormalised, for the prior ratio r = q / training prior."""
    scaled = probs * ratio
    posterior: FloatArray = scaled / scaled.sum(axis=1, keepdims=True)
    return posterior


SQUAREM_MAX_STEP = 64.0
"""Longest extrapolation SQUAREM may take, in units of one EM step (Varadhan & Roland 2008)."""


def expectation_maximisation_priors(
    weighted_posterior_sums: Callable[[FloatArray], FloatArray],
    totals: ArrayLike,
    training_prior: ArrayLike,
    max_iterations: int = 300,
    tolerance: float = 1e-8,
) -> tuple[FloatArray, FloatArray]:
    """The EMQ iteration for M weightings of the same documents at once, given only their sums.

    A share that EM drives towards 0 converges only sublinearly, and every step here is a pass over
    the documents, so the stopping rule is loose by EM standards: a step moving no share by 1e-8
    (a millionth of a percentage point), or 300 steps, far below the intervals' resolution. Steps are
    accelerated by SQUAREM (Varadhan & Roland 2008): after two EM steps from x0, jump along
    x0 - 2a r + a^2 v (r = x1 - x0, v = x2 - 2 x1 + x0, a = -|r|/|v|, clipped to [-64, -1]), back
    into the simplex, and take one EM step from there; the fixed point is EM's, reached in fewer
    passes (`make`-style measurements in bench/estimates_scale.py).

    `weighted_posterior_sums` maps (M, S) prior ratios q / training prior to the (M, S) sums
    sum_d w_d posterior_d under them (one E and M step; documents may stay where they are, e.g. in
    DuckDB), `totals` is sum_d w_d per weighting. A weighting stops moving once one EM step moves it
    by less than `tolerance`, as if run alone. Returns (q, the ratios of the last E step: the
    posteriors that gave q), both (M, S).
    """
    total = np.asarray(totals, dtype=np.float64)
    if total.ndim != 1 or np.any(total <= 0) or not np.all(np.isfinite(total)):
        raise ValueError("corpus has zero total weight: no shares can be estimated")
    prior = np.asarray(training_prior, dtype=np.float64)
    if prior.ndim != 1 or np.any(prior <= 0) or not np.all(np.isfinite(prior)):
        raise ValueError("training_prior must be positive, one entry per class")
    prior = prior / prior.sum()
    shares = np.tile(prior, (total.size, 1))
    ratios = np.ones_like(shares)
    moving = np.ones(total.size, dtype=np.bool_)
    steps = 0

    def em_step(current: FloatArray) -> FloatArray:
        """One E and M step for every weighting; rows still moving take it, converged rows stop."""
        nonlocal steps
        used = current / prior
        sums = np.asarray(weighted_posterior_sums(used), dtype=np.float64)
        if sums.shape != shares.shape:
            raise ValueError(f"need {shares.shape} posterior sums, one row per weighting; got {sums.shape}")
        steps += 1
        updated: FloatArray = sums / total[:, None]
        converged = np.abs(updated - current).max(axis=1) < tolerance
        shares[moving] = updated[moving]
        ratios[moving] = used[moving]
        moving[converged] = False
        return updated

    def running() -> bool:
        return bool(moving.any()) and steps < max_iterations

    while running():
        start = shares.copy()
        first = em_step(start)
        if not running():
            break
        second = em_step(first)
        if not running():
            break
        r = first - start
        v = second - first - r
        r_norm, v_norm = np.linalg.norm(r, axis=1), np.linalg.norm(v, axis=1)
        step = np.where(v_norm > 0, -r_norm / np.where(v_norm > 0, v_norm, 1.0), -1.0)
        step = np.clip(step, -SQUAREM_MAX_STEP, -1.0)[:, None]
        jumped = np.maximum(start - 2 * step * r + step**2 * v, 1e-12)
        jumped /= jumped.sum(axis=1, keepdims=True)
        # rows that stopped keep their value; the others continue from the jump
        em_step(np.where(moving[:, None], jumped, shares))
    return shares, ratios


def label_noise_covariance(probs: ArrayLike, weights: ArrayLike | None) -> FloatArray:
    """Covariance of the true weighted shares of these documents if each label ~ its posterior.

    Even with every document read and a perfectly calibrated model, which documents are the
    misclassified ones is unknown: sum_d w_d^2 (diag(p_d) - p_d p_d^T) / W^2.
    """
    return label_noise_covariance_from_moments(*label_noise_moments(probs, weights))


def label_noise_moments(
    probs: ArrayLike,
    weights: ArrayLike | None,
    duplicate_sets: ArrayLike | None = None,
    sample_weights: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, float]:
    """(sum_c W_c^2 Q_c / S_c, sum_c W_c^2 Q_c Q_c^T / S_c, W): all `label_noise_covariance` needs.

    c runs over `duplicate_sets` (one id per document: near-duplicates share one, since the model
    misreads all copies of a text or none), W_c is a set's weight, Q_c its weighted mean posterior
    and S_c its weighted mean sample weight (1 without `sample_weights`, i.e. every document read).
    Without sets every document is its own: sum_d w_d^2 p_d / s_d and sum_d w_d^2 p_d p_d^T / s_d.
    Why / S: the label noise is the input's, sum a^2 q (1 - q) over its texts (a their amount),
    which a sample estimates by Horvitz-Thompson as sum s a^2 q (1 - q) = sum w^2 q (1 - q) / s.
    """
    p = _probability_rows(probs)
    w = _weights_or_ones(weights, p.shape[0])
    s = _weights_or_ones(sample_weights, p.shape[0])
    if duplicate_sets is None:
        set_weight, set_totals, set_scaled = w, p * w[:, None], w * s
    else:
        set_of = np.unique(np.asarray(duplicate_sets), return_inverse=True)[1].reshape(-1)
        set_weight = np.bincount(set_of, weights=w).astype(np.float64)
        set_scaled = np.bincount(set_of, weights=w * s).astype(np.float64)
        set_totals = np.zeros((len(set_weight), p.shape[1]), dtype=np.float64)
        np.add.at(set_totals, set_of, p * w[:, None])
    # 1 / S_c = W_c / sum(w s) over the set; 0 for a set without weight (it adds nothing)
    inverse_mean = np.divide(set_weight, set_scaled, out=np.zeros_like(set_weight), where=set_scaled > 0)
    diagonal: FloatArray = (set_weight * inverse_mean) @ set_totals
    outer: FloatArray = (set_totals * inverse_mean[:, None]).T @ set_totals
    return diagonal, outer, float(w.sum())


def label_noise_covariance_from_moments(diagonal: ArrayLike, outer: ArrayLike, total: float) -> FloatArray:
    """The label-noise covariance (diag(sum w^2 p) - sum w^2 p p^T) / W^2 from its sums."""
    if total <= 0:
        raise ValueError("corpus has zero total weight")
    diag = np.diag(np.asarray(diagonal, dtype=np.float64))
    cov: FloatArray = (diag - np.asarray(outer, dtype=np.float64)) / total**2
    return cov


def covariance_square_root(covariance: ArrayLike) -> FloatArray:
    """The symmetric square root S (S @ S = covariance) of a symmetric positive semi-definite matrix.

    Normal draws z @ S then follow N(0, covariance) and, unlike numpy's `multivariate_normal`
    (z times an eigenvector basis, whose signs and, for equal eigenvalues, directions LAPACK picks
    arbitrarily), change continuously with the matrix: a group estimated with the others and the
    same group estimated alone, whose sums differ by rounding, get the same label-noise draws.
    Eigenvalues below zero (rounding of a singular matrix) count as zero.
    """
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    root: FloatArray = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return root
