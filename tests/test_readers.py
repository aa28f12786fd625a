"""Readers: every row read becomes a document or a skip with a reason; bad shards are InputErrors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from generated import (
    corpus_documents,
    dolma_records,
    write_fineweb_parquet,
    write_jsonl_gz,
    write_jsonl_lines,
)
from harness import read_all
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.readers import detect_format
from analyzer.shards import Shard, resolve_shards


def test_fineweb_parquet_reads_every_row_with_metadata(tmp_path: Path) -> None:
    records = corpus_documents(150, seed=1, prefix="fw")
    path = write_fineweb_parquet(tmp_path / "000_00000.parquet", records, row_group_size=40)
    documents, skipped = read_all(path, batch_size=32)
    assert skipped == []
    assert [d["row_index"] for d in documents] == list(range(150))
    assert [d["doc_id"] for d in documents] == [r["id"] for r in records]
    assert documents[3]["dump"] == records[3]["dump"]
    assert documents[3]["url"] == records[3]["url"]
    assert documents[3]["shard_token_count"] == records[3]["token_count"]


def test_dolma_jsonl_gz_takes_url_from_metadata(tmp_path: Path) -> None:
    records = corpus_documents(20, seed=2, prefix="d")
    path = write_jsonl_gz(tmp_path / "cc_en_0000.json.gz", dolma_records(records))
    documents, skipped = read_all(path)
    assert skipped == []
    assert [d["url"] for d in documents] == [r["url"] for r in records]
    assert documents[0]["source"] == "common-crawl"
    assert documents[0]["date"] == records[0]["date"]


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_jsonl_compression_is_detected_from_content(tmp_path: Path, compress: str | None) -> None:
    lines = [json.dumps({"id": str(i), "text": f"document number {i}"}).encode() for i in range(5)]
    path = write_jsonl_lines(tmp_path / "shard.jsonl", lines, compress)
    documents, _ = read_all(path)
    assert [d["doc_id"] for d in documents] == [str(i) for i in range(5)]


def test_bad_rows_become_skips_with_reasons(tmp_path: Path) -> None:
    long_text = "x" * 5000
    lines = [
        json.dumps({"id": "ok", "text": "fine text"}).encode(),
        b"{not json",
        b"[1, 2, 3]",
        json.dumps({"id": "null", "text": None}).encode(),
        json.dumps({"id": "empty", "text": "   "}).encode(),
        json.dumps({"id": "num", "text": 42}).encode(),
        b'{"id": "surrogate", "text": "bad \\ud800 half"}',
        b'{"id": "utf8", "text": "caf\xe9"}',
        json.dumps({"id": "long", "text": long_text}).encode(),
        b"",
        json.dumps({"id": "nul", "text": "nul\u0000byte"}).encode(),
    ]
    path = write_jsonl_lines(tmp_path / "bad.jsonl", lines)
    documents, skipped = read_all(path, max_document_bytes=2000)
    assert [d["doc_id"] for d in documents] == ["ok", "nul"]
    assert skipped == [
        (1, "bad_json"),
        (2, "not_an_object"),
        (3, "null_text"),
        (4, "empty_text"),
        (5, "text_not_string:int"),
        (6, "lone_surrogate"),
        (7, "invalid_utf8"),
        (8, "line_too_long"),
    ]


def test_parquet_binary_text_with_bad_utf8_is_skipped(tmp_path: Path) -> None:
    table = pa.table({"text": pa.array([b"good text", b"\xff\xfe bad", None], type=pa.binary())})
    path = tmp_path / "binary.parquet"
    pq.write_table(table, path)
    documents, skipped = read_all(path)
    assert [d["text"] for d in documents] == ["good text"]
    assert skipped == [(1, "invalid_utf8"), (2, "null_text")]


def test_missing_text_column_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"body": ["a"]}), path)
    with pytest.raises(InputError, match=r"notext\.parquet.*no column 'text'.*--text-column"):
        read_all(path)
    documents, _ = read_all(path, text_column="body")
    assert documents[0]["text"] == "a"


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    payload = gzip.compress(b"".join(json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(2000)))
    path = tmp_path / "truncated.jsonl.gz"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(InputError, match=r"truncated\.jsonl\.gz.*corrupt or truncated"):
        read_all(path)


def test_corrupt_parquet_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not really parquet PAR1")
    with pytest.raises(InputError, match=r"corrupt\.parquet.*not a readable parquet"):
        read_all(path)


def test_paths_globs_and_directories_resolve(tmp_path: Path) -> None:
    weird = tmp_path / "dir with spaces; and 'quotes' ü"
    weird.mkdir()
    write_fineweb_parquet(weird / "a.parquet", corpus_documents(3, 1, "a"))
    write_jsonl_gz(weird / "b.jsonl.gz", dolma_records(corpus_documents(3, 2, "b")))
    (weird / "notes.txt").write_text("not a shard")
    assert [s.name.split("/")[-1] for s in resolve_shards([str(weird)])] == ["a.parquet", "b.jsonl.gz"]
    assert len(resolve_shards([str(weird / "*.parquet")])) == 1
    with pytest.raises(InputError, match="no such file"):
        resolve_shards([str(tmp_path / "missing.parquet")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no shard files"):
        resolve_shards([str(empty)])


def test_format_detection_and_override(tmp_path: Path) -> None:
    shard = Shard(url=str(tmp_path / "x.data"), name="x.data", size_bytes=0)
    with pytest.raises(InputError, match="--format"):
        detect_format(shard)
    assert detect_format(shard, "jsonl") == "jsonl"
    assert detect_format(Shard(url="s3://bucket/a.json.gz", name="a", size_bytes=0)) == "jsonl"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), st.integers(), st.binary()), min_size=1, max_size=8))
def test_any_value_becomes_a_document_or_a_skip(
    tmp_path_factory: pytest.TempPathFactory, values: list[object]
) -> None:
    path = tmp_path_factory.mktemp("prop") / "prop.jsonl"
    lines = [
        json.dumps({"text": value.decode("latin-1") if isinstance(value, bytes) else value}).encode()
        for value in values
    ]
    write_jsonl_lines(path, lines)
    documents, skipped = read_all(path)
    assert len(documents) + len(skipped) == len(values)
    assert sorted([d["row_index"] for d in documents] + [row for row, _ in skipped]) == list(
        range(len(values))
    )


def test_a_quality_score_column_is_carried_and_broken_down(tmp_path: Path, tiny_model: Path) -> None:
    records = corpus_documents(30, seed=9, prefix="q")
    for index, record in enumerate(records):
        record["int_score"] = index % 3
    path = write_fineweb_parquet(tmp_path / "edu.parquet", records)
    documents, _ = read_all(path)
    assert [d["quality_score"] for d in documents[:4]] == [0.0, 1.0, 2.0, 0.0]
    from harness import run_and_open

    with run_and_open(path, tmp_path / "out", tiny_model) as db:
        rows = db.execute(
            "SELECT quality_score, sum(token_share) FROM domain_shares_by_quality GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [score for score, _ in rows] == [0.0, 1.0, 2.0]
    assert all(abs(total - 1.0) < 1e-9 for _, total in rows)


def test_an_unreachable_remote_location_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class ClientError(Exception):
        """What an HTTP client raises when there is no network (not an OSError)."""

    class OfflineFileSystem:
        protocol = "hf"

        def glob(self, path: str) -> list[str]:
            raise ClientError("Name or service not known")

    monkeypatch.setattr("fsspec.core.url_to_fs", lambda spec: (OfflineFileSystem(), spec[5:]))
    with pytest.raises(InputError, match=r"hf://x/\*\.parquet: cannot reach this location.*network"):
        resolve_shards(["hf://x/*.parquet"])
