"""Multi-domain documents: a one-vs-all model's independent sigmoids decide `domains`, so a page can
be both finance and code, while `p_*` stay probabilities that sum to 1 (the shares need them)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from generated import labeled_rows, make_text, train_tiny_model, write_jsonl_gz

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel, companion_path_for, fasttext_probabilities
from analyzer.errors import ModelError
from analyzer.taggers.domain import DomainTagger
from analyzer.training.companion import train_companion
from analyzer.training.train import FastTextParams, TextView, train_domain_classifier


@pytest.fixture(scope="module")
def ova_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("ova"), loss="ova", epoch=30, lr=0.5)


def mixed_texts(count: int, seed: int) -> list[str]:
    """Pages half finance, half code (the DeFi contract page of issue 5)."""
    rng = random.Random(seed)
    return [f"{make_text('finance', rng, words=60)} {make_text('code', rng, words=60)}" for _ in range(count)]


@pytest.mark.parametrize("engine", ["vectorised", "fasttext"])
def test_one_vs_all_scores_are_the_models_own_sigmoids(ova_model: Path, engine: str) -> None:
    model = DomainModel.load(ova_model, engine=engine)
    assert model.one_vs_all
    texts = [*mixed_texts(20, seed=1), "", "plain words"]
    probabilities, scores = model.predict_with_scores(texts)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    sigmoids = fasttext_probabilities(model.ft_model, model.normalise(texts), DOMAINS, renormalise=False)
    np.testing.assert_allclose(scores, sigmoids, atol=5e-5)
    assert np.abs(scores.sum(axis=1) - 1.0).max() > 0.05  # independent: they need not sum to 1
    np.testing.assert_allclose(probabilities, scores / scores.sum(axis=1, keepdims=True), atol=1e-12)


def test_a_softmax_models_scores_are_its_probabilities(tiny_model: Path) -> None:
    model = DomainModel.load(tiny_model)
    assert not model.one_vs_all
    probabilities, scores = model.predict_with_scores(mixed_texts(5, seed=2))
    assert scores is probabilities


def test_a_mixed_page_can_be_both_finance_and_code(ova_model: Path) -> None:
    texts = [*mixed_texts(30, seed=3), make_text("law", random.Random(4), words=80)]
    batch = pa.RecordBatch.from_pydict({"text": texts})
    columns = DomainTagger(ova_model, multi_label_threshold=0.5).tag(batch)
    domains = columns["domains"].to_pylist()
    both = [row for row in domains[:-1] if set(row) == {"finance", "code"}]
    # probabilities sum to 1, so at most one of them reaches 0.5; the sigmoids are independent
    assert len(both) >= 3
    probabilities = np.column_stack([columns[f"p_{d}"].to_numpy() for d in DOMAINS])
    assert ((probabilities >= 0.5).sum(axis=1) <= 1).all()
    assert domains[-1] == ["law"]
    # the tags record what `domains` was read from
    assert DomainTagger(ova_model, multi_label_threshold=0.5).version.endswith(":sigmoids")


def test_a_label_map_folds_sigmoids_by_their_maximum(ova_model: Path, tmp_path: Path) -> None:
    """Two model labels sent to one domain: their probabilities add up, their sigmoids do not (the
    domain is present if either label is)."""
    label_map = tmp_path / "map.yaml"
    label_map.write_text(
        "name: law-as-finance\nlabels:\n  finance: finance\n  law: finance\n  code: code\n"
        "  medical: medical\n  other: other\n",
        encoding="utf-8",
    )
    texts = mixed_texts(10, seed=5)
    own_probabilities, own_scores = DomainModel.load(ova_model).predict_with_scores(texts)
    probabilities, scores = DomainModel.load(ova_model, label_map).predict_with_scores(texts)
    finance, law = DOMAINS.index("finance"), DOMAINS.index("law")
    np.testing.assert_allclose(
        probabilities[:, finance], own_probabilities[:, finance] + own_probabilities[:, law]
    )
    np.testing.assert_allclose(scores[:, finance], np.maximum(own_scores[:, finance], own_scores[:, law]))
    assert np.all(probabilities[:, law] == 0) and np.all(scores[:, law] == 0)


def test_a_softmax_model_reads_multi_labels_from_its_one_vs_all_companion(tmp_path: Path) -> None:
    """`make classifier-ova`'s recipe on generated data: the companion sits beside a softmax model
    built by the training recipe; `domains` then comes from its sigmoids, `p_*` from the model."""
    train_path = write_jsonl_gz(tmp_path / "train.jsonl.gz", labeled_rows(400, seed=1))
    dev_path = write_jsonl_gz(tmp_path / "dev.jsonl.gz", labeled_rows(150, seed=2))
    params = FastTextParams(epoch=30, lr=0.5, dim=8, minn=2, maxn=4, bucket=2000, min_count=1)
    report = train_domain_classifier(
        train_path, dev_path, tmp_path / "out", "tiny", grid=[params], views=[TextView(2000)], workers=1,
        log=lambda message: None,
    )  # fmt: skip
    model_path = Path(report.model_path)
    texts = [*mixed_texts(30, seed=6), make_text("law", random.Random(7), words=80)]
    alone = DomainModel.load(model_path).predict_with_scores(texts)
    assert alone[1] is alone[0]  # no companion yet: the probabilities
    metrics = train_companion(model_path, train_path, dev_path)
    companion = companion_path_for(model_path)
    assert companion.is_file() and companion.with_suffix(".json").is_file()
    assert metrics["argmax_macro_f1"] > 0.9 and 0.0 <= metrics["threshold_0.5"]["two_or_more_labels"] <= 1.0
    assert json.loads(companion.with_suffix(".metrics.json").read_text())["companion_of"] == model_path.name
    model = DomainModel.load(model_path)
    probabilities, scores = model.predict_with_scores(texts)
    np.testing.assert_array_equal(probabilities, alone[0])  # the shares' probabilities are untouched
    sigmoids = DomainModel.load(companion).predict_label_scores(texts)[1]
    np.testing.assert_array_equal(scores, sigmoids)
    tagger = DomainTagger(model_path, multi_label_threshold=0.5)
    assert ":sigmoids-of-" in tagger.version
    domains = tagger.tag(pa.RecordBatch.from_pydict({"text": texts}))["domains"].to_pylist()
    # probabilities that sum to 1 give no page both labels at 0.5; the companion's sigmoids can
    both = sum(set(row) == {"finance", "code"} for row in domains[:-1])
    print(f"mixed pages with both labels at 0.5: {both} of {len(domains) - 1}")
    assert both >= 1
    assert domains[-1] == ["law"]


def test_a_companion_needs_a_model_built_by_the_recipe(tiny_model: Path, tmp_path: Path) -> None:
    train_path = write_jsonl_gz(tmp_path / "train.jsonl.gz", labeled_rows(50, seed=1))
    with pytest.raises(ModelError, match="does not record the recipe"):
        train_companion(tiny_model, train_path, train_path)
