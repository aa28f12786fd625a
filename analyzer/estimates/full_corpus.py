"""`analyzer estimate`: measured shares → estimated tokens per domain in a full published corpus.

Every published size is in its own tokenizer's units. When the run measured that tokenizer (the
run's own, or GPT-2 through FineWeb's `token_count`), shares are converted with per-domain
bytes-per-token ratios; otherwise byte shares stand in for token shares and `unit_note` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analyzer import DOMAINS
from analyzer.errors import InputError
from analyzer.estimates.extrapolation import extrapolate, ratio_to_reference

SHARD_TOKENIZER = "gpt2"
"""The tokenizer of the counts FineWeb shards carry (`token_count`)."""


@dataclass(frozen=True)
class ShareBasis:
    """Shares (point, lo, hi) in the reference corpus's units, with a note on how they were obtained."""

    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bytes_per_token: np.ndarray | None
    note: str


def estimate_full_corpus(database: Path, corpus: str, dedup: bool = False) -> pa.Table:
    """Per domain: estimated tokens of `corpus` with interval, and ratios to the domain corpora.

    The result is also written back to the store as table `corpus_estimates`.
    """
    with duckdb.connect(str(database)) as connection:
        reference = _reference_row(connection, corpus)
        basis = _share_basis(connection, str(reference["tokenizer"] or ""), dedup)
        tokens = extrapolate(basis.point, basis.lo, basis.hi, float(reference["tokens"]))
        table = pa.table(
            {
                "corpus": [corpus] * len(DOMAINS),
                "domain": list(DOMAINS),
                "share": basis.point,
                "share_lo": basis.lo,
                "share_hi": basis.hi,
                "tokens": tokens.tokens,
                "tokens_lo": tokens.lo,
                "tokens_hi": tokens.hi,
                "tokenizer": [reference["tokenizer"]] * len(DOMAINS),
                "deduplicated": [dedup] * len(DOMAINS),
                "unit_note": [basis.note] * len(DOMAINS),
                "domain_corpora": _domain_corpus_ratios(connection, tokens.tokens, basis),
                "source": [reference["source"]] * len(DOMAINS),
            }
        )
        connection.register("corpus_estimates_source", table)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS corpus_estimates AS SELECT * FROM corpus_estimates_source LIMIT 0"
        )
        connection.execute(
            "DELETE FROM corpus_estimates WHERE corpus = $corpus AND deduplicated = $dedup",
            {"corpus": corpus, "dedup": dedup},
        )
        connection.execute("INSERT INTO corpus_estimates SELECT * FROM corpus_estimates_source")
        connection.unregister("corpus_estimates_source")
    return table


def _reference_row(connection: duckdb.DuckDBPyConnection, corpus: str) -> dict[str, Any]:
    relation = connection.execute(
        "SELECT * FROM reference_corpora WHERE corpus = $corpus AND kind = 'general'", {"corpus": corpus}
    )
    names = [column[0] for column in relation.description]
    row = relation.fetchone()
    if row is None:
        known = [
            r[0]
            for r in connection.execute(
                "SELECT corpus FROM reference_corpora WHERE kind = 'general' ORDER BY corpus"
            ).fetchall()
        ]
        raise InputError(
            f"--corpus {corpus}: not a general corpus in reference_corpora; choose one of {known}"
        )
    record = dict(zip(names, row, strict=True))
    if record["tokens"] is None:
        raise InputError(f"--corpus {corpus}: its published size has no token count; see sql/seed/")
    return record


def _share_basis(connection: duckdb.DuckDBPyConnection, tokenizer: str, dedup: bool) -> ShareBasis:
    run_tokenizer = connection.execute("SELECT tokenizer FROM runs").fetchone()
    prefix = "dedup_token_share" if dedup else "token_share"
    shares = _share_columns(connection, prefix)
    bytes_per_token = connection.execute(
        "SELECT bytes_per_token, shard_bytes_per_token, shard_tokens, tokens FROM bytes_per_token "
        "ORDER BY array_position(['finance', 'law', 'code', 'medical', 'other'], domain)"
    ).fetchall()
    run_bpt = np.array([row[0] or np.nan for row in bytes_per_token], dtype=float)
    if run_tokenizer is not None and tokenizer == run_tokenizer[0]:
        return ShareBasis(shares[0], shares[1], shares[2], run_bpt, f"measured in {tokenizer}")
    shard_bpt = np.array([row[1] or np.nan for row in bytes_per_token], dtype=float)
    complete = all(row[2] is not None for row in bytes_per_token if row[3])
    if tokenizer == SHARD_TOKENIZER and complete and np.all(np.isfinite(shard_bpt)):
        factor = run_bpt / shard_bpt
        total = float((shares[0] * factor).sum())
        return ShareBasis(
            shares[0] * factor / total,
            shares[1] * factor / total,
            shares[2] * factor / total,
            shard_bpt,
            f"converted from {run_tokenizer[0] if run_tokenizer else '?'} with per-domain bytes per "
            f"token against the shards' own {SHARD_TOKENIZER} counts",
        )
    byte_shares = _share_columns(connection, "byte_share")
    return ShareBasis(
        byte_shares[0],
        byte_shares[1],
        byte_shares[2],
        None,
        f"{tokenizer} was not measured: byte shares stand in for its token shares",
    )


def _share_columns(
    connection: duckdb.DuckDBPyConnection, prefix: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, lo, hi) of one share column family; `prefix` is one of our fixed column names.

    The bounds are the corpus-level ones (`<prefix>_corpus_lo/_hi`: the input's blocks are a sample
    of the published corpus, so the full cluster bootstrap applies), falling back to the input-level
    `<prefix>_lo/_hi` for stores built before those columns existed.
    """
    columns = {row[0] for row in connection.execute("DESCRIBE domain_shares").fetchall()}
    bound = f"{prefix}_corpus" if f"{prefix}_corpus_lo" in columns else prefix
    rows = connection.execute(
        f"SELECT {prefix}, {bound}_lo, {bound}_hi FROM domain_shares "
        "ORDER BY array_position(['finance', 'law', 'code', 'medical', 'other'], domain)"
    ).fetchall()
    point = np.array([row[0] if row[0] is not None else np.nan for row in rows], dtype=float)
    lo = np.array([row[1] if row[1] is not None else row[0] for row in rows], dtype=float)
    hi = np.array([row[2] if row[2] is not None else row[0] for row in rows], dtype=float)
    return point, lo, hi


def _domain_corpus_ratios(
    connection: duckdb.DuckDBPyConnection, domain_tokens: np.ndarray, basis: ShareBasis
) -> list[str]:
    """Per domain, 'name: ratio' for each domain corpus; bytes-only sizes go through bytes per token."""
    rows = connection.execute(
        "SELECT corpus, domain, tokens, tokenizer, bytes FROM reference_corpora WHERE kind = 'domain'"
    ).fetchall()
    texts = []
    for index, domain in enumerate(DOMAINS):
        parts = []
        for corpus, corpus_domain, tokens, tokenizer, size_bytes in rows:
            if corpus_domain != domain:
                continue
            if tokens:
                ratio = float(ratio_to_reference(domain_tokens[index], tokens))
                parts.append(f"{corpus}: {ratio:.2f}x ({tokenizer} tokens)")
            elif size_bytes and basis.bytes_per_token is not None:
                estimated_bytes = domain_tokens[index] * basis.bytes_per_token[index]
                parts.append(f"{corpus}: {estimated_bytes / size_bytes:.2f}x (bytes)")
        texts.append("; ".join(parts))
    return texts
