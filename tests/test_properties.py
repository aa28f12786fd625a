"""Property-based tests: any text or bytes in → a document (and tags) or a skip with a reason.

Never an exception that is not an `InputError` naming the shard. The reader fuzz harness's own
oracle (fuzz/fuzz_readers.py) runs here on hypothesis-generated and mutated shards too.
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analyzer.config import MinHashOptions, ReaderOptions
from analyzer.readers import read_shard
from analyzer.readers.base import BatchBuilder
from analyzer.shards import Shard
from analyzer.taggers.domain import DomainTagger
from analyzer.taggers.minhash import MinHashTagger
from analyzer.taggers.tokens import TokenCounter
from analyzer.taggers.url import UrlAndSizeTagger

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
import fuzz_readers

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_text = st.text(st.characters(exclude_categories=()), max_size=300)  # includes lone surrogates and NUL
any_scalar = st.one_of(st.none(), any_text, st.integers(), st.floats(), st.booleans())
any_value = st.one_of(any_scalar, st.binary(max_size=200))
any_url = st.one_of(st.none(), any_text, st.builds(lambda h, p: f"http://{h}/{p}", any_text, any_text))


def read_memory(
    data: bytes, suffix: str, **options: object
) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    path = f"/properties/shard.{suffix}"
    fuzz_readers.MEMORY.pipe(path, data)
    shard = Shard(url=f"memory://{path}", name=f"shard.{suffix}", size_bytes=len(data))
    documents: list[dict[str, object]] = []
    skipped: list[tuple[int, str]] = []
    for batch in read_shard(shard, ReaderOptions(**options)):  # type: ignore[arg-type]
        documents.extend(batch.documents.to_pylist())
        skipped.extend((row.row_index, row.reason) for row in batch.skipped)
    return documents, skipped


def assert_every_row_accounted(
    documents: list[dict[str, object]], skipped: list[tuple[int, str]], rows: int
) -> None:
    assert sorted([int(d["row_index"]) for d in documents] + [row for row, _ in skipped]) == list(range(rows))  # type: ignore[call-overload]
    for document in documents:
        text = document["text"]
        assert isinstance(text, str) and text.strip()
        text.encode("utf-8")
    assert all(reason for _, reason in skipped)


# --- readers ------------------------------------------------------------------------------------


@PROPERTY
@given(
    st.lists(
        st.one_of(
            any_value, st.dictionaries(any_text, any_scalar, max_size=3), st.lists(any_scalar, max_size=3)
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from(["text", "body"]),
)
def test_jsonl_any_field_value_is_a_document_or_a_skip(values: list[object], text_field: str) -> None:
    lines = []
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        record = {text_field: value, "url": value if isinstance(value, str) else None, "id": value}
        lines.append(json.dumps(record, allow_nan=True).encode("utf-8", "surrogatepass"))
    documents, skipped = read_memory(b"\n".join(lines) + b"\n", "jsonl", text_column=text_field, batch_size=5)
    assert_every_row_accounted(documents, skipped, len(values))


@PROPERTY
@given(
    st.lists(
        st.binary(min_size=1, max_size=80).filter(lambda b: b.strip() and b"\n" not in b),
        min_size=1,
        max_size=10,
    )
)
def test_jsonl_any_bytes_per_line_is_a_document_or_a_skip(lines: list[bytes]) -> None:
    # compression is detected from the first bytes, so a file opening with a gzip or zstd magic
    # number is (rightly) read as compressed: that case belongs to the corrupt-stream tests
    assume(not lines[0].startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")))
    documents, skipped = read_memory(b"\n".join(lines) + b"\n", "jsonl", batch_size=3, max_document_bytes=40)
    assert_every_row_accounted(documents, skipped, len(lines))


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.binary(max_size=60), st.text(max_size=60)), min_size=1, max_size=30),
    st.sampled_from([pa.binary(), pa.large_binary(), pa.string(), pa.large_string()]),
)
def test_parquet_any_text_value_is_a_document_or_a_skip(
    values: list[object], column_type: pa.DataType
) -> None:
    if pa.types.is_string(column_type) or pa.types.is_large_string(column_type):
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    else:
        values = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    sink = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array(values, type=column_type)}), sink, row_group_size=7)
    documents, skipped = read_memory(sink.getvalue(), "parquet", batch_size=4)
    assert_every_row_accounted(documents, skipped, len(values))


@PROPERTY
@given(st.lists(any_value, max_size=20), st.integers(1, 6), st.integers(1, 50))
def test_batch_builder_never_raises_and_never_exceeds_its_limits(
    values: list[object], batch_size: int, limit: int
) -> None:
    builder = BatchBuilder(batch_size, max_text_bytes=limit, max_batch_bytes=2 * limit)
    rows = 0
    for index, value in enumerate(values):
        builder.add(index, value, {"url": value, "doc_id": value, "shard_token_count": value})
        if builder.full:
            batch = builder.flush(0.5)
            rows += batch.documents.num_rows + len(batch.skipped)
            assert batch.documents.num_rows + len(batch.skipped) <= batch_size
            for text in batch.documents.column("text").to_pylist():
                assert len(text.encode("utf-8")) <= limit
    if not builder.empty:
        batch = builder.flush(1.0)
        rows += batch.documents.num_rows + len(batch.skipped)
    assert rows == len(values)


# Byte-level fuzzing inside the test suite: the harness's oracle on hypothesis' bytes and mutations.


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_readers_survive_arbitrary_bytes(data: bytes) -> None:
    fuzz_readers.one_input(data)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_readers_survive_mutated_valid_shards(seed: int) -> None:
    rng = random.Random(seed)
    fuzz_readers.one_input(fuzz_readers.mutate(rng.choice(SEEDS), rng))


SEEDS = fuzz_readers.seed_corpus()


# --- taggers ------------------------------------------------------------------------------------


def documents_batch(texts: list[object], urls: list[object]) -> pa.RecordBatch:
    builder = BatchBuilder(batch_size=10_000)
    for index, (text, url) in enumerate(zip(texts, urls, strict=False)):
        builder.add(index, text, {"url": url})
    return builder.flush(1.0).documents


@pytest.fixture(scope="module")
def taggers(tiny_model: Path) -> list[object]:
    return [
        UrlAndSizeTagger(),
        TokenCounter("cl100k_base"),
        MinHashTagger(MinHashOptions()),
        DomainTagger(tiny_model),
    ]


@PROPERTY
@given(st.lists(st.tuples(st.one_of(any_text, st.binary(max_size=100)), any_url), max_size=12))
def test_taggers_give_one_value_per_document_for_any_text(
    taggers: list[object], rows: list[tuple[object, object]]
) -> None:
    documents = documents_batch([text for text, _ in rows], [url for _, url in rows])
    texts = documents.column("text").to_pylist()
    for tagger in taggers:
        columns = tagger.tag(documents)  # type: ignore[attr-defined]
        for name, column in columns.items():
            assert len(column) == documents.num_rows, (tagger, name)
        if isinstance(tagger, UrlAndSizeTagger):
            assert columns["n_bytes"].to_pylist() == [len(t.encode("utf-8")) for t in texts]
            assert all(h is None or h for h in columns["host"].to_pylist())
        elif isinstance(tagger, TokenCounter):
            assert all(n >= 1 for n in columns["n_tokens"].to_pylist())
        elif isinstance(tagger, DomainTagger):
            probabilities = np.column_stack(
                [columns[f"p_{d}"].to_numpy() for d in ("finance", "law", "code", "medical", "other")]
            )
            if len(texts):
                assert np.allclose(probabilities.sum(axis=1), 1.0) and np.isfinite(probabilities).all()
            assert columns["domain"].null_count == 0
        elif isinstance(tagger, MinHashTagger):
            assert columns["minhash"].null_count == 0 and columns["band_keys"].null_count == 0


@pytest.mark.parametrize(
    ("url", "host"),
    [("A://WWW.", None), ("https://www.Example.com/x", "example.com"), ("http://www", "www"), ("", None)],
)
def test_host_of_never_returns_an_empty_host(url: str, host: str | None) -> None:
    from analyzer.taggers.url import host_of

    assert host_of(url) == host
