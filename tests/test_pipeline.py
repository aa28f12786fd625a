"""`analyzer run` end to end on generated shards: the output contract, accounting, restarts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from generated import (
    corpus_documents,
    dolma_records,
    write_fineweb_parquet,
    write_jsonl_gz,
    write_jsonl_lines,
)

from analyzer.cli import main

DOCUMENT_COLUMNS = {
    "doc_id": "VARCHAR",
    "shard": "VARCHAR",
    "row_index": "BIGINT",
    "dump": "VARCHAR",
    "url": "VARCHAR",
    "host": "VARCHAR",
    "domain": "VARCHAR",
    "p_finance": "DOUBLE",
    "p_law": "DOUBLE",
    "p_code": "DOUBLE",
    "p_medical": "DOUBLE",
    "p_other": "DOUBLE",
    "n_chars": "BIGINT",
    "n_bytes": "BIGINT",
    "n_tokens": "BIGINT",
    "cluster_id": "BIGINT",
    "is_duplicate": "BOOLEAN",
}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Two FineWeb-like shards and one Dolma-like shard; shard 2 repeats 5 docs of shard 1."""
    directory = tmp_path / "corpus"
    directory.mkdir()
    first = corpus_documents(60, seed=1, prefix="a")
    second = corpus_documents(40, seed=2, prefix="b")
    copies = [dict(record, id=f"copy-{record['id']}") for record in first[:5]]
    write_fineweb_parquet(directory / "000.parquet", first)
    write_fineweb_parquet(directory / "001.parquet", second + copies)
    dolma = dolma_records(corpus_documents(30, seed=3, prefix="c"))
    dolma.append({"id": "blank", "text": "", "metadata": {}})
    write_jsonl_gz(directory / "cc_en_0000.json.gz", dolma)
    return directory


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_builds_the_contract_tables(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        "run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", "1"
    )
    assert code == 0, stderr
    assert "documents read 136 = tagged 135 + skipped 1" in stdout
    assert "model confidence: " in stdout
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        confidence = db.execute("SELECT predicted, docs FROM model_confidence").fetchall()
        assert confidence[-1] == ("all", 135) and sum(docs for _, docs in confidence[:-1]) == 135
        columns = dict(db.execute("SELECT column_name, column_type FROM (DESCRIBE documents)").fetchall())
        for name, kind in DOCUMENT_COLUMNS.items():
            assert columns.get(name) == kind, name
        assert db.execute("SELECT count(*) FROM documents").fetchone() == (135,)
        assert db.execute("SELECT shard, row_index, reason FROM skipped").fetchall() == [
            ("corpus/cc_en_0000.json.gz", 30, "empty_text")
        ]
        shares = db.execute(
            "SELECT sum(token_share), sum(dedup_token_share), min(token_share), count(*) FROM domain_shares"
        ).fetchone()
        assert shares is not None
        assert shares[0] == pytest.approx(1.0) and shares[1] == pytest.approx(1.0)
        assert shares[2] >= 0 and shares[3] == 5
        # every copy is in its original's cluster, and exactly one member per cluster is kept
        pairs = db.execute(
            """
            SELECT c.cluster_id = o.cluster_id, c.is_duplicate <> o.is_duplicate
            FROM documents c JOIN documents o ON o.doc_id = substr(c.doc_id, 6)
            WHERE c.doc_id LIKE 'copy-%'
            """
        ).fetchall()
        assert pairs == [(True, True)] * 5
        assert db.execute("SELECT count(*) FROM documents WHERE is_duplicate").fetchone() == (5,)
        assert db.execute("SELECT bool_and(balanced) FROM shard_balance").fetchone() == (True,)
        run = db.execute("SELECT tokenizer, model_version, documents, skipped FROM runs").fetchone()
        assert run is not None and run[0] == "cl100k_base" and run[2:] == (135, 1)
        hosts = db.execute("SELECT count(*) FROM documents WHERE host LIKE 'www.%'").fetchone()
        assert hosts == (0,)


def test_rerun_reuses_finished_shards_and_redoes_a_changed_one(
    corpus: Path, tmp_path: Path, tiny_model: Path
) -> None:
    out = tmp_path / "out"
    assert (
        run_cli("run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", "1")[0] == 0
    )
    write_fineweb_parquet(corpus / "000.parquet", corpus_documents(61, seed=1, prefix="a"))
    code, stdout, _ = run_cli(
        "run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", "1"
    )
    assert code == 0
    assert "(2 reused)" in stdout
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM documents").fetchone() == (136,)


def test_two_workers_give_the_same_tables_as_one(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    results = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        code, _, stderr = run_cli(
            "run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", workers
        )
        assert code == 0, stderr
        with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
            results.append(
                db.execute(
                    "SELECT doc_id, domain, round(p_law, 6), n_tokens, cluster_id "
                    "FROM documents ORDER BY doc_id"
                ).fetchall()
            )
    assert results[0] == results[1]


def test_a_corrupt_shard_fails_alone(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    (corpus / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip")
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        "run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", "1"
    )
    assert code == 2
    assert "FAILED" in stdout and "broken.jsonl.gz" in stdout
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM documents").fetchone() == (135,)
        failed = db.execute("SELECT shard, reason FROM failed_shards").fetchall()
        assert len(failed) == 1 and "corrupt or truncated" in failed[0][1]


def test_column_token_count_uses_the_shards_count(tmp_path: Path, tiny_model: Path) -> None:
    shard = write_fineweb_parquet(tmp_path / "fw.parquet", corpus_documents(10, seed=4, prefix="t"))
    out = tmp_path / "out"
    code, _, stderr = run_cli(
        "run", str(shard), "--out", str(out), "--model", str(tiny_model), "--tokenizer", "column:token_count"
    )
    assert code == 0, stderr
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        assert db.execute("SELECT sum(n_tokens) FROM documents").fetchone() == (sum(range(100, 110)),)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "/no/such/shard.parquet", "--out", "{out}"], "no such file"),
        (["run", "{shard}", "--out", "{out}", "--model", "{garbage}"], "garbage.bin"),
        (["run", "{shard}", "--out", "{out}", "--tokenizer", "gpt-17"], "unknown tokenizer"),
        (["run", "{shard}", "--out", "{out}", "--text-column", "body"], "no column 'body'"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, tiny_model: Path, args: list[str], message: str
) -> None:
    shard = write_fineweb_parquet(tmp_path / "fw.parquet", corpus_documents(5, seed=5, prefix="e"))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a model")
    filled = [a.format(out=tmp_path / "out", shard=shard, garbage=garbage) for a in args]
    if "--model" not in filled:
        filled += ["--model", str(tiny_model)]
    completed = subprocess.run(
        [sys.executable, "-m", "analyzer.cli", *filled], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    error_lines = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_query_opens_the_database_read_only(corpus: Path, tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "out"
    assert (
        run_cli("run", str(corpus), "--out", str(out), "--model", str(tiny_model), "--workers", "1")[0] == 0
    )
    code, stdout, _ = run_cli("query", str(out), "--sql", "SELECT count(*) AS n FROM documents")
    assert code == 0 and "135" in stdout
    code, _, stderr = run_cli("query", str(out), "--sql", "DROP TABLE documents")
    assert code == 2 and "read-only" in stderr.lower()


def test_hf_datasets_stream_reads_local_json(tmp_path: Path, tiny_model: Path) -> None:
    records = corpus_documents(12, seed=6, prefix="h")
    data = tmp_path / "data.jsonl"
    write_jsonl_lines(data, [json.dumps(r).encode() for r in records])
    out = tmp_path / "out"
    code, _, stderr = run_cli(
        "run", "--hf-dataset", "json", "--hf-config", str(data), "--out", str(out), "--model", str(tiny_model)
    )
    assert code == 0, stderr
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM documents").fetchone() == (12,)
