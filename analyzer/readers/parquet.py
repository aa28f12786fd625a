"""Parquet shards (FineWeb and any parquet with a text column), read one row group at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.config import ReaderOptions
from analyzer.errors import InputError, one_line
from analyzer.readers.base import BatchBuilder, ReadBatch
from analyzer.shards import Shard, open_shard

# FineWeb's own column names; any parquet that uses them gets its metadata carried over.
METADATA_COLUMNS = {
    "doc_id": "id",
    "dump": "dump",
    "url": "url",
    "date": "date",
    "source": "source",
    "shard_token_count": "token_count",
    "quality_score": "int_score",
}


TEXT_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_null,
)
_TO_PYTHON_ROWS = 64
"""Rows turned into Python objects at a time, so a batch of huge texts is not copied whole."""

READ_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, IndexError, KeyError)
"""What pyarrow raises on a damaged file (TypeError/IndexError for some broken footers)."""


def read_parquet_shard(shard: Shard, options: ReaderOptions) -> Iterator[ReadBatch]:
    """Yield the shard's documents, reading only the needed columns of one row group at a time.

    Memory: pyarrow decodes `batch_size` rows of the needed columns at a time (a parquet page is
    decoded whole); texts over `max_document_bytes` are skipped as `text_too_long`.
    """
    text_column = options.text_column or "text"
    with open_shard(shard) as handle:
        try:
            parquet_file = pq.ParquetFile(handle)
            schema = parquet_file.schema_arrow
            total_rows = max(parquet_file.metadata.num_rows, 1)
        except READ_ERRORS as exc:
            raise InputError(
                f"{shard.url}: not a readable parquet file ({one_line(exc)}); "
                "re-download the shard or pass --format"
            ) from exc
        if text_column not in schema.names:
            raise InputError(
                f"{shard.url}: no column '{text_column}' (columns: {', '.join(schema.names)}); "
                "pass --text-column NAME"
            )
        text_type = schema.field(text_column).type
        value_type = text_type.value_type if pa.types.is_dictionary(text_type) else text_type
        if not any(is_text(value_type) for is_text in TEXT_TYPES):
            raise InputError(
                f"{shard.url}: column '{text_column}' holds {text_type}, not text; "
                "pass --text-column NAME of a string column"
            )
        metadata_columns = dict(METADATA_COLUMNS)
        if options.id_column:
            if options.id_column not in schema.names:
                raise InputError(
                    f"{shard.url}: no id column '{options.id_column}' "
                    f"(columns: {', '.join(schema.names)}); fix --id-column"
                )
            metadata_columns["doc_id"] = options.id_column
        present = {field: column for field, column in metadata_columns.items() if column in schema.names}
        columns = [text_column, *sorted(set(present.values()) - {text_column})]
        builder = BatchBuilder(options.batch_size, options.max_document_bytes)
        row_index = 0
        # iter_batches decodes a bounded number of rows at a time, never a whole shard's text
        try:
            record_batches = parquet_file.iter_batches(batch_size=options.batch_size, columns=columns)
        except READ_ERRORS as exc:
            raise InputError(
                f"{shard.url}: corrupt parquet metadata ({one_line(exc)}); re-download the shard"
            ) from exc
        while True:
            try:
                record_batch = next(record_batches)
            except StopIteration:
                break
            except READ_ERRORS as exc:
                raise InputError(
                    f"{shard.url}: corrupt data after row {row_index} ({one_line(exc)}); "
                    "re-download the shard"
                ) from exc
            for start in range(0, record_batch.num_rows, _TO_PYTHON_ROWS):
                rows = record_batch.slice(start, _TO_PYTHON_ROWS)
                texts = _as_python_values(rows.column(text_column))
                metadata_values = {
                    field: _as_metadata_values(rows.column(column)) for field, column in present.items()
                }
                for offset, raw_text in enumerate(texts):
                    metadata = {field: values[offset] for field, values in metadata_values.items()}
                    builder.add(row_index, raw_text, metadata)
                    row_index += 1
                    if builder.full:
                        yield builder.flush(row_index / total_rows)
        if not builder.empty:
            yield builder.flush(1.0)


def _as_python_values(column: pa.Array) -> list[object]:
    """Strings come back as raw bytes so one bad UTF-8 value is a skip, not a crash of the batch."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = column.cast(pa.large_binary())
    values: list[object] = column.to_pylist()
    return values


def _as_metadata_values(column: pa.Array) -> list[object]:
    """Metadata with bad UTF-8 is kept with replacement characters rather than dropped."""
    values = _as_python_values(column)
    return [value.decode("utf-8", "replace") if isinstance(value, bytes) else value for value in values]
