"""Which documents of a shard get tagged when a run samples (`--sample-rate`, `--max-docs-per-shard`).

Documents left out are recorded as skipped with reason `not_sampled`, so documents read =
tagged + skipped still holds, and the store derives each shard's sample weight from the counts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from analyzer.estimates.sampling import sample_mask
from analyzer.readers.base import SkippedRow, document_ids

NOT_SAMPLED = "not_sampled"


class ShardSampler:
    """Splits each batch into documents to tag and documents sampled out; one instance per shard."""

    def __init__(self, shard_name: str, rate: float | None, max_docs: int | None, seed: int = 0) -> None:
        self.shard_name = shard_name
        self.rate = rate
        self.max_docs = max_docs
        self.seed = seed
        self.kept = 0

    @property
    def active(self) -> bool:
        return (self.rate is not None and self.rate < 1.0) or self.max_docs is not None

    def split(self, documents: pa.RecordBatch) -> tuple[pa.RecordBatch, list[SkippedRow]]:
        """(documents to tag, rows sampled out); deterministic in the document ids."""
        if not self.active or documents.num_rows == 0:
            return documents, []
        keep = np.ones(documents.num_rows, dtype=bool)
        if self.rate is not None and self.rate < 1.0:
            keep &= sample_mask(document_ids(self.shard_name, documents), self.rate, self.seed)
        if self.max_docs is not None:
            room = max(self.max_docs - self.kept, 0)
            keep &= np.cumsum(keep) <= room
        self.kept += int(keep.sum())
        rows = documents.column("row_index").to_numpy()
        skipped = [SkippedRow(int(row), NOT_SAMPLED) for row in rows[~keep]]
        return documents.filter(pa.array(keep)), skipped
