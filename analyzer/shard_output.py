"""Per-shard outputs under OUT/tags/: tags parquet, skipped parquet, and a done marker.

Each file is written to a temporary name and renamed into place, and the done marker is written
last, so a crash leaves either a complete shard or one that the next run redoes from scratch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.errors import RunError
from analyzer.readers.base import SkippedRow

SKIPPED_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("row_index", pa.int64()),
        ("reason", pa.string()),
        ("content_hash", pa.uint64()),
    ]
)


@dataclass
class ShardAccounting:
    """What one shard task did; `docs_read == docs_tagged + docs_skipped` always."""

    shard: str
    url: str
    key: str
    status: str = "done"
    docs_read: int = 0
    docs_tagged: int = 0
    docs_skipped: int = 0
    text_bytes: int = 0
    seconds: float = 0.0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    """'input' when the shard itself is bad (exit 2), 'internal' for a bug (exit 1)."""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    census: list[dict[str, Any]] = field(default_factory=list)
    """With `--classify-all`: the sampled-out documents per predicted `domain`, `dump` and `source`
    (None where the shard has none), as {domain, dump, source, docs, bytes (UTF-8), shard_tokens
    (the shard's own token counts summed), shard_token_docs (documents carrying one)}; domain
    'unclassified' counts those the model failed on. They stay skipped as `not_sampled`."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShardAccounting:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ShardPaths:
    """Where one shard's outputs live."""

    tags_dir: Path
    key: str

    @property
    def tags(self) -> Path:
        return self.tags_dir / f"{self.key}.parquet"

    @property
    def skipped(self) -> Path:
        return self.tags_dir / f"{self.key}.skipped.parquet"

    @property
    def done(self) -> Path:
        return self.tags_dir / f"{self.key}.done.json"

    def temporary(self, final: Path) -> Path:
        return final.with_name(f".tmp-{os.getpid()}-{final.name}")


def write_failure_message(path: Path, exc: OSError) -> RunError:
    """Turn an OS error while writing into one line that names the file and the fix."""
    if exc.errno == errno.ENOSPC:
        return RunError(f"{path}: disk full while writing; free space or choose another --out")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RunError(f"{path}: output is not writable; choose a writable --out directory")
    return RunError(f"{path}: cannot write ({exc.strerror or exc}); check the --out directory")


SKIPPED_FLUSH_ROWS = 65536
"""Skipped rows are written out in groups of this many, so a shard of millions of bad lines
holds one group in memory, not all of them."""


class ShardWriter:
    """Streams tagged batches and skipped rows to temporary parquets and publishes them atomically."""

    def __init__(self, paths: ShardPaths, shard_name: str) -> None:
        self.paths = paths
        self.shard_name = shard_name
        self._writer: pq.ParquetWriter | None = None
        self._skipped_writer: pq.ParquetWriter | None = None
        self._skipped_rows: list[int] = []
        self._skipped_reasons: list[str] = []
        self._skipped_hashes: list[int | None] = []
        self._tags_temporary = paths.temporary(paths.tags)
        self._skipped_temporary = paths.temporary(paths.skipped)

    def write_tags(self, table: pa.Table) -> None:
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tags_temporary, table.schema, compression="zstd")
            self._writer.write_table(table)
        except OSError as exc:
            self.abort()
            raise write_failure_message(self._tags_temporary, exc) from exc

    def add_skipped(self, skipped: list[SkippedRow]) -> None:
        for row in skipped:
            self._skipped_rows.append(row.row_index)
            self._skipped_reasons.append(row.reason)
            self._skipped_hashes.append(row.content_hash)
        if len(self._skipped_rows) >= SKIPPED_FLUSH_ROWS:
            try:
                self._flush_skipped()
            except OSError as exc:
                self.abort()
                raise write_failure_message(self._skipped_temporary, exc) from exc

    def _flush_skipped(self) -> None:
        table = pa.Table.from_pydict(
            {
                "shard": pa.array([self.shard_name] * len(self._skipped_rows), type=pa.string()),
                "row_index": pa.array(self._skipped_rows, type=pa.int64()),
                "reason": pa.array(self._skipped_reasons, type=pa.string()),
                "content_hash": pa.array(self._skipped_hashes, type=pa.uint64()),
            },
            schema=SKIPPED_SCHEMA,
        )
        if self._skipped_writer is None:
            self._skipped_writer = pq.ParquetWriter(self._skipped_temporary, SKIPPED_SCHEMA)
        self._skipped_writer.write_table(table)
        self._skipped_rows = []
        self._skipped_reasons = []
        self._skipped_hashes = []

    def publish(self, accounting: ShardAccounting, empty_tags_schema: pa.Schema) -> None:
        """Close, then rename tags and skipped into place, then write the done marker."""
        try:
            if self._writer is None:
                pq.write_table(empty_tags_schema.empty_table(), self._tags_temporary)
            else:
                self._writer.close()
                self._writer = None
            self._flush_skipped()
            assert self._skipped_writer is not None
            self._skipped_writer.close()
            self._skipped_writer = None
            os.replace(self._tags_temporary, self.paths.tags)
            os.replace(self._skipped_temporary, self.paths.skipped)
            done_temporary = self.paths.temporary(self.paths.done)
            done_temporary.write_text(accounting.to_json(), encoding="utf-8")
            os.replace(done_temporary, self.paths.done)
        except OSError as exc:
            self.abort()
            raise write_failure_message(self.paths.tags, exc) from exc

    def abort(self) -> None:
        """Drop everything this writer started; the shard stays 'not done'."""
        for writer in (self._writer, self._skipped_writer):
            if writer is not None:
                with contextlib.suppress(OSError):
                    writer.close()
        self._writer = self._skipped_writer = None
        self._skipped_rows, self._skipped_reasons, self._skipped_hashes = [], [], []
        for leftover in self.paths.tags_dir.glob(f".tmp-{os.getpid()}-{self.paths.key}*"):
            leftover.unlink(missing_ok=True)


def load_finished(paths: ShardPaths, fingerprint: dict[str, Any]) -> ShardAccounting | None:
    """The accounting of a finished shard with the same fingerprint, or None if it must be redone."""
    if not (paths.done.is_file() and paths.tags.is_file() and paths.skipped.is_file()):
        return None
    try:
        accounting = ShardAccounting.from_json(paths.done.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    if accounting.status != "done" or accounting.fingerprint != fingerprint:
        return None
    if not all(isinstance(cell, dict) and "shard_token_docs" in cell for cell in accounting.census):
        return None  # a census in an older layout of this version: redo the shard
    return accounting
