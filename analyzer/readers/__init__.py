"""Readers: one module per format. `read_shard` picks one from the option, name or content."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.config import FORMATS, ReaderOptions
from analyzer.errors import InputError
from analyzer.readers.base import DOCUMENT_SCHEMA, ReadBatch, SkippedRow
from analyzer.readers.hf_stream import HF_SCHEME, read_hf_stream
from analyzer.readers.jsonl import read_jsonl_shard
from analyzer.readers.parquet import read_parquet_shard
from analyzer.shards import Shard

__all__ = ["DOCUMENT_SCHEMA", "ReadBatch", "SkippedRow", "detect_format", "read_shard"]

PARQUET_FORMATS = ("fineweb", "parquet")
JSONL_FORMATS = ("dolma", "jsonl")


def detect_format(shard: Shard, requested: str = "auto") -> str:
    """Return 'parquet', 'jsonl' or 'hf'; `requested` (from --format) wins over the file name."""
    if shard.url.startswith(HF_SCHEME):
        return "hf"
    if requested not in FORMATS:
        raise InputError(f"unknown --format '{requested}'; choose one of {', '.join(FORMATS)}")
    if requested in PARQUET_FORMATS:
        return "parquet"
    if requested in JSONL_FORMATS:
        return "jsonl"
    name = shard.url.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if any(marker in name for marker in (".json", ".ndjson")):
        return "jsonl"
    raise InputError(f"{shard.url}: cannot tell the format from the name; pass --format parquet|jsonl")


def read_shard(shard: Shard, options: ReaderOptions) -> Iterator[ReadBatch]:
    """Stream a shard's documents as `ReadBatch`es, whatever its format."""
    kind = detect_format(shard, options.format)
    if kind == "hf":
        return read_hf_stream(shard, options)
    if kind == "parquet":
        return read_parquet_shard(shard, options)
    return read_jsonl_shard(shard, options)
