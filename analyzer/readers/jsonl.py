"""JSON-lines shards (Dolma and any jsonl), plain, gzip or zstd, read line by line.

Compression is detected from the first bytes rather than the name, so a Dolma `*.json.gz` and a
mislabelled file both work. Lines are read with a length cap so one hostile line cannot take
the machine's memory.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from typing import IO, Any, cast

import fsspec
import zstandard

from analyzer.config import ReaderOptions
from analyzer.errors import InputError
from analyzer.readers.base import BatchBuilder, ReadBatch
from analyzer.shards import Shard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_CHUNK = 1 << 20

# Dolma keeps the url under metadata; other jsonl corpora put it at the top level.
METADATA_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "doc_id": (("id",),),
    "dump": (("dump",), ("metadata", "dump")),
    "url": (("url",), ("metadata", "url")),
    "date": (("date",), ("created",), ("metadata", "date")),
    "source": (("source",),),
    "shard_token_count": (("token_count",), ("metadata", "token_count")),
}

CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile)


def read_jsonl_shard(shard: Shard, options: ReaderOptions) -> Iterator[ReadBatch]:
    """Yield the shard's documents; a bad line is a skip with a reason, a bad stream an InputError."""
    text_field = options.text_column or "text"
    id_field = options.id_column
    with fsspec.open(shard.url, "rb") as raw:
        stream = _decompressed(raw, shard.url)
        builder = BatchBuilder(options.batch_size)
        row_index = 0
        try:
            for line, too_long in _bounded_lines(stream, options.max_document_bytes):
                if not too_long and not line.strip():
                    continue  # blank lines separate nothing and are not documents
                if too_long:
                    builder.skip(row_index, "line_too_long")
                else:
                    _add_line(builder, row_index, line, text_field, id_field)
                row_index += 1
                if builder.full:
                    yield builder.flush(_fraction(raw, shard.size_bytes))
        except CORRUPT_STREAM_ERRORS as exc:
            raise InputError(
                f"{shard.url}: compressed stream is corrupt or truncated after {row_index} lines "
                f"({exc.__class__.__name__}: {exc}); re-download the shard"
            ) from exc
        if not builder.empty:
            yield builder.flush(1.0)


def _add_line(
    builder: BatchBuilder, row_index: int, line: bytes, text_field: str, id_field: str | None
) -> None:
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        builder.skip(row_index, "invalid_utf8")
        return
    except (json.JSONDecodeError, RecursionError):
        builder.skip(row_index, "bad_json")
        return
    if not isinstance(record, dict):
        builder.skip(row_index, "not_an_object")
        return
    metadata = {field: _first_present(record, paths) for field, paths in METADATA_PATHS.items()}
    if id_field is not None:
        metadata["doc_id"] = record.get(id_field)
    builder.add(row_index, record.get(text_field), metadata)


def _first_present(record: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> Any:
    for path in paths:
        value: Any = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def _decompressed(raw: IO[bytes], url: str) -> IO[bytes]:
    try:
        head = raw.read(4)
        raw.seek(0)
    except OSError as exc:
        raise InputError(f"{url}: cannot read the file ({exc}); check permissions") from exc
    if head.startswith(GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=_READ_CHUNK)  # type: ignore[arg-type]
    return raw


def _bounded_lines(stream: IO[bytes], max_line_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """Yield (line, too_long); a line over the cap is drained in chunks and yielded empty."""
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        if len(line) <= max_line_bytes or line.endswith(b"\n"):
            yield line, False
            continue
        while True:
            rest = stream.readline(_READ_CHUNK)
            if not rest or rest.endswith(b"\n"):
                break
        yield b"", True


def _fraction(raw: IO[bytes], size_bytes: int) -> float:
    try:
        return min(raw.tell() / size_bytes, 1.0) if size_bytes else 0.0
    except (OSError, ValueError):
        return 0.0
