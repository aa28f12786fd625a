"""The tagger contract: a batch of documents in, named columns (one value per document) out."""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa


class Tagger(Protocol):
    """Taggers are built once per worker process and applied to every batch of every shard."""

    name: str
    version: str
    """Changes whenever the tagger's output for the same text would change (for restarts)."""

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        """Return new columns, each with `documents.num_rows` values, in document order."""
        ...
