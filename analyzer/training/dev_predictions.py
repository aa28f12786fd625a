"""The model's predictions on its dev set, shipped beside it for correcting corpus shares.

Only labels, probabilities and sizes are stored (no text), so the file may be committed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel
from analyzer.estimates.dev_predictions import dev_predictions_path_for
from analyzer.training.data import read_labeled


def write_dev_predictions(model_path: Path, dev_path: Path, out_path: Path | None = None) -> Path:
    """Predict every dev document and write label, p_* and n_bytes to a parquet; return its path."""
    model = DomainModel.load(model_path)
    data = read_labeled(dev_path)
    started = time.perf_counter()
    probabilities = model.predict_proba(list(data.texts))
    columns: dict[str, object] = {"label": list(data.labels)}
    for index, label in enumerate(DOMAINS):
        columns[f"p_{label}"] = probabilities[:, index]
    columns["n_bytes"] = [len(text.encode("utf-8")) for text in data.texts]
    table = pa.table(columns)
    table = table.replace_schema_metadata(
        {
            "model_version": model.version,
            "dev_file": dev_path.name,
            "seconds": f"{time.perf_counter() - started:.2f}",
        }
    )
    target = out_path or dev_predictions_path_for(Path(model_path))
    pq.write_table(table, target)
    return target
