"""A model's dev-set predictions, read back for the estimators: where they live beside the model
(`<model stem>.dev-predictions.parquet`), loading them as class indices, and the training prior
that EMQ re-estimates from. analyzer/training/dev_predictions.py writes them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer import DOMAINS
from analyzer.errors import ModelError
from analyzer.estimates.quantification import (
    confusion_counts,
    probabilistic_confusion_totals,
    rates_from_counts,
)

DEV_PREDICTION_COLUMNS = ("label", *(f"p_{label}" for label in DOMAINS), "n_bytes")


@dataclass(frozen=True)
class DevPredictions:
    """A model's predictions on its labelled dev set, as class indices in DOMAINS order."""

    true_index: np.ndarray
    predicted_index: np.ndarray
    weights: np.ndarray
    probabilities: np.ndarray

    def confusion(self) -> np.ndarray:
        """P(predicted j | true i), weighted by bytes so it applies to token-like totals."""
        counts = confusion_counts(self.true_index, self.predicted_index, self.weights, len(DOMAINS))
        return rates_from_counts(counts)

    def probabilistic_confusion(self) -> np.ndarray:
        """Row i: the mean probability vector of dev documents of true class i (byte-weighted)."""
        totals = probabilistic_confusion_totals(self.true_index, self.probabilities, self.weights)
        return rates_from_counts(totals)


def dev_predictions_path_for(model_path: Path) -> Path:
    """Where a model's dev predictions live: `<model stem>.dev-predictions.parquet`."""
    return model_path.with_name(f"{model_path.stem}.dev-predictions.parquet")


def load_dev_predictions(path: Path) -> DevPredictions:
    """Read the dev predictions parquet; a broken file is a ModelError naming it.

    Read once per process for a given file version (path, size, modification time): a run's build
    asks for them from several places. Callers must not modify the arrays."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(
            f"{path}: dev predictions unreadable ({exc}); rebuild them with `make classifier`"
        ) from exc
    return _read_dev_predictions(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_dev_predictions(path: Path, size: int, modified_ns: int) -> DevPredictions:
    try:
        table = pq.read_table(path, columns=list(DEV_PREDICTION_COLUMNS))
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise ModelError(
            f"{path}: dev predictions unreadable ({exc}); rebuild them with `make classifier`"
        ) from exc
    index_of = {label: index for index, label in enumerate(DOMAINS)}
    labels = table.column("label").to_pylist()
    unknown = sorted({label for label in labels if label not in index_of})
    if unknown:
        raise ModelError(f"{path}: labels {unknown} are not domains {list(DOMAINS)}; rebuild them")
    probabilities = np.column_stack([table.column(f"p_{label}").to_numpy() for label in DOMAINS])
    return DevPredictions(
        true_index=np.array([index_of[label] for label in labels], dtype=np.int64),
        predicted_index=probabilities.argmax(axis=1).astype(np.int64),
        weights=table.column("n_bytes").to_numpy().astype(np.float64),
        probabilities=probabilities,
    )


def training_prior_for(dev_predictions: Path | None, dev: DevPredictions | None) -> np.ndarray | None:
    """The class prior the model's posteriors are calibrated for (EMQ needs it).

    From `<model>.metrics.json` (`train.train_counts`, written by `analyzer train`) when it sits beside
    the dev predictions; otherwise the dev set's mean posterior, the prior the model expresses on
    labelled text. None without either.
    """
    if dev_predictions is not None:
        stem = dev_predictions.name.removesuffix(".dev-predictions.parquet")
        metrics = dev_predictions.with_name(f"{stem}.metrics.json")
        try:
            counts = json.loads(metrics.read_text())["train"]["train_counts"]
            prior = np.array([float(counts[label]) for label in DOMAINS])
            if np.all(prior > 0):
                normalised: np.ndarray = prior / prior.sum()
                return normalised
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if dev is None:
        return None
    mean = np.asarray(dev.probabilities.mean(axis=0), dtype=np.float64)
    dev_prior: np.ndarray = mean / mean.sum()
    return dev_prior
