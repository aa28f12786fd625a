"""JSON-lines shards (Dolma and any jsonl), plain, gzip or zstd, read line by line.

Compression is detected from the first bytes rather than the name, so a Dolma `*.json.gz` and a
mislabelled file both work. A gzip or zstd stream that ends early (a truncated download) is an
`InputError`, never a silently shorter shard: gzip checks its own trailer, zstd frames are
walked by `_ZstdFrameCheck`.

Memory bound (hostile input, e.g. a 1 MB gzip/zstd "bomb" that inflates to 1 GB on one line):
decompression is streamed, and a line is read with `readline(max_document_bytes + 1)`, so a
longer line is drained in 1 MiB chunks and becomes one `line_too_long` skip. Reading one shard
therefore holds at most about

    3 x max_document_bytes   (one line: its bytes, the decoded line and the parsed text)
  + MAX_BATCH_TEXT_BYTES     (documents waiting in the current batch; see readers/base.py)

on top of the interpreter, whatever the size or compression ratio of the shard: under 256 MiB
with the defaults (64 MiB and 32 MiB). The 3x is for ASCII and Latin-1 text; Python keeps a str
with characters beyond U+FFFF at 4 bytes per character, so such a line can take up to 9x. Lower
`max_document_bytes` for a tighter bound. tests/test_robustness.py measures it.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

import zstandard

from analyzer.config import ReaderOptions
from analyzer.errors import InputError, one_line
from analyzer.readers.base import BatchBuilder, ReadBatch
from analyzer.shards import Shard, open_shard

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
    # FineWeb-Edu's educational score (0-5); other corpora's quality scores can be mapped here
    "quality_score": (("int_score",), ("metadata", "int_score")),
}

CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile)
_SKIPPABLE_FRAME_MAGIC = range(0x184D2A50, 0x184D2A60)
_ZSTD_FRAME_MAGIC = 0xFD2FB528


def read_jsonl_shard(shard: Shard, options: ReaderOptions) -> Iterator[ReadBatch]:
    """Yield the shard's documents; a bad line is a skip with a reason, a bad stream an InputError."""
    text_field = options.text_column or "text"
    id_field = options.id_column
    with open_shard(shard) as raw:
        stream, check_complete = _decompressed(raw, shard.url)
        builder = BatchBuilder(options.batch_size, options.max_document_bytes)
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
            check_complete()
        except CORRUPT_STREAM_ERRORS as exc:
            raise InputError(
                f"{shard.url}: compressed stream is corrupt or truncated after {row_index} lines "
                f"({exc.__class__.__name__}: {one_line(exc)}); re-download the shard"
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
    except (ValueError, RecursionError):
        # JSONDecodeError, and also ValueError for an integer of more than 4300 digits
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


def _decompressed(raw: IO[bytes], url: str) -> tuple[IO[bytes], Callable[[], None]]:
    """The decompressed stream, and a check to call at its end that raises if it was cut short."""
    try:
        head = raw.read(4)
        raw.seek(0)
    except OSError as exc:
        raise InputError(f"{url}: cannot read the file ({one_line(exc)}); check permissions") from exc
    if head.startswith(GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), _nothing_to_check
    if head.startswith(ZSTD_MAGIC):
        # zstandard's reader returns a clean end of stream for a truncated frame; the frame walker
        # sees every compressed byte on its way in and says whether the last frame was complete.
        frames = _ZstdFrameCheck(raw)
        source = cast(IO[bytes], frames)
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        stream = io.BufferedReader(reader, buffer_size=_READ_CHUNK)  # type: ignore[arg-type]
        return stream, frames.check_complete
    return raw, _nothing_to_check


def _nothing_to_check() -> None:
    return None


class _ZstdFrameCheck:
    """A pass-through reader that follows zstd frame and block headers (RFC 8878, section 3.1).

    It never decompresses: it only reads the 3-byte block headers and skips block contents, so it
    costs a few Python operations per 128 KiB block.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._state = "magic"
        self._want = 4
        self._head = bytearray()
        self._skip = 0
        self._checksum = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._feed(data)
        return data

    def check_complete(self) -> None:
        """Raise ZstdError unless the stream ended exactly at the end of a frame."""
        self._feed(self._raw.read())
        if self._state != "magic" or self._head or self._skip:
            raise zstandard.ZstdError("the stream ends inside a frame (truncated file)")

    def _feed(self, data: bytes) -> None:
        position, size = 0, len(data)
        while position < size:
            if self._skip:
                taken = min(self._skip, size - position)
                position += taken
                self._skip -= taken
                continue
            taken = min(self._want - len(self._head), size - position)
            self._head += data[position : position + taken]
            position += taken
            if len(self._head) == self._want:
                header = bytes(self._head)
                self._head.clear()
                self._on_header(int.from_bytes(header, "little"))

    def _on_header(self, value: int) -> None:
        if self._state == "magic":
            if value == _ZSTD_FRAME_MAGIC:
                self._state, self._want = "descriptor", 1
            elif value in _SKIPPABLE_FRAME_MAGIC:
                self._state, self._want = "skippable", 4
            else:
                raise zstandard.ZstdError(f"unknown frame magic {value:#010x}")
        elif self._state == "skippable":
            self._skip = value
            self._state, self._want = "magic", 4
        elif self._state == "descriptor":
            single_segment = bool(value & 0x20)
            self._checksum = bool(value & 0x04)
            window = 0 if single_segment else 1
            dictionary = (0, 1, 2, 4)[value & 0x03]
            content_size = (1 if single_segment else 0, 2, 4, 8)[value >> 6]
            self._skip = window + dictionary + content_size
            self._state, self._want = "block", 3
        else:  # a block header: last-block bit, type (raw, RLE, compressed, reserved), size
            last, kind, block_size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise zstandard.ZstdError("reserved zstd block type (corrupt data)")
            self._skip = 1 if kind == 1 else block_size
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._want = "magic", 4


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
