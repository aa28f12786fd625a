"""Domain tagger: fastText probabilities per label and the top label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel


class DomainTagger:
    """Adds `p_finance` ... `p_other` (rows sum to 1) and `domain` (the most probable label)."""

    name = "domain"

    def __init__(self, model_path: Path) -> None:
        self.model = DomainModel.load(model_path)
        self.version = f"{self.model.name}@{self.model.version}"

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        probabilities = self.model.predict_proba(documents.column("text").to_pylist())
        columns: dict[str, pa.Array] = {
            f"p_{label}": pa.array(probabilities[:, index], type=pa.float64())
            for index, label in enumerate(DOMAINS)
        }
        top = np.asarray(DOMAINS, dtype=object)[probabilities.argmax(axis=1)] if len(probabilities) else []
        columns["domain"] = pa.array(list(top), type=pa.string())
        return columns
