"""Training-set construction (source balancing, extra windows) and leave-one-source-out scoring.

Generated data only (tests/generated.py); nothing reads ../shared.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from generated import make_text

from analyzer import DOMAINS, text_normalise
from analyzer.training.card import holdout_section
from analyzer.training.data import LabeledData
from analyzer.training.examples import (
    AS_READ,
    MIN_WINDOW_CHARS,
    TrainingSetRecipe,
    balanced_indices,
    document_lines,
    training_examples,
)
from analyzer.training.source_holdout import held_out_sources, source_holdout
from analyzer.training.train import FastTextParams, TextView, view_training_set

TINY_PARAMS = FastTextParams(epoch=10, lr=0.5, dim=8, word_ngrams=1, minn=0, maxn=0, bucket=2000, min_count=1)


def test_balancing_weighs_sources_by_square_root_and_keeps_label_sizes() -> None:
    labels = ["law"] * 104 + ["code"] * 10
    sources = ["big"] * 100 + ["small"] * 4 + ["only"] * 10
    chosen = balanced_indices(labels, sources, range(len(labels)), 0.5, random.Random(0))
    per_source = Counter(sources[i] for i in chosen)
    # sqrt(100) : sqrt(4) = 10 : 2 of the label's 104 lines
    assert per_source == {"big": round(104 * 10 / 12), "small": round(104 * 2 / 12), "only": 10}
    # the small source is repeated whole (4 times) and topped up; every index stays in its group
    small = Counter(i for i in chosen if sources[i] == "small")
    assert set(small) == {100, 101, 102, 103} and min(small.values()) >= 4
    assert balanced_indices(labels, sources, range(len(labels)), 0.5, random.Random(0)) == chosen


def test_balancing_exponent_one_keeps_documents_as_read() -> None:
    labels, sources = ["law", "law", "code"], ["a", "b", "a"]
    assert balanced_indices(labels, sources, [2, 0, 1], 1.0, random.Random(0)) == [2, 0, 1]


def test_extra_windows_follow_the_head_and_skip_short_tails() -> None:
    text = "".join(random.Random(3).choice("abcdefgh ") for _ in range(10_000))
    lines = document_lines(text, 4000, 2)
    assert lines == [
        text_normalise.normalise_for_classifier(text, 4000),
        text_normalise.normalise_for_classifier(text[4000:8000], None),
        text_normalise.normalise_for_classifier(text[8000:], None),
    ]
    short_tail = text[: 8000 + MIN_WINDOW_CHARS - 1]
    assert len(document_lines(short_tail, 4000, 2)) == 2
    assert len(document_lines(text, 4000, 0)) == 1
    assert len(document_lines(text, None, 2)) == 1  # the whole text is already read


def test_training_examples_keep_labels_and_are_reproducible() -> None:
    rng = random.Random(5)
    texts = [make_text(DOMAINS[i % 5], rng, words=40) for i in range(50)]
    labels = [DOMAINS[i % 5] for i in range(50)]
    data = LabeledData(texts, labels, ["s1" if i < 30 else "s2" for i in range(50)])
    view = TextView(4000)
    lines, line_labels = view_training_set(data, None, view, TrainingSetRecipe())
    assert view_training_set(data, None, view, TrainingSetRecipe()) == (lines, line_labels)
    by_line = {view.normalise(t): label for t, label in zip(texts, labels, strict=True)}
    assert all(by_line[line] == label for line, label in zip(lines, line_labels, strict=True))
    assert Counter(line_labels) == Counter(labels)  # short documents: balancing keeps each label's size
    as_read, _ = training_examples(data, [0, 1, 2], lambda text: [text], AS_READ)
    assert sorted(as_read) == sorted(texts[:3])


def holdout_data() -> LabeledData:
    """Three sources sharing each label's vocabulary, plus `odd`: law by label, medical by words."""
    rng = random.Random(11)
    texts, labels, sources = [], [], []
    for source in ("s1", "s2", "s3"):
        for i in range(60):
            label = DOMAINS[i % 5]
            texts.append(make_text(label, rng, words=40))
            labels.append(label)
            sources.append(source)
    for _ in range(25):
        texts.append(make_text("medical", rng, words=40))
        labels.append("law")
        sources.append("odd")
    texts.append(make_text("code", rng, words=40))  # a source too small to hold out
    labels.append("code")
    sources.append("tiny")
    return LabeledData(texts, labels, sources)


def test_source_holdout_predicts_every_source_with_a_model_that_never_saw_it() -> None:
    data = holdout_data()
    view = TextView(4000)
    result = source_holdout(
        data,
        TINY_PARAMS,
        lambda part, indices: view_training_set(part, indices, view, AS_READ),
        view,
        workers=1,
        log=lambda message: None,
    )
    scores = {score.source: score for score in result.sources}
    assert sorted(scores) == held_out_sources(data.sources) == ["odd", "s1", "s2", "s3"]
    assert result.kept_in_training == ["tiny"]
    assert result.held_out_documents == len(data.texts) - 1
    for source in ("s1", "s2", "s3"):
        # the only errors: medical documents read as law, learnt from `odd` (in these models' training)
        assert scores[source].accuracy > 0.7
        assert set(scores[source].misread_as) <= {"law"}
    # trained without `odd`, the model reads its medical words as medical: every one is wrong;
    # had `odd` been in its own training set, some would have been read as law
    assert scores["odd"].accuracy < 0.2
    assert scores["odd"].misread_as.get("medical", 0) >= 20
    assert result.pooled.n_docs == result.held_out_documents
    assert result.pooled.accuracy == pytest.approx(
        sum(score.accuracy * score.documents for score in result.sources) / result.held_out_documents
    )
    section = holdout_section(result, result.pooled)
    assert "| odd | 25 | law 25 |" in section and f"**{result.pooled.macro_f1:.4f}**" in section
    # every held-out document keeps its probabilities; the kept-in source has none
    held_out = ~np.isnan(result.probabilities).any(axis=1)
    assert held_out.sum() == result.held_out_documents and not held_out[data.sources.index("tiny")]
    assert np.allclose(result.probabilities[held_out].sum(axis=1), 1.0, atol=1e-4)
    # each model's prior is the label mix of its training lines, which lack its source
    assert set(result.training_priors) == set(scores)
    assert all(sum(prior) == pytest.approx(1.0) for prior in result.training_priors.values())
    assert "probabilities" not in result.to_dict()


def test_source_holdout_needs_sources() -> None:
    data = LabeledData(["a b c"] * 30, ["law"] * 30, ["unknown"] * 30)
    with pytest.raises(ValueError, match="at least two sources"):
        source_holdout(data, TINY_PARAMS, lambda part, indices: ([], []), TextView(4000), workers=1)
