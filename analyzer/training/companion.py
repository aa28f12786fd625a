"""A one-vs-all companion for a softmax domain model: independent per-domain probabilities for
multi-domain documents.

The shipped model is softmax (one-vs-all scored lower on dev), so its probabilities sum to 1 and a
page that is half finance, half code shows as two probabilities near one half. The companion is the
same recipe (settings, training lines, markers, head; read from the model's sidecar) trained with
one-vs-all loss. It is written beside the model as `<stem>.ova.bin` with its own sidecar, and
`DomainModel.predict_with_scores` reads its sigmoids for `--multi-label-threshold`; the model's
own probabilities, and so every share, are untouched. `<stem>.ova.metrics.json` records how it
reads dev: argmax macro-F1, per-label F1 of "sigmoid >= threshold", and how many dev documents get
two or more labels.

Usage: python -m analyzer.training.companion [--model classifiers/domain-v1.bin] [--train ...] [--dev ...]
(make classifier-ova).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from analyzer import DOMAINS
from analyzer.classifier_model import (
    Sidecar,
    companion_path_for,
    fasttext_probabilities,
    read_sidecar,
    sidecar_path_for,
)
from analyzer.config import DEFAULT_LABELED_DIR, REPO_ROOT
from analyzer.errors import AnalyzerError
from analyzer.training.data import read_labeled, write_training_file
from analyzer.training.evaluate import evaluate_probabilities
from analyzer.training.train import recipe_of, train_fasttext, view_training_set, write_sidecar

MULTI_LABEL_THRESHOLDS = (0.3, 0.5)
"""Thresholds at which the metrics report the companion's multi-label reading of dev."""


def train_companion(model_path: Path, train_path: Path, dev_path: Path) -> dict[str, Any]:
    """Train and write `<stem>.ova.bin` (+ sidecar) for the model at `model_path`; return its metrics."""
    recipe = recipe_of(model_path)
    params, view = replace(recipe.params, loss="ova"), recipe.view
    train, dev = read_labeled(train_path), read_labeled(dev_path)
    with tempfile.TemporaryDirectory(prefix="analyzer-companion-") as tmp:
        train_file = Path(tmp) / "train.txt"
        write_training_file(*view_training_set(train, None, view, recipe.training_set), train_file)
        ft_model = train_fasttext(train_file, params, recipe.seed)
    path = companion_path_for(model_path)
    ft_model.save_model(str(path))
    # sigmoids are read as they come (no temperature): a threshold on each is the decision
    name = read_sidecar(sidecar_path_for(model_path), model_path).name
    sidecar = Sidecar(f"{name}.ova", DOMAINS, 1.0, view.head, {})
    write_sidecar(path, sidecar, params, recipe.seed, recipe.training_set, view.markers)
    sigmoids = fasttext_probabilities(
        ft_model, [view.normalise(text) for text in dev.texts], renormalise=False
    )
    metrics = companion_metrics(sigmoids, list(dev.labels))
    metrics.update({"model": path.name, "companion_of": model_path.name, "fasttext_params": params.__dict__})
    path.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    path.with_suffix(".card.md").write_text(
        companion_card(metrics, model_path, train_path, dev_path), encoding="utf-8"
    )
    return metrics


def companion_card(metrics: dict[str, Any], model_path: Path, train_path: Path, dev_path: Path) -> str:
    """A short model card: what the companion is, how it was made, how it reads dev."""
    rows = []
    for threshold in MULTI_LABEL_THRESHOLDS:
        cell = metrics[f"threshold_{threshold:g}"]
        f1 = " | ".join(f"{cell['label_f1'][domain]:.3f}" for domain in DOMAINS)
        rows.append(f"| {threshold:g} | {f1} | {cell['two_or_more_labels']:.1%} | {cell['no_label']:.1%} |")
    header = " | ".join(DOMAINS)
    return f"""# Model card: {metrics["model"]}

One-vs-all companion of `{model_path.name}`: the same recipe (fastText settings, training lines,
lexicon and symbol-density markers, head length; read from `{model_path.name}`'s sidecar) trained
with one-vs-all loss, so each domain gets an independent probability (a sigmoid). A run reads it
only for `--multi-label-threshold T`: `domains` lists every domain whose sigmoid is >= T, so a page
that is half finance and half code can get both. `p_*`, `domain` and every share still come from
`{model_path.name}`. Its sigmoids are not calibrated (no temperature): a threshold on each is the
decision.

Reproduce: `make classifier-ova` (`python -m analyzer.training.companion`), trained on
`{train_path.name}`, scored on `{dev_path.name}` ({metrics["dev_documents"]} documents).

Dev, the top sigmoid as the label: macro-F1 {metrics["argmax_macro_f1"]:.4f}.

Dev, `sigmoid >= T` per domain (F1 of that yes/no decision against the one true label), and how
many documents get two or more labels or none (a run then keeps the top one):

| T | {header} | 2+ labels | none |
|---|{"---|" * len(DOMAINS)}---|---|
{chr(10).join(rows)}

The dev labels are single, so a second label counts as a false positive here even when the page
really is about two domains.
"""


def companion_metrics(sigmoids: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Argmax macro-F1, and per threshold the per-label F1 of `sigmoid >= t` and the multi-label rate."""
    truth = np.array([DOMAINS.index(label) for label in labels])
    out: dict[str, Any] = {
        "dev_documents": len(labels),
        "argmax_macro_f1": evaluate_probabilities(sigmoids, labels).macro_f1,
    }
    for threshold in MULTI_LABEL_THRESHOLDS:
        chosen = sigmoids >= threshold
        per_label = {}
        for k, domain in enumerate(DOMAINS):
            positive, actual = chosen[:, k], truth == k
            hits = float((positive & actual).sum())
            precision = hits / positive.sum() if positive.any() else 0.0
            recall = hits / actual.sum() if actual.any() else 0.0
            per_label[domain] = 2 * precision * recall / (precision + recall) if hits else 0.0
        out[f"threshold_{threshold:g}"] = {
            "label_f1": per_label,
            "two_or_more_labels": float((chosen.sum(axis=1) >= 2).mean()),
            "no_label": float((chosen.sum(axis=1) == 0).mean()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.training.companion", description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "classifiers" / "domain-v1.bin")
    parser.add_argument("--train", type=Path, default=DEFAULT_LABELED_DIR / "train.jsonl.gz")
    parser.add_argument("--dev", type=Path, default=DEFAULT_LABELED_DIR / "dev.jsonl.gz")
    args = parser.parse_args(argv)
    try:
        metrics = train_companion(args.model, args.train, args.dev)
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
