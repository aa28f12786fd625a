"""`analyzer train` (supervised) and `analyzer evaluate` through the CLI, on generated data."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from generated import labeled_rows, write_jsonl_gz

from analyzer.classifier_model import DomainModel
from analyzer.cli import main
from analyzer.line_markers import NO_MARKERS
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.training.train import SHIPPED_PARAMS, SHIPPED_TRAINING_SET, shipped_view

SHIPPED_SIDECAR = Path(__file__).resolve().parents[1] / "classifiers" / "domain-v1.json"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, expected_code: int = 2) -> None:
    assert code == expected_code
    assert stderr.startswith("error:") and stderr.count("\n") == 1, stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("labeled")
    train = write_jsonl_gz(directory / "train.jsonl.gz", labeled_rows(300, seed=1))
    dev = write_jsonl_gz(directory / "dev.jsonl.gz", labeled_rows(100, seed=2))
    return train, dev


@pytest.fixture(scope="module")
def trained(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`analyzer train --grid shipped` into a fresh directory; returns that directory."""
    train, dev = data
    out = tmp_path_factory.mktemp("out") / "models"
    code, stdout, stderr = invoke(
        "train", "--train", str(train), "--dev", str(dev), "--out-dir", str(out),
        "--name", "tiny", "--grid", "shipped", "--workers", "1",
    )  # fmt: skip
    assert code == 0, stderr
    assert "macro-F1" in stdout and "wrote" in stdout
    return out


def test_train_writes_model_card_metrics_plot_and_dev_predictions(trained: Path) -> None:
    names = {path.name for path in trained.iterdir()}
    assert {"tiny.json", "tiny.card.md", "tiny.metrics.json", "tiny.reliability.png"} <= names
    assert "tiny.bin" in names or "tiny.ftz" in names
    assert "tiny.dev-predictions.parquet" in names
    sidecar = json.loads((trained / "tiny.json").read_text())
    assert sidecar["head_chars"] == 4000 and sidecar["fasttext_params"]["word_ngrams"] == 1
    assert sidecar["symbol_density_bins"] == list(SYMBOL_DENSITY_BINS)  # the marker is on by default
    card = (trained / "tiny.card.md").read_text()
    assert "analyzer train" in card and "## Dev results" in card
    metrics = json.loads((trained / "tiny.metrics.json").read_text())
    assert metrics["dev"]["macro_f1"] > 0.9
    assert pq.read_table(trained / "tiny.dev-predictions.parquet").num_rows == 100


def test_shipped_settings_are_those_the_committed_model_was_trained_with() -> None:
    """`--grid shipped` retrains domain-v1 only if these constants match what its sidecar records."""
    sidecar = json.loads(SHIPPED_SIDECAR.read_text())
    assert sidecar["fasttext_params"] == asdict(SHIPPED_PARAMS)
    view = shipped_view()
    assert sidecar["head_chars"] == view.head and view.tail == 0 and view.chunk == 0
    assert sidecar["training_set"] == asdict(SHIPPED_TRAINING_SET)
    assert view.markers.lexicon is not None and sidecar["lexicon"] == view.markers.lexicon.to_json()
    assert sidecar["symbol_density_bins"] == list(view.markers.symbol_bins)


def test_train_without_markers_writes_a_sidecar_that_prediction_reads_plainly(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    train_shipped_settings(data, tmp_path, "plain", "--no-lexicon", "--no-symbol-marker")
    sidecar = json.loads((tmp_path / "plain.json").read_text())
    assert "symbol_density_bins" not in sidecar and "lexicon" not in sidecar
    model = DomainModel.load(model_file(tmp_path))
    assert model.markers == NO_MARKERS
    assert model.normalise(["A; B"]) == ["a; b"]


def test_train_with_one_vs_all_loss_gives_independent_domain_probabilities(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    train_shipped_settings(data, tmp_path, "ova", "--loss", "ova")
    assert json.loads((tmp_path / "ova.json").read_text())["fasttext_params"]["loss"] == "ova"
    model = DomainModel.load(model_file(tmp_path))
    assert model.one_vs_all
    probabilities, scores = model.predict_with_scores(["revenue dividend court appeal"])
    assert probabilities.sum() == pytest.approx(1.0) and scores.sum() != pytest.approx(1.0)
    code, _, stderr = invoke(
        "train", "--seed-rules", "classifiers/seeds", "--unlabeled", str(data[0]), "--loss", "ova",
        "--out-dir", str(tmp_path / "weak"),
    )  # fmt: skip
    assert code == 2 and "--loss is for supervised training" in stderr


def train_shipped_settings(data: tuple[Path, Path], out: Path, name: str, *options: str) -> None:
    """`analyzer train --grid shipped` on the generated data into `out`, without leave-one-source-out."""
    train, dev = data
    code, _, stderr = invoke(
        "train", "--train", str(train), "--dev", str(dev), "--out-dir", str(out), "--name", name,
        "--grid", "shipped", "--workers", "1", "--no-source-holdout", *options,
    )  # fmt: skip
    assert code == 0, stderr


def model_file(directory: Path) -> Path:
    return next(p for p in directory.iterdir() if p.suffix in {".bin", ".ftz"})


def test_evaluate_prints_table_and_writes_card_section_and_plot(
    trained: Path, data: tuple[Path, Path], tmp_path: Path
) -> None:
    _, dev = data
    card, png = tmp_path / "card.md", tmp_path / "rel.png"
    card.write_text("# My card\n\nkept text\n")
    for _ in range(2):  # a second run replaces the section instead of adding another
        code, stdout, stderr = invoke(
            "evaluate", str(model_file(trained)), str(dev), "--card", str(card), "--reliability", str(png)
        )
        assert code == 0, stderr
    for word in ("precision", "recall", "F1", "macro-F1", "ECE", "confusion", "finance", "other"):
        assert word in stdout
    text = card.read_text()
    assert text.startswith("# My card\n\nkept text\n")
    assert text.count("## Evaluation on `dev.jsonl.gz`") == 1
    assert "| true \\ predicted |" in text and "ECE" in text
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--train", "/nonexistent/train.jsonl.gz"),
        ("train", "--name", "../escape"),
        ("train", "--unlabeled", "x.parquet"),
        ("train", "--seed-rules", "classifiers/seeds"),
        ("evaluate", "/nonexistent/model.bin", "/nonexistent/dev.jsonl.gz"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    code, _, stderr = invoke(*args, *(("--out-dir", str(tmp_path)) if args[0] == "train" else ()))
    assert_one_line_error(code, stderr)


def test_evaluate_rejects_missing_data_and_bad_labels(trained: Path, tmp_path: Path) -> None:
    model = str(model_file(trained))
    assert_one_line_error(*invoke("evaluate", model, str(tmp_path / "missing.jsonl.gz"))[::2])
    bad = write_jsonl_gz(tmp_path / "bad.jsonl.gz", [{"text": "x", "label": "sports"}])
    assert_one_line_error(*invoke("evaluate", model, str(bad))[::2])
    code, _, stderr = invoke("evaluate", model, str(bad), "--reliability", str(tmp_path / "no/dir/x.png"))
    assert_one_line_error(code, stderr)
