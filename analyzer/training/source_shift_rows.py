"""Write a model's source-shift rows (`<model>.source-shift.json`, analyzer/estimates/source_shift.py)
from its recipe's leave-one-source-out predictions.

The leave-one-source-out models (source_holdout.py) are calibrated with the shipped model's
temperature and their posteriors moved from each model's own training mix to the shipped model's
(Bayes: p_k <- p_k prior_k / own_prior_k, renormalised), so the rows and the unseen unsure share
read as the shipped model would read a source it never saw. The familiar unsure share is the shipped
model's on its dev set (`<model>.dev-predictions.parquet`).

`python -m analyzer.training.source_shift_rows --model classifiers/domain-v1.bin` rebuilds the rows
of a trained model (one training per source, about 15 minutes on 2 cores); the training recipe
writes them itself when it runs leave-one-source-out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from analyzer import DOMAINS
from analyzer.classifier_model import apply_temperature, read_sidecar, sidecar_path_for
from analyzer.config import DEFAULT_LABELED_DIR, REPO_ROOT
from analyzer.errors import AnalyzerError, ModelError
from analyzer.estimates.dev_predictions import (
    dev_predictions_path_for,
    load_dev_predictions,
    training_prior_for,
)
from analyzer.estimates.source_shift import (
    SourceShift,
    source_shift_from_predictions,
    source_shift_path_for,
    unsure_share_and_error,
    write_source_shift,
)
from analyzer.training.data import LabeledData, read_labeled
from analyzer.training.source_holdout import SourceHoldout


def shifted_posteriors(
    probabilities: np.ndarray, own_priors: np.ndarray, temperature: float, model_prior: np.ndarray
) -> np.ndarray:
    """Calibrated with `temperature`, then moved from each row's own training prior to `model_prior`."""
    calibrated = apply_temperature(probabilities, temperature)
    moved = calibrated * model_prior[None] / own_priors
    normalised: np.ndarray = moved / moved.sum(axis=1, keepdims=True)
    return normalised


def source_shift_of(holdout: SourceHoldout, data: LabeledData, model_path: Path) -> SourceShift:
    """The rows of the model at `model_path` from its recipe's leave-one-source-out `holdout` of
    `data` (the documents in the order the holdout predicted them)."""
    dev_path = dev_predictions_path_for(model_path)
    if not dev_path.is_file():
        raise ModelError(f"{dev_path}: missing; source-shift rows need the model's dev predictions")
    dev = load_dev_predictions(dev_path)
    model_prior = training_prior_for(dev_path, dev)
    if model_prior is None:  # unreachable with dev predictions; keeps the type narrow
        raise ModelError(f"{model_path}: no training prior to move the held-out posteriors to")
    temperature = read_sidecar(sidecar_path_for(model_path), model_path).temperature
    sources = np.array(data.sources)
    held_out = ~np.isnan(holdout.probabilities).any(axis=1)
    own_priors = np.ones((len(sources), len(DOMAINS)))
    for source, prior in holdout.training_priors.items():
        own_priors[sources == source] = prior
    posteriors = shifted_posteriors(
        holdout.probabilities[held_out], own_priors[held_out], temperature, model_prior
    )
    labels = np.array([DOMAINS.index(label) for label in data.labels])[held_out]
    n_bytes = np.array([len(text.encode("utf-8")) for text in data.texts], dtype=np.float64)[held_out]
    familiar, familiar_error = unsure_share_and_error(dev.probabilities, dev.weights)
    return source_shift_from_predictions(
        labels, sources[held_out], n_bytes, posteriors, familiar, familiar_error
    )


def write_model_source_shift(holdout: SourceHoldout, data: LabeledData, model_path: Path) -> Path:
    """`source_shift_of` written beside the model; returns its path."""
    path = source_shift_path_for(model_path)
    write_source_shift(source_shift_of(holdout, data, model_path), path)
    return path


def write_after_training(
    holdout: SourceHoldout | None, train_path: Path, dev_path: Path, model_path: Path
) -> Path | None:
    """The training recipe's last step: the rows of the model it wrote, from the leave-one-source-out
    it ran on train and dev pooled (None when it ran none)."""
    from analyzer.training.train import pooled_data

    if holdout is None:
        return None
    data = pooled_data(read_labeled(train_path), read_labeled(dev_path))
    return write_model_source_shift(holdout, data, model_path)


def main(argv: list[str] | None = None) -> int:
    """Rebuild `<model>.source-shift.json` of a trained model from its recipe; return the exit code."""
    from analyzer.training.train import pooled_data, recipe_holdout, recipe_of

    parser = argparse.ArgumentParser(
        prog="python -m analyzer.training.source_shift_rows", description=__doc__
    )
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "classifiers" / "domain-v1.bin")
    parser.add_argument("--train", type=Path, default=DEFAULT_LABELED_DIR / "train.jsonl.gz")
    parser.add_argument("--dev", type=Path, default=DEFAULT_LABELED_DIR / "dev.jsonl.gz")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        recipe = recipe_of(args.model)
        data = pooled_data(read_labeled(args.train), read_labeled(args.dev))
        holdout = recipe_holdout(
            data, recipe.params, recipe.view, recipe.training_set, seed=recipe.seed, workers=args.workers
        )
        path = write_model_source_shift(holdout, data, args.model)
    except AnalyzerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
