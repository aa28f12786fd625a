"""What every reader yields: batches of documents in one arrow schema, plus the rows it skipped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

DOCUMENT_SCHEMA = pa.schema(
    [
        ("row_index", pa.int64()),
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("dump", pa.string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("source", pa.string()),
        ("shard_token_count", pa.int64()),
        ("quality_score", pa.float64()),
    ]
)
"""Columns a reader fills; metadata a format lacks stays null."""

METADATA_FIELDS = ("doc_id", "dump", "url", "date", "source", "shard_token_count", "quality_score")


@dataclass(frozen=True)
class SkippedRow:
    """A row that was read but could not become a document, and why."""

    row_index: int
    reason: str
    content_hash: int | None = None
    """For a document a sample left out (`not_sampled`) of a run with the census and dedup: its
    exact-duplicate hash (taggers/minhash.py `content_hash`), so that a tagged copy read after it
    is known as a duplicate of the whole input, not only of the sample."""


@dataclass
class ReadBatch:
    """Documents read since the last batch, the rows skipped among them, and shard progress."""

    documents: pa.RecordBatch
    skipped: list[SkippedRow] = field(default_factory=list)
    fraction_done: float = 0.0


class ShardReader(Protocol):
    """A reader opens one shard and yields its documents in batches, in row order."""

    def __call__(self) -> Iterator[ReadBatch]: ...


MAX_BATCH_TEXT_BYTES = 32 * 1024 * 1024
"""A batch is flushed once its texts reach this many UTF-8 bytes, whatever `batch_size` says, so
512 huge documents never sit in memory together (the readers' memory bound builds on this)."""


def document_ids(shard_name: str, documents: pa.RecordBatch) -> list[str]:
    """The shard's own id where it has one, else `shard:row`, so every document is addressable."""
    ids = documents.column("doc_id").to_pylist()
    rows = documents.column("row_index").to_pylist()
    return [doc_id if doc_id else f"{shard_name}:{row}" for doc_id, row in zip(ids, rows, strict=True)]


def validate_text(value: Any) -> tuple[str | None, str | None]:
    """Return (text, None) for a usable document text, else (None, skip reason)."""
    text, reason, _ = _checked_text(value)
    return text, reason


def _checked_text(value: Any) -> tuple[str | None, str | None, int]:
    """(text, None, UTF-8 size) for a usable text, else (None, reason, 0)."""
    if value is None:
        return None, "null_text", 0
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, "invalid_utf8", 0
    if not isinstance(value, str):
        return None, f"text_not_string:{type(value).__name__}", 0
    if not value.strip():
        return None, "empty_text", 0
    if value.isascii():
        return value, None, len(value)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return None, "lone_surrogate", 0
    return value, None, size


class BatchBuilder:
    """Accumulates rows column-wise and emits `ReadBatch`es of a fixed size.

    A batch is full at `batch_size` rows (documents plus skips) or at `max_batch_bytes` of text;
    a text longer than `max_text_bytes` is skipped as `text_too_long`.
    """

    def __init__(
        self,
        batch_size: int,
        max_text_bytes: int | None = None,
        max_batch_bytes: int | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.max_text_bytes = max_text_bytes
        self.max_batch_bytes = MAX_BATCH_TEXT_BYTES if max_batch_bytes is None else max_batch_bytes
        self._columns: dict[str, list[Any]] = {name: [] for name in DOCUMENT_SCHEMA.names}
        self._skipped: list[SkippedRow] = []
        self._text_bytes = 0

    def add(self, row_index: int, raw_text: Any, metadata: dict[str, Any]) -> None:
        """Add one row; it becomes a document or a skip with a reason, never an exception."""
        limit = self.max_text_bytes
        if limit is not None and isinstance(raw_text, bytes | bytearray) and len(raw_text) > limit:
            self._skipped.append(SkippedRow(row_index, "text_too_long"))
            return
        text, reason, size = _checked_text(raw_text)
        if reason is None and limit is not None and size > limit:
            reason = "text_too_long"
        if reason is not None:
            self._skipped.append(SkippedRow(row_index, reason))
            return
        self._columns["row_index"].append(row_index)
        self._columns["text"].append(text)
        self._text_bytes += size
        for name in METADATA_FIELDS:
            self._columns[name].append(_coerce_metadata(name, metadata.get(name)))

    def skip(self, row_index: int, reason: str) -> None:
        self._skipped.append(SkippedRow(row_index, reason))

    @property
    def full(self) -> bool:
        rows = len(self._columns["row_index"]) + len(self._skipped)
        return rows >= self.batch_size or self._text_bytes >= self.max_batch_bytes

    @property
    def empty(self) -> bool:
        return not self._columns["row_index"] and not self._skipped

    def flush(self, fraction_done: float) -> ReadBatch:
        documents = pa.RecordBatch.from_pydict(self._columns, schema=DOCUMENT_SCHEMA)
        batch = ReadBatch(documents, self._skipped, fraction_done)
        self._columns = {name: [] for name in DOCUMENT_SCHEMA.names}
        self._skipped = []
        self._text_bytes = 0
        return batch


def _coerce_metadata(name: str, value: Any) -> Any:
    """Metadata of unexpected types is kept as text (or dropped for counts), never fatal."""
    if value is None:
        return None
    if name == "quality_score":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if value == value else None
    if name == "shard_token_count":
        if isinstance(value, bool):
            return None
        if isinstance(value, int) and -(2**63) <= value < 2**63:
            return value
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    return str(value)
