"""`analyzer estimate`: shares of a run → tokens of a published corpus, in that corpus's units."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from generated import corpus_documents, write_fineweb_parquet

from analyzer.cli import main


@pytest.fixture()
def run_dir(tmp_path: Path, tiny_model: Path) -> Path:
    shard = write_fineweb_parquet(tmp_path / "000.parquet", corpus_documents(200, seed=3, prefix="e"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(shard), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
    )
    assert result.exit_code == 0, result.stderr
    return out


def estimates(out: Path, corpus: str) -> list[tuple[str, float, float, float, float, str]]:
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        return db.execute(
            "SELECT domain, share, tokens, tokens_lo, tokens_hi, unit_note FROM corpus_estimates "
            "WHERE corpus = $corpus",
            {"corpus": corpus},
        ).fetchall()


def test_fineweb_estimate_converts_to_gpt2_units_and_scales_to_15t(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["estimate", str(run_dir), "--corpus", "fineweb"])
    assert result.exit_code == 0, result.stderr
    rows = estimates(run_dir, "fineweb")
    assert len(rows) == 5
    assert sum(share for _, share, *_ in rows) == pytest.approx(1.0)
    for _, share, tokens, low, high, note in rows:
        assert tokens == pytest.approx(share * 15e12)
        assert low <= tokens <= high
        assert "gpt2" in note
    # the generated shards count 100 + i GPT-2 tokens per document, far fewer than cl100k does,
    # so the conversion must move the shares away from the cl100k token shares
    with duckdb.connect(str(run_dir / "analysis.duckdb"), read_only=True) as db:
        cl100k = dict(db.execute("SELECT domain, token_share FROM domain_shares").fetchall())
    assert any(abs(share - cl100k[domain]) > 1e-3 for domain, share, *_ in rows)


def test_a_corpus_in_an_unmeasured_tokenizer_uses_byte_shares(run_dir: Path) -> None:
    assert CliRunner().invoke(main, ["estimate", str(run_dir), "--corpus", "dolma"]).exit_code == 0
    rows = estimates(run_dir, "dolma")
    with duckdb.connect(str(run_dir / "analysis.duckdb"), read_only=True) as db:
        byte_shares = dict(db.execute("SELECT domain, byte_share FROM domain_shares").fetchall())
    for domain, share, tokens, *_, note in rows:
        assert share == pytest.approx(byte_shares[domain])
        assert tokens == pytest.approx(share * 3e12)
        assert "byte shares stand in" in note


def test_unknown_corpus_is_a_usage_error(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["estimate", str(run_dir), "--corpus", "common-pile-9"])
    assert result.exit_code == 2
    assert "fineweb" in result.stderr
