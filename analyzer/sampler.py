"""Which documents of a shard get tagged when a run samples (`--sample-rate`, `--max-docs-per-shard`).

Documents left out are recorded as skipped with reason `not_sampled`, so documents read =
tagged + skipped still holds, and the store derives each shard's sample weight from the counts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from analyzer.estimates.sampling import sample_mask
from analyzer.readers.base import SkippedRow

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
            keep &= sample_mask(self._sample_keys(documents), self.rate, self.seed)
        if self.max_docs is not None:
            room = max(self.max_docs - self.kept, 0)
            keep &= np.cumsum(keep) <= room
        self.kept += int(keep.sum())
        rows = documents.column("row_index").to_numpy()
        skipped = [SkippedRow(int(row), NOT_SAMPLED) for row in rows[~keep]]
        return documents.filter(pa.array(keep)), skipped

    def _sample_keys(self, documents: pa.RecordBatch) -> list[str]:
        """The document id where the shard has one, else `shard:row` (as in `documents.doc_id`)."""
        ids = documents.column("doc_id").to_pylist()
        rows = documents.column("row_index").to_pylist()
        return [
            doc_id if doc_id else f"{self.shard_name}:{row}" for doc_id, row in zip(ids, rows, strict=True)
        ]
