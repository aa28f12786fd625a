"""Build OUT/analysis.duckdb from the per-shard outputs, using the SQL in `sql/`.

The database is built under a temporary name and renamed into place, so a reader never sees a
half-built store, and rebuilding from the same shard outputs gives the same tables.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer import DOMAINS
from analyzer.config import SQL_DIR
from analyzer.dedup.boilerplate import boilerplate_threshold
from analyzer.dedup.clusters import cluster_roots
from analyzer.errors import RunError, one_line
from analyzer.estimates.corpus_shares import EstimateSettings, share_estimates, share_estimates_by_group
from analyzer.estimates.dev_predictions import load_dev_predictions
from analyzer.estimates.source_shift import UNSURE_THRESHOLD
from analyzer.shard_output import SKIPPED_SCHEMA, ShardAccounting, ShardPaths
from analyzer.sql_library import load_sql

LOW_CONFIDENCE_THRESHOLD = UNSURE_THRESHOLD
"""`model_confidence` counts a document whose top calibrated probability is below this as one the
model is unsure of (sql/13_model_confidence.sql): 12 % of dev documents, 25 % of documents from
sources the model never saw (README: bench-estimates' fold models, leave-one-source-out models).
The same threshold decides how unfamiliar the intervals take the input to be (source_shift.py)."""

SHARDS_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("url", pa.string()),
        ("status", pa.string()),
        ("docs_read", pa.int64()),
        ("docs_tagged", pa.int64()),
        ("docs_skipped", pa.int64()),
        ("text_bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("error", pa.string()),
    ]
)


@dataclass(frozen=True)
class RunRecord:
    """One row of the `runs` table."""

    started_at: datetime
    finished_at: datetime
    inputs: list[str]
    options: dict[str, Any]
    model_name: str
    model_version: str
    tokenizer: str
    analyzer_version: str


@dataclass(frozen=True)
class DedupSettings:
    """How candidate edges become clusters (see sql/03_duplicate_edges.sql)."""

    mode: str = "near"
    verify_jaccard: float = 0.68
    """Keep an LSH candidate pair only if its estimated Jaccard reaches this (0: keep all)."""
    verify_containment: float = 0.95
    """... or if its estimated containment (from `n_shingles`) reaches this (0: no rescue)."""
    containment_min_jaccard: float = 0.6
    """... and its estimated Jaccard at least this (the containment rescue's floor)."""
    boilerplate_clusters: int = 4
    """Re-verify every LSH edge with the permutations it agrees on by shared boilerplate left out:
    a minimum held by at least this many distinct provisional clusters (raised when chance
    collisions of 32-bit minima could reach it; see analyzer/dedup/boilerplate.py and
    sql/03b_discount_boilerplate.sql). 0: no second pass."""
    memory_limit: str | None = None
    """DuckDB memory_limit for the build (e.g. '2GB'); None: half of physical memory. Beyond it
    DuckDB spills to OUT/.duckdb-tmp, so band grouping is bounded by disk, not memory."""
    threads: int | None = None
    """DuckDB threads for the build; None: DuckDB's default (all cores)."""


def default_memory_limit() -> str:
    """Half of physical memory, in whole MB, as DuckDB's memory_limit string."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2GB"
    return f"{max(256, physical // 2 // 2**20)}MB"


def connection_config(spill_dir: Path, dedup: DedupSettings) -> dict[str, Any]:
    """DuckDB settings for the build: bounded memory, spill files in a directory under OUT."""
    config: dict[str, Any] = {
        "temp_directory": spill_dir.as_posix(),
        "memory_limit": dedup.memory_limit or default_memory_limit(),
        "preserve_insertion_order": False,
    }
    if dedup.threads:
        config["threads"] = int(dedup.threads)
    return config


def build_database(
    database_path: Path,
    tags_dir: Path,
    accountings: list[ShardAccounting],
    run: RunRecord,
    dedup: DedupSettings = DedupSettings(),
    estimates: EstimateSettings | None = None,
    tags_schema: pa.Schema | None = None,
) -> None:
    """(Re)create the database from the finished shards' outputs and the run's accounting.

    `tags_schema` (ShardProcessor.tags_schema()) gives the `tags` table its columns when no shard
    finished, so every view still resolves; without it such a run cannot be built.
    """
    finished = [a for a in accountings if a.status in ("done", "reused")]
    paths = [ShardPaths(tags_dir, a.key) for a in finished]
    temporary = database_path.with_name(f".tmp-{os.getpid()}-{database_path.name}")
    temporary.unlink(missing_ok=True)
    spill_dir = database_path.parent / ".duckdb-tmp"
    try:
        spill_dir.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(str(temporary), config=connection_config(spill_dir, dedup))
        try:
            tag_files = [str(p.tags) for p in paths]
            if not tag_files:
                if tags_schema is None:
                    raise RunError(f"{database_path}: no shard finished and no tags schema was given")
                # an empty tags file of the taggers' real schema, loaded like any other
                empty = spill_dir / "no-shard-finished.tags.parquet"
                pq.write_table(tags_schema.empty_table(), empty)
                tag_files = [str(empty)]
            skipped_files = [str(p.skipped) for p in paths]
            settings = estimates or EstimateSettings()
            _populate(connection, tag_files, skipped_files, accountings, run, dedup, settings)
        finally:
            connection.close()
        os.replace(temporary, database_path)
        shutil.rmtree(spill_dir, ignore_errors=True)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise RunError(f"{database_path}: cannot write the database ({exc}); check --out") from exc
    except duckdb.Error as exc:
        temporary.unlink(missing_ok=True)
        raise RunError(
            f"{database_path}: database build failed ({one_line(str(exc))}); check --out and disk space"
        ) from exc


def _populate(
    connection: duckdb.DuckDBPyConnection,
    tag_files: list[str],
    skipped_files: list[str],
    accountings: list[ShardAccounting],
    run: RunRecord,
    dedup: DedupSettings,
    estimates: EstimateSettings,
) -> None:
    _create_table(connection, "shards", _shards_table(accountings))
    _create_table(connection, "census", _census_table(accountings))
    if skipped_files:
        connection.execute(load_sql("02_skipped"), {"skipped_files": skipped_files})
    else:  # no shard finished: the skipped files' own schema, empty
        _create_table(connection, "skipped", SKIPPED_SCHEMA.empty_table())
    connection.execute(load_sql("01_tags"), {"tag_files": tag_files})
    nodes, roots = duplicate_clusters(connection, dedup)
    clusters = pa.table({"doc_seq": nodes, "cluster_id": roots})
    connection.register("clusters", clusters)
    connection.execute(load_sql("04_documents"))
    connection.unregister("clusters")
    connection.execute("DROP TABLE tags")
    connection.execute(load_sql("04a_document_groups"))
    connection.execute(load_sql("04b_measure_weights"))
    connection.execute(load_sql("05_domain_shares_raw"))
    connection.register("share_estimates", share_estimates(connection, estimates))
    connection.execute(load_sql("12_domain_shares"))
    connection.unregister("share_estimates")
    connection.register("share_group_estimates", share_estimates_by_group(connection, estimates))
    connection.execute(load_sql("12a_share_estimates_by_group"))
    connection.unregister("share_group_estimates")
    connection.register("dev_top_probabilities", _dev_top_probabilities(estimates.dev_predictions))
    connection.execute(load_sql("13_model_confidence"), {"threshold": LOW_CONFIDENCE_THRESHOLD})
    connection.unregister("dev_top_probabilities")
    connection.execute(load_sql("06_shard_accounting"))
    connection.execute(load_sql("07_runs"), _run_parameters(run))
    connection.execute(load_sql("08_duplicate_views"))
    connection.execute(load_sql("09_breakdowns"))
    connection.execute(
        load_sql("10_reference_corpora"), {"seed_file": str(SQL_DIR / "seed" / "reference_corpora.csv")}
    )


def _dev_top_probabilities(dev_predictions: Path | None) -> pa.Table:
    """(predicted, top_probability) per dev document of the model; no rows without dev predictions."""
    if dev_predictions is None:
        return pa.table(
            {"predicted": pa.array([], pa.string()), "top_probability": pa.array([], pa.float64())}
        )
    dev = load_dev_predictions(dev_predictions)
    return pa.table(
        {
            "predicted": [DOMAINS[index] for index in dev.predicted_index],
            "top_probability": dev.probabilities.max(axis=1),
        }
    )


def duplicate_clusters(
    connection: duckdb.DuckDBPyConnection, dedup: DedupSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate edges from `tags` (sql/03, then sql/03b) → (doc_seq, cluster_id) per linked document.

    Only the edges reach Python, as int64 arrays; the band keys and signatures stay in DuckDB.
    """
    nodes, roots = cluster_roots(*candidate_edges(connection, dedup))
    if dedup.mode == "near" and dedup.boilerplate_clusters > 0:
        discounted = boilerplate_discounted_edges(connection, dedup, nodes, roots)
        if discounted is not None:
            nodes, roots = cluster_roots(*discounted)
    connection.execute("DROP TABLE IF EXISTS duplicate_edges")
    return nodes, roots


def _verification_parameters(dedup: DedupSettings) -> dict[str, Any]:
    return {
        "verify_jaccard": dedup.verify_jaccard,
        "verify_containment": dedup.verify_containment,
        "containment_min_jaccard": dedup.containment_min_jaccard,
    }


def _edge_arrays(edges: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.asarray(edges["doc_seq"], dtype=np.int64),
        np.asarray(edges["linked_seq"], dtype=np.int64),
    )


def candidate_edges(
    connection: duckdb.DuckDBPyConnection, dedup: DedupSettings
) -> tuple[np.ndarray, np.ndarray]:
    """First pass (sql/03): verified LSH edges and exact-hash edges, kept in the temporary table
    `duplicate_edges` for the second pass and returned as (sources, targets)."""
    _ensure_shingle_counts(connection)
    connection.execute(load_sql("03a_verification_rule"))
    connection.execute(
        load_sql("03_duplicate_edges"), {"dedup_mode": dedup.mode, **_verification_parameters(dedup)}
    )
    return _edge_arrays(connection.execute("SELECT doc_seq, linked_seq FROM duplicate_edges").fetchnumpy())


def boilerplate_discounted_edges(
    connection: duckdb.DuckDBPyConnection, dedup: DedupSettings, nodes: np.ndarray, roots: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Second pass (sql/03b): the edges of `duplicate_edges` that still pass verification once the
    minima that the first pass's clusters (`nodes` → `roots`) show to be boilerplate are left out.
    None when there is no band edge to re-verify."""
    [(band_edges, total_shingles)] = connection.execute(
        "SELECT (SELECT count(*) FROM duplicate_edges WHERE NOT exact), "
        "(SELECT coalesce(sum(n_shingles), 0) FROM tags)"
    ).fetchall()
    if not band_edges:
        return None
    threshold = boilerplate_threshold(dedup.boilerplate_clusters, float(total_shingles))
    connection.register("provisional", pa.table({"doc_seq": nodes, "cluster_id": roots}))
    try:
        return _edge_arrays(
            connection.execute(
                load_sql("03b_discount_boilerplate"),
                {"boilerplate_clusters": threshold, **_verification_parameters(dedup)},
            ).fetchnumpy()
        )
    finally:
        connection.unregister("provisional")


def _ensure_shingle_counts(connection: duckdb.DuckDBPyConnection) -> None:
    """Tags written before `n_shingles` existed read as NULL for it (containment check off)."""
    columns = {row[0] for row in connection.execute("DESCRIBE tags").fetchall()}
    if "n_shingles" not in columns:
        connection.execute("ALTER TABLE tags ADD COLUMN n_shingles UINTEGER")


def _shards_table(accountings: list[ShardAccounting]) -> pa.Table:
    rows = [
        {
            "shard": a.shard,
            "url": a.url,
            "status": a.status,
            "docs_read": a.docs_read,
            "docs_tagged": a.docs_tagged,
            "docs_skipped": a.docs_skipped,
            "text_bytes": a.text_bytes,
            "seconds": a.seconds,
            "error": a.error,
        }
        for a in accountings
    ]
    return pa.Table.from_pylist(rows, schema=SHARDS_SCHEMA)


CENSUS_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("domain", pa.string()),
        ("dump", pa.string()),
        ("source", pa.string()),
        ("docs", pa.int64()),
        ("bytes", pa.int64()),
        ("shard_tokens", pa.int64()),
        ("shard_token_docs", pa.int64()),
    ]
)


def _create_table(connection: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """A DuckDB table `name` holding the rows of an Arrow table (DuckDB's relational API: no SQL text)."""
    connection.from_arrow(table).create(name)


def _census_table(accountings: list[ShardAccounting]) -> pa.Table:
    """`--classify-all`'s sampled-out documents per shard, predicted domain, dump and source (empty
    without it)."""
    rows = [
        {"shard": a.shard, **cell} for a in accountings if a.status in ("done", "reused") for cell in a.census
    ]
    return pa.Table.from_pylist(rows, schema=CENSUS_SCHEMA)


def _run_parameters(run: RunRecord) -> dict[str, Any]:
    return {
        "started_at": run.started_at.astimezone(UTC).replace(tzinfo=None),
        "finished_at": run.finished_at.astimezone(UTC).replace(tzinfo=None),
        "inputs": json.dumps(run.inputs),
        "options": json.dumps(run.options, default=str, sort_keys=True),
        "model_name": run.model_name,
        "model_version": run.model_version,
        "tokenizer": run.tokenizer,
        "analyzer_version": run.analyzer_version,
    }


def now() -> datetime:
    return datetime.now(UTC)
