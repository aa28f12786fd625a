"""The domain classifier: training on generated data, loading guards, prediction and evaluation maths.

All data here is generated from made-up per-label vocabularies (tests/generated.py); nothing reads
../shared.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from generated import labeled_rows, make_text, write_jsonl_gz

from analyzer import DOMAINS, text_normalise
from analyzer.classifier_model import FASTTEXT_MAGIC, DomainModel, apply_temperature
from analyzer.errors import InputError, ModelError
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.training.card import targets_table, write_model_card
from analyzer.training.data import LabeledData, read_labeled
from analyzer.training.evaluate import (
    bin_index,
    confusion_matrix,
    evaluate_model,
    evaluate_probabilities,
    expected_calibration_error,
    scores_from_confusion,
)
from analyzer.training.train import (
    MIN_SHIPPED_HEAD_CHARS,
    FastTextParams,
    GridResult,
    TextView,
    TrainReport,
    best_result,
    build_classifier,
    choose_view,
    error_groups,
    fit_temperature,
    shipped_markers,
    train_domain_classifier,
)

TINY_PARAMS = FastTextParams(epoch=10, lr=0.5, dim=8, word_ngrams=2, minn=0, maxn=0, bucket=2000, min_count=1)


def train_tiny(directory: Path) -> TrainReport:
    """Run the real recipe on generated data with a one-point grid, in-process (workers=1)."""
    train_path = write_jsonl_gz(directory / "train.jsonl.gz", labeled_rows(400, seed=1))
    dev_path = write_jsonl_gz(directory / "dev.jsonl.gz", labeled_rows(150, seed=2))
    return train_domain_classifier(
        train_path,
        dev_path,
        directory / "out",
        "tiny-domain",
        grid=[TINY_PARAMS],
        views=[TextView(2000)],
        workers=1,
        log=lambda message: None,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainReport:
    """The full recipe (train, evaluate, card, metrics, plot) on generated data."""
    directory = tmp_path_factory.mktemp("classifier")
    train_path = write_jsonl_gz(directory / "train.jsonl.gz", labeled_rows(400, seed=1))
    dev_path = write_jsonl_gz(directory / "dev.jsonl.gz", labeled_rows(150, seed=2))
    return build_classifier(
        train_path,
        dev_path,
        directory / "out",
        "tiny-domain",
        grid=[TINY_PARAMS],
        views=[TextView(2000)],
        workers=1,
        log=lambda message: None,
    )


def test_recipe_writes_model_and_sidecar(trained: TrainReport) -> None:
    sidecar = json.loads(Path(trained.sidecar_path).read_text())
    assert Path(trained.model_path).suffix in {".bin", ".ftz"}
    assert sidecar["labels"] == list(DOMAINS)
    assert sidecar["head_chars"] == 2000
    assert sidecar["temperature"] == pytest.approx(trained.temperature)
    assert trained.quantisation["bin_macro_f1"] > 0.9
    out = Path(trained.model_path).parent
    card = (out / "tiny-domain.card.md").read_text()
    sections = (
        "## Reproduce",
        "## Recipe",
        "## Dev results",
        "## Targets",
        "## Known limits",
        "ECE",
        "Seed spread",
    )
    for section in sections:
        assert section in card
    # the chosen configuration is retrained with the next seeds, scored per label
    assert [run.seed for run in trained.seed_runs] == [1, 2]
    assert all(set(run.label_f1) == set(DOMAINS) and run.dev_macro_f1 > 0.5 for run in trained.seed_runs)
    metrics = json.loads((out / "tiny-domain.metrics.json").read_text())
    assert metrics["dev"]["macro_f1"] == pytest.approx(trained.dev.macro_f1 if trained.dev else -1)
    assert (out / "tiny-domain.reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_card_tells_the_shipped_lexicons_history_only_for_the_shipped_lexicon(
    trained: TrainReport, tmp_path: Path
) -> None:
    shipped = shipped_markers().lexicon
    assert trained.dev is not None and shipped is not None and trained.lexicon_name == shipped.name
    history = "The shipped lexicon was written"
    write_model_card(tmp_path / "shipped.md", trained, trained.dev, "make classifier")
    assert history in (tmp_path / "shipped.md").read_text()
    own = replace(trained, lexicon_name="my-lexicon")
    write_model_card(tmp_path / "own.md", own, trained.dev, "analyzer train --lexicon my.yaml")
    card = (tmp_path / "own.md").read_text()
    assert history not in card and "`my-lexicon`" in card


def test_predict_proba_shape_sums_and_column_order(trained: TrainReport) -> None:
    model = DomainModel.load(trained.model_path)
    rng = random.Random(7)
    texts = [make_text(label, rng) for label in DOMAINS] + ["", "x" * 10]
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), len(DOMAINS))
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    # Each generated text is made of one label's words, so its column must win.
    assert [DOMAINS[i] for i in probs[: len(DOMAINS)].argmax(axis=1)] == list(DOMAINS)
    assert model.head_chars == 2000
    assert model.name == "tiny-domain"
    assert len(model.version) == 12


def test_missing_model_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist.*make classifier"):
        DomainModel.load(tmp_path / "nope.ftz")


def test_non_fasttext_file_raises_model_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(ModelError, match="not a fastText model"):
        DomainModel.load(garbage)
    short = tmp_path / "short.ftz"
    short.write_bytes(b"\x00\x01")
    with pytest.raises(ModelError, match="not a fastText model"):
        DomainModel.load(short)


def test_truncated_model_raises_model_error(trained: TrainReport, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(Path(trained.model_path).read_bytes()[:200])
    with pytest.raises(ModelError, match="damaged"):
        DomainModel.load(truncated)


def test_header_check_accepts_magic(trained: TrainReport) -> None:
    header = Path(trained.model_path).read_bytes()[:4]
    assert int.from_bytes(header, "little", signed=True) == FASTTEXT_MAGIC


def test_model_with_wrong_labels_raises_model_error(tmp_path: Path) -> None:
    import fasttext

    train_file = tmp_path / "two-labels.txt"
    train_file.write_text("__label__spam buy now\n__label__ham see you later\n" * 20)
    model = fasttext.train_supervised(str(train_file), epoch=1, dim=4, thread=1, seed=1, verbose=0)
    path = tmp_path / "two-labels.bin"
    model.save_model(str(path))
    with pytest.raises(ModelError, match="expected exactly"):
        DomainModel.load(path)


def test_broken_sidecar_raises_model_error(trained: TrainReport, tmp_path: Path) -> None:
    model_copy = tmp_path / ("copy" + Path(trained.model_path).suffix)
    model_copy.write_bytes(Path(trained.model_path).read_bytes())
    model_copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="sidecar"):
        DomainModel.load(model_copy)


def test_training_and_prediction_use_the_same_normalisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int | None, tuple[float, ...]]] = []
    original = text_normalise.normalise_for_classifier

    def recording(
        text: str,
        head_chars: int | None = text_normalise.DEFAULT_HEAD_CHARS,
        symbol_bins: Sequence[float] = (),
    ) -> str:
        calls.append((head_chars, tuple(symbol_bins)))
        return original(text, head_chars, symbol_bins)

    monkeypatch.setattr(text_normalise, "normalise_for_classifier", recording)
    report = train_tiny(tmp_path)
    with_marker = sum(bins == SYMBOL_DENSITY_BINS for _, bins in calls)
    assert with_marker >= 400, "training lines must come from text_normalise.normalise_for_classifier"
    model = DomainModel.load(report.model_path)  # loading normalises the sidecar lexicon's words
    calls.clear()
    model.predict_proba(["a", "b", "c"])
    assert calls == [(2000, SYMBOL_DENSITY_BINS)] * 3


def test_prediction_sees_what_normalisation_returns(
    trained: TrainReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = DomainModel.load(trained.model_path)
    finance_line = text_normalise.normalise_for_classifier(make_text("finance", random.Random(3)))
    monkeypatch.setattr(
        text_normalise, "normalise_for_classifier", lambda text, head_chars, bins: finance_line
    )
    probs = model.predict_proba([make_text("code", random.Random(4))])
    assert DOMAINS[int(probs.argmax())] == "finance"


def test_evaluate_model_end_to_end(trained: TrainReport, tmp_path: Path) -> None:
    data = write_jsonl_gz(tmp_path / "eval.jsonl.gz", labeled_rows(50, seed=9))
    png = tmp_path / "reliability.png"
    evaluation = evaluate_model(trained.model_path, data, reliability_png=png)
    assert evaluation.n_docs == 50
    assert evaluation.macro_f1 > 0.9
    assert evaluation.mb_per_second is not None and evaluation.mb_per_second > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


# Hand-computed metric examples -------------------------------------------------------------

Y_TRUE = ["finance", "finance", "law", "code", "other"]
Y_PRED = ["finance", "law", "law", "code", "finance"]


def test_confusion_matrix_by_hand() -> None:
    expected = np.array(
        [
            [1, 1, 0, 0, 0],  # finance: one right, one called law
            [0, 1, 0, 0, 0],  # law
            [0, 0, 1, 0, 0],  # code
            [0, 0, 0, 0, 0],  # medical: none
            [1, 0, 0, 0, 0],  # other: called finance
        ]
    )
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED), expected)


def test_precision_recall_f1_by_hand() -> None:
    scores = scores_from_confusion(confusion_matrix(Y_TRUE, Y_PRED))
    # finance: TP 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 1/2
    assert (scores["finance"].precision, scores["finance"].recall, scores["finance"].f1) == (0.5, 0.5, 0.5)
    # law: TP 1, predicted 2, true 1 -> P 1/2, R 1, F1 2/3
    assert scores["law"].precision == 0.5 and scores["law"].recall == 1.0
    assert scores["law"].f1 == pytest.approx(2 / 3)
    assert scores["code"].f1 == 1.0
    assert scores["medical"].f1 == 0.0 and scores["medical"].support == 0
    assert scores["other"].f1 == 0.0 and scores["other"].support == 1


def probs_for(predicted: list[str], confidence: float = 0.8) -> np.ndarray:
    rest = (1 - confidence) / (len(DOMAINS) - 1)
    probs = np.full((len(predicted), len(DOMAINS)), rest)
    for row, label in enumerate(predicted):
        probs[row, DOMAINS.index(label)] = confidence
    return probs


def test_macro_f1_and_accuracy_by_hand() -> None:
    evaluation = evaluate_probabilities(probs_for(Y_PRED), Y_TRUE)
    assert evaluation.macro_f1 == pytest.approx((0.5 + 2 / 3 + 1 + 0 + 0) / 5)
    assert evaluation.accuracy == pytest.approx(3 / 5)
    assert evaluation.confusion[4][0] == 1


def test_expected_calibration_error_by_hand() -> None:
    probs = np.array(
        [
            [0.90, 0.025, 0.025, 0.025, 0.025],  # predicts finance, true finance: bin 13, right
            [0.92, 0.02, 0.02, 0.02, 0.02],  # predicts finance, true law: bin 13, wrong
            [0.10, 0.10, 0.50, 0.10, 0.20],  # predicts code, true code: bin 7, right
        ]
    )
    true_index = np.array([0, 1, 2])
    # bin 13: weight 2/3, accuracy 1/2, confidence 0.91; bin 7: weight 1/3, accuracy 1, confidence 0.5
    expected = 2 / 3 * abs(0.5 - 0.91) + 1 / 3 * abs(1.0 - 0.5)
    assert expected_calibration_error(probs, true_index) == pytest.approx(expected)
    assert expected_calibration_error(probs[[0, 2]], np.array([0, 2])) == pytest.approx(0.5 * 0.1 + 0.5 * 0.5)


def test_bins_are_right_closed() -> None:
    np.testing.assert_array_equal(bin_index(np.array([0.0, 0.5, 0.999, 1.0]), 15), [0, 7, 14, 14])
    np.testing.assert_array_equal(bin_index(np.array([0.25, 0.75]), 2), [0, 1])


def test_temperature_fit_softens_overconfident_probabilities() -> None:
    rng = np.random.default_rng(0)
    true_index = rng.integers(0, 5, size=400)
    predicted = np.where(rng.random(400) < 0.7, true_index, (true_index + 1) % 5)
    probs = probs_for([DOMAINS[i] for i in predicted], confidence=0.99)
    temperature = fit_temperature(probs, true_index)
    assert temperature > 1.5
    calibrated = apply_temperature(probs, temperature)
    # All rows share one shape, so the NLL optimum puts the top probability at the accuracy.
    assert calibrated.max(axis=1).mean() == pytest.approx((predicted == true_index).mean(), abs=1e-3)


def test_read_labeled_parquet_and_bad_labels(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = labeled_rows(10)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = read_labeled(path)
    assert data.labels == [row["label"] for row in rows]
    bad = write_jsonl_gz(tmp_path / "bad.jsonl.gz", [{"text": "x", "label": "sports"}])
    with pytest.raises(InputError, match="label"):
        read_labeled(bad)


def test_error_groups_count_misreads_by_label_pair_and_source() -> None:
    data = LabeledData(
        texts=["t"] * 6,
        labels=["other", "other", "other", "finance", "law", "code"],
        sources=["news", "news", "blog", "filings", "court", "repo"],
    )
    predicted = np.array([0, 0, 0, 4, 1, 2])  # finance, finance, finance, other, law, code
    assert error_groups(data, predicted) == [
        {"true": "other", "predicted": "finance", "source": "news", "documents": 2},
        {"true": "other", "predicted": "finance", "source": "blog", "documents": 1},
        {"true": "finance", "predicted": "other", "source": "filings", "documents": 1},
    ]


def test_read_labeled_keeps_the_source_field(tmp_path: Path) -> None:
    path = write_jsonl_gz(
        tmp_path / "d.jsonl.gz",
        [{"text": "a b", "label": "law", "source": "court"}, {"text": "c", "label": "code"}],
    )
    assert read_labeled(path).sources == ["court", "unknown"]


def test_a_model_trained_on_another_normalisation_is_refused(trained: TrainReport, tmp_path: Path) -> None:
    model_copy = tmp_path / "old.bin"
    model_copy.write_bytes(Path(trained.model_path).read_bytes())
    sidecar = json.loads(Path(trained.sidecar_path).read_text())
    assert sidecar["normalisation_version"] == text_normalise.NORMALISATION_VERSION
    DomainModel.load(model_copy)  # no sidecar: a foreign model, taken as it is
    del sidecar["normalisation_version"]  # what models trained before the version existed look like
    model_copy.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="normalisation v1"):
        DomainModel.load(model_copy)


def test_shipped_head_is_never_shorter_than_the_floor() -> None:
    """Heads under MIN_SHIPPED_HEAD_CHARS read unseen sources worse: scored, shown, never chosen."""
    views = [TextView(1000), TextView(2000), TextView(4000), TextView(6000), TextView(3000, 3000)]
    f1s = [0.950, 0.962, 0.960, 0.959, 0.990]  # the head+tail view cannot ship, however good

    def results(scores: list[float]) -> list[GridResult]:
        return [
            GridResult(TINY_PARAMS, view.describe(), f1, f1, 1.0, 1.0)
            for view, f1 in zip(views, scores, strict=True)
        ]

    assert MIN_SHIPPED_HEAD_CHARS == 4000
    assert choose_view(results(f1s), views) == TextView(4000)
    # a longer head wins only when the shorter one is outside the tolerance
    assert choose_view(results([0.95, 0.96, 0.955, 0.96, 0.99]), views) == TextView(6000)
    # a grid of short heads only still gets an answer
    assert choose_view(results(f1s)[:2], views[:2]) == TextView(2000)


def test_grid_keeps_the_base_epochs_and_needs_a_margin_to_leave_the_base() -> None:
    """Epoch variations are shown, never chosen; other knobs win only by more than BASE_MARGIN."""
    base = FastTextParams()

    def grid(*points: tuple[FastTextParams, float]) -> list[GridResult]:
        return [GridResult(params, "head 4000", f1, f1, 1.0, 1.0) for params, f1 in points]

    more_epochs = replace(base, epoch=base.epoch + 7)
    wider = replace(base, dim=base.dim * 2)
    # more epochs far ahead on dev: still the base
    assert best_result(grid((base, 0.950), (more_epochs, 0.990))).params == base
    # another knob ahead by more than the margin wins, even with an epoch variation further ahead
    assert best_result(grid((base, 0.950), (more_epochs, 0.990), (wider, 0.960))).params == wider
    # ahead by less than the margin: the base stays
    assert best_result(grid((base, 0.950), (wider, 0.9515))).params == base


def test_targets_table_shows_a_near_miss_as_missed(trained: TrainReport) -> None:
    # code F1 = 2*445 / (2*445 + 7 + 2) = 0.989989 rounds to 0.9900 at 4 decimals but misses 0.99
    truth = ["code"] * 447 + ["other"] * 107 + ["finance", "law", "medical"] * 40
    predicted = (
        ["code"] * 445 + ["other"] * 2 + ["code"] * 7 + ["other"] * 100 + ["finance", "law", "medical"] * 40
    )
    probs = np.eye(len(DOMAINS))[[DOMAINS.index(label) for label in predicted]]
    dev = evaluate_probabilities(probs, truth)
    dev.mb_per_second = 30.0
    table = targets_table(replace(trained, ece_after=0.01, model_bytes=9_600_000), dev)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "0.98999" in rows["code F1"] and rows["code F1"].endswith("**no** |")
    assert rows["ECE after calibration"].endswith("yes |") and rows["model file"].endswith("yes |")
    assert rows["MB/s per core (DomainModel, dev)"].endswith("yes |")
