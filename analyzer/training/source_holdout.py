"""How well does a training recipe carry over to sources it never saw? Leave-one-source-out.

Dev scores flatter a model whose dev documents come from the same sources as its training data
(same filings, same news site, same Q&A collection, only different documents). A user's corpus is
made of other sources, so for every source of the labeled data (the `source` field) a model with
the recipe's settings is trained on all other sources (train and dev pooled) and predicts that
source's documents. Every document is thus predicted exactly once, by a model that saw nothing of
its source; the pooled predictions give one macro-F1 (`pooled`) and each source its accuracy.

Runs in worker processes, one fastText training per source, each single-threaded and seeded, so
the result is reproducible. The training recipe reports it in the model card;
bench/classifier_sources.py compares training-set recipes with it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer import DOMAINS
from analyzer.classifier_model import fasttext_probabilities
from analyzer.training.data import LabeledData, write_training_file
from analyzer.training.evaluate import Evaluation, evaluate_probabilities

if TYPE_CHECKING:  # train imports this module
    from analyzer.training.train import FastTextParams, TextView

MIN_SOURCE_DOCUMENTS = 20
"""Sources with fewer documents are not held out on their own (their accuracy would be noise); they
stay in every training set."""


@dataclass(frozen=True)
class SourceScore:
    """How the model that never saw `source` read that source's documents."""

    source: str
    documents: int
    labels: dict[str, int]
    accuracy: float
    misread_as: dict[str, int]
    """Wrong predictions by predicted label (largest first)."""


@dataclass
class SourceHoldout:
    """Leave-one-source-out result: per-source accuracy and the pooled evaluation."""

    sources: list[SourceScore]
    pooled: Evaluation
    held_out_documents: int
    kept_in_training: list[str]
    """Sources too small to hold out alone (< MIN_SOURCE_DOCUMENTS documents)."""
    training_priors: dict[str, list[float]] = field(default_factory=dict)
    """Per held-out source, the label mix (DOMAINS order) of the lines its model trained on: the
    prior its posteriors are calibrated for."""
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, len(DOMAINS))), repr=False)
    """(documents, DOMAINS) fastText probabilities of every document from the model that never saw
    its source (uncalibrated); NaN rows for the sources kept in every training set."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (without the per-document probabilities)."""
        out = asdict(self)
        del out["probabilities"]
        return out


@dataclass(frozen=True)
class _HoldoutJob:
    held_out: str
    train_file: Path
    test_lines: tuple[str, ...]
    test_index: tuple[int, ...]
    params: FastTextParams
    seed: int


def _run_job(job: _HoldoutJob) -> tuple[tuple[int, ...], np.ndarray]:
    from analyzer.training.train import train_fasttext  # train imports this module

    ft_model = train_fasttext(job.train_file, job.params, job.seed)
    return job.test_index, fasttext_probabilities(ft_model, list(job.test_lines), DOMAINS)


def _source_score(source: str, truths: list[str], probabilities: np.ndarray) -> SourceScore:
    """How the model that never saw `source` read its documents (true labels, its probabilities)."""
    guesses = [DOMAINS[int(k)] for k in probabilities.argmax(axis=1)]
    wrong = Counter(guess for guess, truth in zip(guesses, truths, strict=True) if guess != truth)
    accuracy = 1.0 - sum(wrong.values()) / len(truths)
    return SourceScore(
        source, len(truths), dict(Counter(truths).most_common()), accuracy, dict(wrong.most_common())
    )


def held_out_sources(sources: Sequence[str], min_documents: int = MIN_SOURCE_DOCUMENTS) -> list[str]:
    """Sources with at least `min_documents` documents, in name order."""
    counts = Counter(sources)
    return sorted(source for source, n in counts.items() if n >= min_documents)


def source_holdout(
    data: LabeledData,
    params: FastTextParams,
    training_lines: Callable[[LabeledData, Sequence[int]], tuple[list[str], list[str]]],
    view: TextView,
    *,
    seed: int = 0,
    workers: int = 2,
    min_documents: int = MIN_SOURCE_DOCUMENTS,
    log: Any = print,
) -> SourceHoldout:
    """Train one model per held-out source on the others and score each source's documents.

    `training_lines(data, indices)` returns the (normalised lines, labels) a model trains on for the
    documents at `indices`: the recipe's own training-set builder, so source balancing or extra
    windows are evaluated exactly as they train. Test documents are read through `view` (a head-only
    `TextView`), as prediction reads them.
    """
    if len(data.sources) != len(data.texts) or len(set(data.sources)) < 2:
        raise ValueError("leave-one-source-out needs a `source` for every document and at least two sources")
    targets = held_out_sources(data.sources, min_documents)
    if not targets:
        raise ValueError(f"no source has {min_documents} documents to hold out")
    sources = np.array(data.sources)
    with tempfile.TemporaryDirectory(prefix="analyzer-holdout-") as tmp:
        jobs = []
        priors: dict[str, list[float]] = {}
        for number, source in enumerate(targets):
            train_index = np.flatnonzero(sources != source)
            test_index = np.flatnonzero(sources == source)
            lines, labels = training_lines(data, train_index.tolist())
            label_counts = Counter(labels)
            priors[source] = [label_counts[label] / len(labels) for label in DOMAINS]
            train_file = Path(tmp) / f"holdout{number}.txt"
            write_training_file(lines, labels, train_file)
            test_lines = tuple(view.normalise(data.texts[i]) for i in test_index)
            jobs.append(
                _HoldoutJob(source, train_file, test_lines, tuple(int(i) for i in test_index), params, seed)
            )
        probabilities = np.full((len(data.texts), len(DOMAINS)), np.nan)
        predicted = np.zeros(len(data.texts), dtype=bool)
        scores = []
        pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) if workers > 1 else None
        )
        with pool or nullcontext():
            # results arrive in job order as they finish, so each source is logged when it is done
            results = pool.map(_run_job, jobs) if pool is not None else map(_run_job, jobs)
            for number, (job, (index, probs)) in enumerate(zip(jobs, results, strict=True), start=1):
                rows = np.array(index)
                probabilities[rows] = probs
                predicted[rows] = True
                score = _source_score(job.held_out, [data.labels[i] for i in rows], probs)
                scores.append(score)
                log(
                    f"[{number}/{len(jobs)}] held out {score.source:<20} {score.documents:>5} documents, "
                    f"accuracy {score.accuracy:.3f}"
                )
    chosen = np.flatnonzero(predicted)
    pooled = evaluate_probabilities(probabilities[chosen], [data.labels[i] for i in chosen])
    kept = sorted(set(data.sources) - set(targets))
    return SourceHoldout(scores, pooled, int(chosen.size), kept, priors, probabilities)
