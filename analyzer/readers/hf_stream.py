"""A Hugging Face `datasets` stream as one shard: `load_dataset(..., streaming=True)`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.config import ReaderOptions
from analyzer.errors import InputError, one_line
from analyzer.readers.base import BatchBuilder, ReadBatch
from analyzer.readers.jsonl import METADATA_PATHS, _first_present
from analyzer.shards import Shard

HF_SCHEME = "hf-dataset://"


def hf_stream_shard(name: str, config: str | None, split: str) -> Shard:
    """The shard that stands for a whole `datasets` stream."""
    suffix = f"{config or 'default'}/{split}"
    return Shard(
        url=f"{HF_SCHEME}{name}?config={config or ''}&split={split}", name=f"{name}/{suffix}", size_bytes=0
    )


def parse_hf_shard(shard: Shard) -> tuple[str, str | None, str]:
    """Inverse of `hf_stream_shard`: (name, config, split)."""
    body = shard.url[len(HF_SCHEME) :]
    name, _, query = body.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return name, params.get("config") or None, params.get("split") or "train"


def read_hf_stream(shard: Shard, options: ReaderOptions) -> Iterator[ReadBatch]:
    """Yield documents from a streamed dataset; local paths go through the `datasets` loaders."""
    import datasets  # imported here: it is slow to import and only this reader needs it

    name, config, split = parse_hf_shard(shard)
    text_field = options.text_column or "text"
    try:
        if name in ("json", "parquet", "csv", "text") and config:
            stream = datasets.load_dataset(name, data_files=config, split=split, streaming=True)
        else:
            stream = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as exc:
        raise InputError(
            f"{shard.name}: cannot open the datasets stream ({exc.__class__.__name__}: {one_line(exc)}); "
            "check --hf-dataset/--hf-config/--hf-split (no network here: use local files)"
        ) from exc
    features = getattr(stream, "features", None)
    if features is not None and text_field not in features:
        raise InputError(
            f"{shard.name}: no column '{text_field}' (columns: {', '.join(features)}); pass --text-column"
        )
    builder = BatchBuilder(options.batch_size, options.max_document_bytes)
    for row_index, record in enumerate(stream):
        metadata: dict[str, Any] = {
            field: _first_present(record, paths) for field, paths in METADATA_PATHS.items()
        }
        if options.id_column:
            metadata["doc_id"] = record.get(options.id_column)
        builder.add(row_index, record.get(text_field), metadata)
        if builder.full:
            yield builder.flush(0.0)
    if not builder.empty:
        yield builder.flush(1.0)
