"""The symbol-density marker: its arithmetic, its place in the prepared line, and the sidecar
carrying its bands to prediction so both engines read what training wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from generated import labeled_rows
from harness import load_with_both_engines

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel, Sidecar
from analyzer.errors import ModelError
from analyzer.lexicon import DomainLexicon, marker_token
from analyzer.line_markers import LineMarkers
from analyzer.symbol_density import SYMBOL_DENSITY_BINS, byte_density, density_marker
from analyzer.text_normalise import normalise_for_classifier
from analyzer.training.train import SHIPPED_PARAMS, TextView, write_sidecar

BINS = (0.01, 0.1)


def test_density_counts_code_symbols_per_utf8_byte() -> None:
    assert byte_density(b"") == 0.0
    assert byte_density(b"abcd") == 0.0
    assert byte_density(b"a;b{") == pytest.approx(2 / 4)
    assert byte_density(b"x = f(y);") == pytest.approx(4 / 9)  # = ( ) ; (spaces are not symbols)
    # 'é' is two UTF-8 bytes: the denominator is bytes, as the byte table reads them
    assert byte_density("é;".encode()) == pytest.approx(1 / 3)


def test_marker_band_counts_the_edges_at_or_below_the_density() -> None:
    def prepared(line: str, bins: tuple[float, ...]) -> str:
        return normalise_for_classifier(line, None, bins)  # these lines are already normalised

    prose = "the court heard the appeal " * 10
    assert prepared(prose, BINS) == f"{density_marker(0)} {prose}"
    assert prepared("a" * 99 + ";", BINS).startswith(density_marker(1) + " ")  # exactly 0.01
    assert prepared("if (x) { y(); }", BINS).startswith(density_marker(2) + " ")
    assert prepared(prose, ()) == prose  # a model without the marker
    assert prepared("   ", BINS) == "   "  # an empty document gets no marker either


def test_density_is_read_before_the_lexicon_adds_its_underscored_markers() -> None:
    lexicon = DomainLexicon.from_mapping({"name": "t", "domains": {"law": "court"}}, "test")
    text = "The court; " + "and the court " * 20
    plain = LineMarkers(symbol_bins=BINS).line(text, None)
    annotated = LineMarkers(lexicon, BINS).line(text, None)
    band_marker = plain.split()[0]
    assert band_marker == density_marker(0)
    # lexicon markers in front, then the same density marker and line
    assert annotated == " ".join([marker_token("law")] * 21 + [plain])


def train_density_model(directory: Path, bins: tuple[float, ...]) -> Path:
    """A tiny model trained on lines prepared with `bins`, saved with its sidecar."""
    import fasttext

    path = directory / "train.txt"
    view = TextView(4000, markers=LineMarkers(symbol_bins=bins))
    with path.open("w", encoding="utf-8") as handle:
        for row in labeled_rows(300, seed=4):
            # code rows carry code punctuation, so the bands mean something to the model
            text = row["text"] + (" x = f(y); { z[i] };" * 3 if row["label"] == "code" else "")
            handle.write(f"__label__{row['label']} {view.normalise(text)}\n")
    model = fasttext.train_supervised(
        str(path), thread=1, seed=1, verbose=0, epoch=10, lr=0.5, bucket=5000, minn=3, maxn=5, dim=8
    )
    model_path = directory / "dense.bin"
    model.save_model(str(model_path))
    write_sidecar(model_path, Sidecar("dense", DOMAINS, 1.0, 4000, {}), SHIPPED_PARAMS, 0, None, view.markers)
    return model_path


def test_sidecar_carries_the_bands_and_both_engines_read_them(tmp_path: Path) -> None:
    model_path = train_density_model(tmp_path, SYMBOL_DENSITY_BINS)
    assert json.loads(model_path.with_suffix(".json").read_text())["symbol_density_bins"] == list(
        SYMBOL_DENSITY_BINS
    )
    texts = [row["text"] for row in labeled_rows(40, seed=9)] + ["int main() { return 0; }", "", "Tea."]
    view = TextView(4000, markers=LineMarkers(symbol_bins=SYMBOL_DENSITY_BINS))
    models, with_marker = load_with_both_engines(model_path, texts, [view.normalise(text) for text in texts])
    assert all(loaded.markers.symbol_bins == SYMBOL_DENSITY_BINS for loaded in models.values())
    # the marker is part of what the model reads: dropping it from the sidecar changes predictions
    sidecar_path = model_path.with_suffix(".json")
    payload = json.loads(sidecar_path.read_text())
    del payload["symbol_density_bins"]
    sidecar_path.write_text(json.dumps(payload))
    without = DomainModel.load(model_path)
    assert without.markers.symbol_bins == ()
    assert np.abs(without.predict_proba(texts) - with_marker).max() > 1e-3


@pytest.mark.parametrize(
    ("stored", "complaint"),
    [("0.01", "must be a list of numbers"), ([0.1, 0.01], "increasing"), ([0.0, 0.5], "increasing")],
)
def test_a_damaged_band_list_in_the_sidecar_is_refused_naming_the_model(
    tmp_path: Path, stored: object, complaint: str
) -> None:
    model_path = train_density_model(tmp_path, BINS)
    sidecar_path = model_path.with_suffix(".json")
    payload = json.loads(sidecar_path.read_text())
    payload["symbol_density_bins"] = stored
    sidecar_path.write_text(json.dumps(payload))
    with pytest.raises(ModelError, match=rf"dense\.json.*{complaint}|dense\.bin.*{complaint}"):
        DomainModel.load(model_path)
