"""How far the model's reading can move on text from sources it never saw: the source-shift term.

The intervals' other terms size the classifier's error as it reads sources like its training data's.
On an unfamiliar source it errs more, and in a way of its own: leave-one-source-out
(analyzer/training/source_holdout.py) gives, for every held-out source and every label it holds,
the byte share of that source's texts the model read as each domain (a misreading row). Sources
differ: news read as finance here, forum posts as law there.

`SourceShift` keeps those rows beside the model (`<model stem>.source-shift.json`). For an input
whose text is unfamiliar, each replicate of an interval draws, for every domain, the misreading of
one new source of that domain (`predictive_draws`, from the held-out sources' rows) and adds the
share error it implies at the input's mix: truth - CC = -sum_y p_y (row_y - e_y). One source per
domain is the pessimistic case (a crawl mixes many, whose errors partly cancel): the bounds span
the spread between sources around their mean error, not the mean error alone.

How much of the input is unfamiliar is read off the model's own confidence: the weighted share u of
documents whose top calibrated probability is below UNSURE_THRESHOLD, against that share on dev
(familiar) and on the leave-one-source-out predictions (unfamiliar):
lambda = clip((u - u_dev - FAMILIAR_MARGIN_SE se_dev) / (u_unseen - u_dev), 0, 1), which scales
the term: dev's share is itself an estimate (se_dev its standard error), and only an excess beyond
that noise says the input is unfamiliar. On the shared corpus, all of whose sources are in the
training data, u is at dev's level and the term vanishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analyzer import DOMAINS
from analyzer.errors import ModelError

UNSURE_THRESHOLD = 0.9
"""A document whose top calibrated probability is below this is one the model is unsure of."""

MIN_ROW_DOCUMENTS = 20
"""A (source, label) pair with fewer documents gives no misreading row (its rates would be noise)."""

FAMILIAR_MARGIN_SE = 2.0
"""How many standard errors of dev's unsure share an input's must exceed it by before any of it
counts as unfamiliar. Without the margin the cross-fitted fold models read their familiar corpus
as 0.12 of the way to unfamiliar (0.9 point above dev, 1.3 standard errors) and widened its
intervals by 0.1 point; with it, 0, while the unseen-sources bench's lambda fell from 0.81 to 0.77
on average (finance covered in 77 % of its corpora instead of 80 %)."""

SOURCE_SHIFT_VERSION = 2


@dataclass(frozen=True)
class SourceShift:
    """Leave-one-source-out misreading rows of one model and its confidence on familiar and unseen text."""

    sources: tuple[str, ...]
    """Per row, the held-out source."""
    true_index: np.ndarray
    """(R,) per row, the label (DOMAINS index) of the source's texts the row describes."""
    rates: np.ndarray
    """(R, S) per row, the byte share of those texts read (top label) as each domain."""
    familiar_unsure_share: float
    """Byte share of dev documents the model is unsure of (top calibrated probability < threshold)."""
    unseen_unsure_share: float
    """The same over the leave-one-source-out predictions."""
    familiar_unsure_error: float = 0.0
    """Standard error of `familiar_unsure_share` (dev is a sample of familiar text)."""

    def unfamiliar_fraction(self, unsure_share: float) -> float:
        """lambda: 0 up to dev's unsure share plus FAMILIAR_MARGIN_SE standard errors, 1 at the
        leave-one-source-out level."""
        span = self.unseen_unsure_share - self.familiar_unsure_share
        if span <= 0:
            return 0.0
        excess = unsure_share - self.familiar_unsure_share - FAMILIAR_MARGIN_SE * self.familiar_unsure_error
        return float(np.clip(excess / span, 0.0, 1.0))

    def deviations(
        self, point: np.ndarray, fraction: float, replicates: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(replicates, S) draws of truth minus the CC reading `point` when `fraction` of the input is
        unfamiliar: per replicate and domain y, the misreading of one new source of y, drawn from the
        predictive distribution the held-out sources' rows give (`predictive_draws`)."""
        n_classes = point.size
        deviation = np.zeros((replicates, n_classes))
        if fraction <= 0:
            return deviation
        for label in range(n_classes):
            rows = np.flatnonzero(self.true_index == label)
            if rows.size == 0 or point[label] <= 0:
                continue
            errors = self.rates[rows] - np.eye(n_classes)[label]  # (rows, S): read - true
            deviation -= fraction * point[label] * predictive_draws(errors, replicates, rng)
        return deviation


def predictive_draws(errors: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, S) draws of the misreading error of a new source, given n sources' errors (n, S).

    A new source is not one of the n seen: the normal predictive, mean m and covariance
    (1 + 1/n) times the sample covariance. Re-drawing the n rows instead covered finance in 69 % of
    the nested check's corpora (`make bench-estimates-unseen`, before FAMILIAR_MARGIN_SE), this in
    80 %; Student-t tails for an estimated covariance (n - 1 = 1-8 degrees of freedom) covered 92 %
    at +-12 points, too wide to say anything. One source gives no spread: its error only.
    """
    n = errors.shape[0]
    mean = errors.mean(axis=0)
    if n < 2:
        return np.repeat(mean[None], replicates, axis=0)
    centred = errors - mean
    # g @ centred / sqrt(n - 1) has the sample covariance, in the rows' own span (each sums to 0)
    normal = rng.standard_normal((replicates, n)) @ centred / np.sqrt(n - 1)
    draws: np.ndarray = mean + np.sqrt(1.0 + 1.0 / n) * normal
    return draws


def source_shift_from_predictions(
    labels: np.ndarray,
    sources: np.ndarray,
    n_bytes: np.ndarray,
    probabilities: np.ndarray,
    familiar_unsure_share: float,
    familiar_unsure_error: float = 0.0,
    *,
    min_documents: int = MIN_ROW_DOCUMENTS,
) -> SourceShift:
    """Misreading rows from leave-one-source-out predictions (calibrated probabilities, DOMAINS
    order; label indices), one per (source, label) with at least `min_documents` documents."""
    labels = np.asarray(labels, dtype=np.int64)
    weights = np.asarray(n_bytes, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = probabilities.argmax(axis=1)
    row_sources: list[str] = []
    row_labels: list[int] = []
    row_rates: list[np.ndarray] = []
    for source in sorted(set(np.asarray(sources).tolist())):
        in_source = np.asarray(sources) == source
        for label in range(len(DOMAINS)):
            rows = in_source & (labels == label)
            if rows.sum() < min_documents:
                continue
            read = np.bincount(predicted[rows], weights=weights[rows], minlength=len(DOMAINS))
            row_sources.append(source)
            row_labels.append(label)
            row_rates.append(read / read.sum())
    return SourceShift(
        sources=tuple(row_sources),
        true_index=np.array(row_labels, dtype=np.int64),
        rates=np.array(row_rates, dtype=np.float64).reshape(-1, len(DOMAINS)),
        familiar_unsure_share=float(familiar_unsure_share),
        unseen_unsure_share=unsure_share(probabilities, weights),
        familiar_unsure_error=float(familiar_unsure_error),
    )


def unsure_share(probabilities: np.ndarray, weights: np.ndarray) -> float:
    """Weighted share of rows whose top probability is below UNSURE_THRESHOLD."""
    return unsure_share_and_error(probabilities, weights)[0]


def unsure_share_and_error(probabilities: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(`unsure_share`, its standard error as a ratio estimate over independent rows:
    sqrt(sum w^2 (x - u)^2) / sum w, x the 0/1 unsure indicator)."""
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if total <= 0:
        return 0.0, 0.0
    unsure = (np.asarray(probabilities).max(axis=1) < UNSURE_THRESHOLD).astype(np.float64)
    share = float(weights @ unsure / total)
    error = float(np.sqrt(np.sum(weights**2 * (unsure - share) ** 2)) / total)
    return share, error


def source_shift_path_for(model_path: Path) -> Path:
    """Where a model's source-shift rows live: `<model stem>.source-shift.json`."""
    return model_path.with_name(f"{model_path.stem}.source-shift.json")


def write_source_shift(shift: SourceShift, path: Path) -> None:
    rows = [
        {
            "source": source,
            "label": DOMAINS[int(label)],
            "read_as": {d: float(r) for d, r in zip(DOMAINS, rates, strict=True)},
        }
        for source, label, rates in zip(shift.sources, shift.true_index, shift.rates, strict=True)
    ]
    document = {
        "version": SOURCE_SHIFT_VERSION,
        "unsure_threshold": UNSURE_THRESHOLD,
        "familiar_unsure_share": shift.familiar_unsure_share,
        "familiar_unsure_error": shift.familiar_unsure_error,
        "unseen_unsure_share": shift.unseen_unsure_share,
        "rows": rows,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def load_source_shift(path: Path) -> SourceShift:
    """Read `<model>.source-shift.json`; a broken file is a ModelError naming it."""
    try:
        document = json.loads(path.read_text())
        if document["version"] != SOURCE_SHIFT_VERSION:
            raise ValueError(f"version {document['version']}, expected {SOURCE_SHIFT_VERSION}")
        rows = document["rows"]
        return SourceShift(
            sources=tuple(str(row["source"]) for row in rows),
            true_index=np.array([DOMAINS.index(row["label"]) for row in rows], dtype=np.int64),
            rates=np.array([[float(row["read_as"][d]) for d in DOMAINS] for row in rows]).reshape(
                -1, len(DOMAINS)
            ),
            familiar_unsure_share=float(document["familiar_unsure_share"]),
            unseen_unsure_share=float(document["unseen_unsure_share"]),
            familiar_unsure_error=float(document["familiar_unsure_error"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"{path}: source-shift rows unreadable ({exc}); rebuild them with `make classifier`"
        ) from exc
