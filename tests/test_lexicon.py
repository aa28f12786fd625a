"""Domain lexicon markers: matching rules, the sidecar round trip, and the vectorised engine folding
the markers per token exactly as fastText reads the annotated line."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from generated import labeled_rows
from harness import load_with_both_engines
from test_fasttext_vectorised import TRICKY_LINES

from analyzer import DOMAINS
from analyzer.classifier_model import Sidecar, fasttext_probabilities, model_labels
from analyzer.errors import ModelError
from analyzer.fasttext_vectorised import VectorisedFastText
from analyzer.lexicon import DomainLexicon, marker_token
from analyzer.line_markers import NO_MARKERS, LineMarkers
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.text_normalise import normalise_for_classifier
from analyzer.training.examples import AS_READ
from analyzer.training.train import (
    SHIPPED_PARAMS,
    TextView,
    shipped_markers,
    view_training_set,
    write_sidecar,
)

LEXICON = DomainLexicon.from_mapping(
    {
        "name": "test-lexicon",
        "domains": {
            "finance": "Dividend revenue 10-K bond",
            "law": ["court", "plaintiff's", "bond"],
            "medical": "patient dose",
        },
    },
    "test",
)
"""'bond' is in two lists on purpose; '10-K' must match the folded '00-k'."""


def counts(line: str) -> dict[str, int]:
    return dict(zip(LEXICON.domains, LEXICON.marker_counts(line), strict=True))


def test_words_are_normalised_like_the_text_and_deduplicated() -> None:
    assert LEXICON.words["finance"] == ("dividend", "revenue", "00-k", "bond")
    assert LEXICON.words["law"] == ("court", "plaintiff's", "bond")
    again = DomainLexicon.from_mapping({"name": "x", "domains": {"law": "Court court COURT."}}, "x")
    assert again.words["law"] == ("court",)


def test_marker_counts_follow_the_token_rules() -> None:
    line = normalise_for_classifier('The Court, "Dividend"! (patient) the plaintiff\'s 10-K bond courts')
    assert counts(line) == {"finance": 3, "law": 3, "medical": 1}  # bond counts for both
    assert counts("court\tcourt\x0bcourt\x0ccourt\x00court") == {"finance": 0, "law": 5, "medical": 0}
    # fastText drops __label__ tokens and stops reading at a literal end-of-line token
    assert counts("__label__court court </s> court dividend") == {"finance": 0, "law": 1, "medical": 0}
    # no splitting inside a token: only surrounding punctuation goes
    assert counts("court-ordered dividend/revenue non\u00a0court") == {"finance": 0, "law": 0, "medical": 0}


def test_annotate_puts_markers_in_front_and_leaves_other_lines_alone() -> None:
    assert LEXICON.annotate("the court and the patient") == (
        f"{marker_token('law')} {marker_token('medical')} the court and the patient"
    )
    assert LEXICON.annotate("nothing to see") == "nothing to see"
    assert NO_MARKERS.line("The COURT", None) == "the court"
    assert LineMarkers(LEXICON).line("The COURT", None) == f"{marker_token('law')} the court"


def test_lexicon_files_that_cannot_be_used_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"cannot read lexicon .*missing\.yaml"):
        DomainLexicon.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"broken\.yaml is not valid YAML"):
        DomainLexicon.load(broken)
    no_domains = tmp_path / "empty.yaml"
    no_domains.write_text("name: x\ndomains: {}\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"empty\.yaml needs a `name`"):
        DomainLexicon.load(no_domains)
    bad_words = tmp_path / "bad.yaml"
    bad_words.write_text("name: x\ndomains:\n  law: 3\n", encoding="utf-8")
    with pytest.raises(ModelError, match="domain 'law' must list words"):
        DomainLexicon.load(bad_words)
    phrase = tmp_path / "phrase.yaml"
    phrase.write_text("name: x\ndomains:\n  finance: [bond, interest rate]\n", encoding="utf-8")
    with pytest.raises(ModelError, match="'interest rate' under 'finance' holds a space"):
        DomainLexicon.load(phrase)
    spaced_domain = tmp_path / "spaced.yaml"
    spaced_domain.write_text("name: x\ndomains:\n  real estate: house\n", encoding="utf-8")
    with pytest.raises(ModelError, match="domain name 'real estate' must be one word"):
        DomainLexicon.load(spaced_domain)


def test_shipped_lexicon_covers_every_label_with_distinct_words() -> None:
    shipped = shipped_markers().lexicon
    assert shipped is not None
    assert set(shipped.words) == {"finance", "law", "code", "medical", "other"}
    for domain, words in shipped.words.items():
        assert len(words) >= 100, domain
        assert all(word == normalise_for_classifier(word, None) and " " not in word for word in words)
    shared = set(shipped.words["law"]) & set(shipped.words["finance"])
    assert len(shared) <= 5, shared  # the lists are meant to tell domains apart


def train_lexicon_model(directory: Path, **params: Any) -> Any:
    """A fastText model trained on lines annotated by LEXICON (generated text plus lexicon words)."""
    import fasttext

    rng = random.Random(5)
    planted = {"finance": "dividend", "law": "court,", "medical": "(patient)"}
    path = directory / "train.txt"
    with path.open("w", encoding="utf-8") as handle:
        for row in labeled_rows(300, seed=4):
            words = row["text"].split()
            if row["label"] in planted and rng.random() < 0.7:
                words.insert(rng.randrange(len(words)), planted[row["label"]])
            line = LineMarkers(LEXICON).line(" ".join(words), None)
            handle.write(f"__label__{row['label']} {line}\n")
    return fasttext.train_supervised(
        str(path), thread=1, seed=1, verbose=0, epoch=10, lr=0.5, bucket=5000, **params
    )


@pytest.mark.parametrize(
    "params",
    [{"minn": 3, "maxn": 5, "dim": 8}, {"minn": 2, "maxn": 4, "dim": 6, "loss": "ova"}],
    ids=["softmax", "ova"],
)
def test_vectorised_engine_folds_markers_exactly(tmp_path: Path, params: dict[str, Any]) -> None:
    model = train_lexicon_model(tmp_path, **params)
    rng = random.Random(9)
    words = ["court", "court.", "dividend", "bond", "patient", "plaintiff's", "00-k", "zebra", "</s>"]
    plain = [normalise_for_classifier(row["text"]) for row in labeled_rows(90, seed=8)]
    plain = [f"{line} {' '.join(rng.choices(words, k=rng.randint(0, 6)))}" for line in plain]
    plain += [normalise_for_classifier(line, None) for line in TRICKY_LINES]
    plain += [
        "court </s> court court dividend",
        "__label__law court __label__court",
        f"{marker_token('law')} written in the text itself",
        "bond bond bond",
    ]
    labels = model_labels(model)
    expected = fasttext_probabilities(model, [LEXICON.annotate(line) for line in plain], labels)
    engine = VectorisedFastText.from_fasttext(model, LEXICON)
    np.testing.assert_allclose(engine.probabilities(plain), expected, atol=5e-5)
    # unknown tokens are folded when first met too: a second pass reads them from the cache
    np.testing.assert_allclose(engine.probabilities(plain), expected, atol=5e-5)
    # and without the lexicon the engine would read something else (the markers matter)
    assert np.abs(VectorisedFastText.from_fasttext(model).probabilities(plain) - expected).max() > 1e-3


def test_sidecar_carries_the_lexicon_to_prediction(tmp_path: Path) -> None:
    model = train_lexicon_model(tmp_path, minn=3, maxn=5, dim=8)
    model_path = tmp_path / "lexical.bin"
    model.save_model(str(model_path))
    view = TextView(4000, markers=LineMarkers(LEXICON, SYMBOL_DENSITY_BINS))
    sidecar = Sidecar("lexical", DOMAINS, 1.0, 4000, {})
    write_sidecar(model_path, sidecar, SHIPPED_PARAMS, 0, None, view.markers)
    stored = json.loads(model_path.with_suffix(".json").read_text())["lexicon"]
    assert DomainLexicon.from_mapping(stored, "sidecar") == LEXICON
    texts = ["The Court heard the plaintiff's appeal.", "Dividend and bond revenue rose.", "", "Tea."]
    # one preparation for training and prediction, on both engines
    models, _ = load_with_both_engines(model_path, texts, [view.normalise(text) for text in texts])
    assert all(loaded.markers == view.markers for loaded in models.values())


def test_training_lines_carry_markers_only_with_a_lexicon() -> None:
    from analyzer.training.data import LabeledData

    data = LabeledData(["The court ruled. " * 300], ["law"], ["s"])
    with_lexicon, _ = view_training_set(data, None, TextView(1000, markers=LineMarkers(LEXICON)), AS_READ)
    without, _ = view_training_set(data, None, TextView(1000), AS_READ)
    assert all(line.startswith(marker_token("law")) for line in with_lexicon)
    assert len(with_lexicon) == len(without) and not any(marker_token("law") in line for line in without)
