"""Domain tagger: fastText probabilities per label, the top label, and optionally every likely label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel
from analyzer.errors import InputError


class DomainTagger:
    """Adds `p_finance` ... `p_other` (rows sum to 1), `domain` (the most probable label) and
    `domains` (every label scoring >= `multi_label_threshold`, highest first; null when no threshold
    is set): a one-vs-all model's own sigmoids, independent per label, else the probabilities.

    `label_map` folds a model with labels of its own into the domains and `engine` picks how
    probabilities are computed (see `DomainModel.load`).
    """

    name = "domain"

    def __init__(
        self,
        model_path: Path,
        label_map: Path | None = None,
        multi_label_threshold: float | None = None,
        engine: str = "auto",
    ) -> None:
        if multi_label_threshold is not None and not 0.0 < multi_label_threshold <= 1.0:
            raise InputError("--multi-label-threshold must be in (0, 1]")
        self.model = DomainModel.load(model_path, label_map, engine)
        self.multi_label_threshold = multi_label_threshold
        # the threshold is part of the tags (the `domains` column), so it is part of the version;
        # "off" also tells these tags from those written before the column existed
        # and so is what it reads: a one-vs-all model's sigmoids (since they exist) or probabilities
        if self.model.one_vs_all:
            basis = "sigmoids"
        elif multi_label_threshold is not None and (companion := self.model.one_vs_all_companion()):
            basis = f"sigmoids-of-{companion.version}"
        else:
            basis = "probabilities"
        multi = "off" if multi_label_threshold is None else f">={multi_label_threshold:g}:{basis}"
        self.version = f"{self.model.name}@{self.model.version}/multi{multi}"

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = documents.column("text").to_pylist()
        if self.multi_label_threshold is None:
            probabilities = scores = self.model.predict_proba(texts)
        else:
            probabilities, scores = self.model.predict_with_scores(texts)
        columns: dict[str, pa.Array] = {
            f"p_{label}": pa.array(probabilities[:, index], type=pa.float64())
            for index, label in enumerate(DOMAINS)
        }
        columns["domain"] = pa.array(top_domains(probabilities), type=pa.string())
        columns["domains"] = pa.array(self.multi_labels(scores), type=pa.list_(pa.string()))
        return columns

    def top_domains(self, documents: pa.RecordBatch) -> list[str]:
        """Only the `domain` column, for documents that are classified but not tagged (the census)."""
        return top_domains(self.model.predict_proba(documents.column("text").to_pylist()))

    def multi_labels(self, scores: np.ndarray) -> list[list[str] | None]:
        """Every domain scoring at or above the threshold per row, highest first (None without one).

        Scores are `DomainModel.predict_with_scores`'s: a one-vs-all model's independent sigmoids,
        else the probabilities. A row where no domain reaches the threshold still gets its top
        domain, so the list is never empty.
        """
        threshold = self.multi_label_threshold
        if threshold is None:
            return [None] * len(scores)
        rows: list[list[str] | None] = []
        for row in scores:
            order = np.argsort(-row, kind="stable")
            chosen = [DOMAINS[i] for i in order if row[i] >= threshold]
            rows.append(chosen or [DOMAINS[int(order[0])]])
        return rows


def top_domains(probabilities: np.ndarray) -> list[str]:
    """The most probable domain of each row (the first in DOMAINS order on a tie)."""
    if not len(probabilities):
        return []
    return [DOMAINS[int(index)] for index in probabilities.argmax(axis=1)]
