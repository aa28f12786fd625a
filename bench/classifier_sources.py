"""Which training-set recipe carries over to unseen sources? Leave-one-source-out next to dev.

For each variant of VARIANTS (a training-set recipe of analyzer/training/examples.py: source
balancing exponent, extra windows of long documents; with or without the shipped domain lexicon's
marker tokens, analyzer/lexicon.py, and the symbol-density marker, analyzer/symbol_density.py;
trained for SHIPPED_EPOCHS or the number its name gives), with the shipped fastText settings otherwise
and the shipped head:
- `dev`: trained on train, scored on dev (what the grid search sees);
- `holdout`: train and dev pooled, each source of at least 20 documents predicted by a model
  trained on all other sources (analyzer/training/source_holdout.py): pooled macro-F1, per-label
  F1 and per-source accuracy.
- `holdout_share_error_corpus_mix` (when ../shared/data/corpus/truth.parquet is there): the
  classify-and-count share error, in points per domain, of a corpus with the shared corpus's label
  mix misread at the pooled leave-one-source-out rates.
Among the variants at the shipped epochs, the shipped one (SHIPPED_TRAINING_SET with
shipped_markers(): lexicon and density bands) should have the best holdout macro-F1 (exit status 1
otherwise); its dev cost is reported beside it. The epoch variants read unseen sources better and
the shares worse: the trade-off analyzer.training.train.SHIPPED_EPOCHS settles.

Usage: .venv/bin/python bench/classifier_sources.py [--data DIR] [--out JSON] [--workers N]
[--only NAME ...] (make bench-classifier). About 12 minutes per variant on 2 cores (one training per
source); `--only` reruns the named variants and keeps the others' figures from the existing JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from analyzer import DOMAINS
from analyzer.classifier_model import fasttext_probabilities
from analyzer.line_markers import NO_MARKERS, LineMarkers
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.training.data import read_labeled, write_training_file
from analyzer.training.evaluate import evaluate_probabilities
from analyzer.training.examples import AS_READ, TrainingSetRecipe
from analyzer.training.train import (
    SHIPPED_EPOCHS,
    SHIPPED_PARAMS,
    SHIPPED_TRAINING_SET,
    FastTextParams,
    TextView,
    pooled_data,
    recipe_holdout,
    shipped_markers,
    shipped_view,
    train_fasttext,
    view_training_set,
)

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    recipe: TrainingSetRecipe
    markers: LineMarkers = NO_MARKERS
    epochs: int = SHIPPED_EPOCHS
    """Training epochs; the other fastText settings are the shipped ones."""

    def params(self) -> FastTextParams:
        return replace(SHIPPED_PARAMS, epoch=self.epochs)


BALANCED_WINDOWS = TrainingSetRecipe(source_balance=0.5, extra_windows=2)
SHIPPED_MARKERS = shipped_markers()
VARIANTS: dict[str, Variant] = {
    "as read": Variant(AS_READ),
    "balanced": Variant(TrainingSetRecipe(source_balance=0.5, extra_windows=0)),
    "extra windows": Variant(TrainingSetRecipe(source_balance=1.0, extra_windows=2)),
    "balanced + extra windows": Variant(BALANCED_WINDOWS),
    "half-balanced + extra windows": Variant(TrainingSetRecipe(source_balance=0.75, extra_windows=2)),
    "balanced + extra windows + lexicon": Variant(BALANCED_WINDOWS, LineMarkers(SHIPPED_MARKERS.lexicon)),
    "balanced + extra windows + lexicon + symbol density": Variant(
        BALANCED_WINDOWS, LineMarkers(SHIPPED_MARKERS.lexicon, SYMBOL_DENSITY_BINS)
    ),
    **{
        f"balanced + extra windows + lexicon + symbol density, {epochs} epochs": Variant(
            BALANCED_WINDOWS, LineMarkers(SHIPPED_MARKERS.lexicon, SYMBOL_DENSITY_BINS), epochs
        )
        for epochs in (10, 8, 5)
    },
}
"""The variants without an epoch count in their name train SHIPPED_EPOCHS."""


def corpus_label_mix(truth_path: Path) -> np.ndarray | None:
    """Share of the shared corpus's documents per label (DOMAINS order), or None without its truth."""
    if not truth_path.is_file():
        return None
    labels = pq.read_table(truth_path, columns=["label"]).column("label").to_pylist()
    counts = np.array([labels.count(domain) for domain in DOMAINS], dtype=np.float64)
    mix: np.ndarray = counts / counts.sum()
    return mix


def share_errors_under_shift(confusion: list[list[int]], mix: np.ndarray) -> dict[str, float]:
    """Classify-and-count share error (points) per domain on a corpus of label mix `mix` whose
    documents are misread at the leave-one-source-out rates: what the shares would be off by on
    sources the model never saw. F1 does not say this, since misreads of a large class weigh most."""
    counts = np.asarray(confusion, dtype=np.float64)
    rates = counts / counts.sum(axis=1, keepdims=True)
    errors = 100 * (mix @ rates - mix)
    return {domain: float(error) for domain, error in zip(DOMAINS, errors, strict=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "labeled")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "classifier_sources.json")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="variants to (re)run")
    args = parser.parse_args()
    started = time.perf_counter()
    train, dev = read_labeled(args.data / "train.jsonl.gz"), read_labeled(args.data / "dev.jsonl.gz")
    pooled = pooled_data(train, dev)
    mix = corpus_label_mix(args.data.parent / "corpus" / "truth.parquet")
    previous = json.loads(args.out.read_text()).get("recipes", {}) if args.only and args.out.is_file() else {}
    results: dict[str, Any] = {}
    for name, variant in VARIANTS.items():
        if args.only and name not in args.only:
            if name in previous:
                results[name] = previous[name]
            continue
        recipe, lexicon, params = variant.recipe, variant.markers.lexicon, variant.params()
        view: TextView = replace(shipped_view(), markers=variant.markers)
        dev_lines = [view.normalise(text) for text in dev.texts]
        with tempfile.TemporaryDirectory() as tmp:
            train_file = Path(tmp) / "train.txt"
            write_training_file(*view_training_set(train, None, view, recipe), train_file)
            dev_eval = evaluate_probabilities(
                fasttext_probabilities(train_fasttext(train_file, params, 0), dev_lines, DOMAINS), dev.labels
            )
        holdout = recipe_holdout(pooled, params, view, recipe, workers=args.workers, log=lambda message: None)
        results[name] = {
            "params": asdict(params),
            "recipe": asdict(recipe),
            "lexicon": None if lexicon is None else lexicon.name,
            "symbol_density_bins": list(variant.markers.symbol_bins),
            "dev_macro_f1": dev_eval.macro_f1,
            "dev_f1": {label: scores.f1 for label, scores in dev_eval.per_label.items()},
            "holdout_macro_f1": holdout.pooled.macro_f1,
            "holdout_accuracy": holdout.pooled.accuracy,
            "holdout_f1": {label: scores.f1 for label, scores in holdout.pooled.per_label.items()},
            "holdout_source_accuracy": {score.source: score.accuracy for score in holdout.sources},
        }
        if mix is not None:
            results[name]["holdout_share_error_corpus_mix"] = share_errors_under_shift(
                holdout.pooled.confusion, mix
            )
        print(
            f"{name:<52} dev macro-F1 {dev_eval.macro_f1:.4f}  leave-one-source-out macro-F1 "
            f"{holdout.pooled.macro_f1:.4f} (accuracy {holdout.pooled.accuracy:.4f})",
            flush=True,
        )
    # recipes are compared at the shipped epochs; the epoch variants show the other trade-off
    same_epochs = [name for name in results if VARIANTS[name].epochs == SHIPPED_EPOCHS]
    best = max(same_epochs, key=lambda name: results[name]["holdout_macro_f1"])
    shipped = next(
        name
        for name, variant in VARIANTS.items()
        if variant == Variant(SHIPPED_TRAINING_SET, SHIPPED_MARKERS)
    )
    payload = {
        "params": asdict(SHIPPED_PARAMS),
        "head_chars": shipped_view().head,
        "recipes": results,
        "best_holdout": best,
        "shipped": shipped,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"best leave-one-source-out: {best}; shipped: {shipped}; wrote {args.out}")
    return 0 if best == shipped else 1


if __name__ == "__main__":
    sys.exit(main())
