"""The store's dedup stage on generated tags: time and peak memory for N documents (default 1 M).

Usage: .venv/bin/python bench/dedup_scale.py [--docs 1000000] [--shards 20] [--memory-limit 2GB]
       [--threads 2] [--work /tmp/dedup-scale] [--out bench/results/dedup_scale.json]

1. Generates OUT/tags/<shard>.parquet with every column the store reads (no classifier run):
   random signatures of the default size (MinHashOptions), their band keys, shingle counts,
   content hashes, and planted duplicate groups — exact copies (same content hash and signature)
   and near copies
   (a signature agreeing with its original in a Beta-distributed share of permutations around
   0.85), half of them copying a document of an earlier shard.
2. Runs the dedup stage in a child process, with the DuckDB settings of `build_database`
   (memory_limit, temp_directory under OUT): load tags (sql/01), candidate edges (sql/03), union-find
   (analyzer.dedup.clusters), the boilerplate discount (sql/03b: every signature unnested and probed
   against the verified edges' shared minima) and union-find again, documents (sql/04). The parent
   samples the child's RSS with psutil every 50 ms; the peak, each step's wall time and the
   planted-duplicate recall go to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analyzer.config import MinHashOptions  # noqa: E402
from analyzer.taggers.minhash_kernels import batch_band_keys  # noqa: E402

DOMAINS = ("finance", "law", "code", "medical", "other")


def generate(directory: Path, docs: int, shards: int, seed: int, options: MinHashOptions) -> dict[str, int]:
    """Write the shards; returns the planted counts. Copies are drawn from earlier documents."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    per_shard = -(-docs // shards)
    # originals are kept for copying: a bounded reservoir of earlier (signature, hash) rows
    pool_size = 50_000
    pool_signatures = np.zeros((0, options.num_perm), dtype=np.uint32)
    pool_hashes = np.zeros(0, dtype=np.uint64)
    pool_ids = np.zeros(0, dtype=np.int64)
    planted = {"exact": 0, "near": 0, "cross_shard": 0}
    truth_rows: list[np.ndarray] = []
    written = 0
    for shard in range(shards):
        count = min(per_shard, docs - written)
        if count <= 0:
            break
        ids = np.arange(written, written + count, dtype=np.int64)
        signatures = rng.integers(0, 2**32, size=(count, options.num_perm), dtype=np.uint32)
        hashes = rng.integers(0, 2**63, size=count, dtype=np.uint64)
        original = np.full(count, -1, dtype=np.int64)
        if pool_ids.size:
            # 2 % exact and 4 % near copies, as in the shared corpus
            kind = rng.choice(3, size=count, p=[0.94, 0.02, 0.04])
            copies = np.flatnonzero(kind > 0)
            # half copy from the pool (earlier shards), half from earlier rows of this shard
            from_pool = rng.random(copies.size) < 0.5
            sources = np.where(
                from_pool,
                -1 - rng.integers(0, pool_ids.size, size=copies.size),
                0,
            )
            for index, (row, source) in enumerate(zip(copies.tolist(), sources.tolist(), strict=True)):
                if source < 0:
                    pool_row = -1 - source
                    signature, content, origin = (
                        pool_signatures[pool_row],
                        pool_hashes[pool_row],
                        pool_ids[pool_row],
                    )
                    planted["cross_shard"] += 1
                elif row > 0:
                    local = int(rng.integers(0, row))
                    if original[local] >= 0:
                        continue  # keep groups stars, not chains of copies of copies
                    signature, content, origin = signatures[local], hashes[local], ids[local]
                else:
                    continue
                signatures[row] = signature
                original[row] = origin
                if kind[row] == 1:
                    hashes[row] = content
                    planted["exact"] += 1
                else:
                    agree = rng.beta(17, 3)  # mean 0.85, 5 % of pairs below ~0.7
                    changed = rng.random(options.num_perm) > agree
                    signatures[row, changed] = rng.integers(
                        0, 2**32, size=int(changed.sum()), dtype=np.uint32
                    )
                    planted["near"] += 1
                del index
        keys = batch_band_keys(signatures, options.bands, options.rows)
        shard_name = f"synthetic/{shard:04d}.parquet"
        n_bytes = rng.integers(500, 20_000, size=count)
        table = pa.table(
            {
                "shard": pa.array([shard_name] * count),
                "row_index": pa.array(np.arange(count, dtype=np.int64)),
                "doc_id": pa.array([f"doc-{i}" for i in ids.tolist()]),
                "dump": pa.array(
                    rng.choice(["CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-22"], size=count)
                ),
                "url": pa.array([f"https://h{i % 5000}.example/{i}" for i in ids.tolist()]),
                "date": pa.nulls(count, pa.string()),
                "source": pa.nulls(count, pa.string()),
                "shard_token_count": pa.array(n_bytes // 4),
                "quality_score": pa.nulls(count, pa.float64()),
                "host": pa.array([f"h{i % 5000}.example" for i in ids.tolist()]),
                "n_chars": pa.array(n_bytes),
                "n_bytes": pa.array(n_bytes),
                "n_tokens": pa.array(n_bytes // 4),
                **{f"p_{d}": pa.array(np.full(count, 0.2)) for d in DOMAINS},
                "domain": pa.array(rng.choice(DOMAINS, size=count)),
                "domains": pa.nulls(count, pa.list_(pa.string())),
                "content_hash": pa.array(hashes, type=pa.uint64()),
                "minhash": pa.FixedSizeListArray.from_arrays(pa.array(signatures.ravel()), options.num_perm),
                "band_keys": pa.FixedSizeListArray.from_arrays(pa.array(keys.ravel()), options.bands),
                "n_shingles": pa.array(rng.integers(100, 3000, size=count).astype(np.uint32)),
            }
        )
        pq.write_table(table, directory / f"{shard:04d}.parquet", row_group_size=16_384)
        truth_rows.append(np.stack([ids, original], axis=1))
        # refresh the pool with originals of this shard
        keep = rng.choice(count, size=min(pool_size // shards + 1, count), replace=False)
        keep = keep[original[keep] < 0]
        pool_signatures = np.concatenate([pool_signatures, signatures[keep]])[-pool_size:]
        pool_hashes = np.concatenate([pool_hashes, hashes[keep]])[-pool_size:]
        pool_ids = np.concatenate([pool_ids, ids[keep]])[-pool_size:]
        written += count
    np.save(directory.parent / "truth.npy", np.concatenate(truth_rows))
    return planted


def stage(work: Path, memory_limit: str, threads: int) -> dict[str, Any]:
    """The dedup stage as build_database runs it; returns step timings and planted recall."""
    import duckdb

    from analyzer.dedup.clusters import cluster_roots
    from analyzer.sql_library import load_sql
    from analyzer.store import (
        DedupSettings,
        boilerplate_discounted_edges,
        candidate_edges,
        connection_config,
    )

    dedup = DedupSettings(memory_limit=memory_limit, threads=threads)
    spill = work / ".duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    database = work / "analysis.duckdb"
    database.unlink(missing_ok=True)
    connection = duckdb.connect(str(database), config=connection_config(spill, dedup))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    tag_files = sorted(str(p) for p in (work / "tags").glob("*.parquet"))
    connection.execute(load_sql("01_tags"), {"tag_files": tag_files})
    connection.execute("CREATE TABLE skipped (shard VARCHAR, row_index BIGINT, reason VARCHAR)")
    connection.execute("CREATE TABLE census (shard VARCHAR, domain VARCHAR, docs BIGINT, bytes BIGINT)")
    timings["load_tags_s"] = time.perf_counter() - started
    step = time.perf_counter()
    sources, targets = candidate_edges(connection, dedup)
    timings["edges_sql_s"] = time.perf_counter() - step
    step = time.perf_counter()
    nodes, roots = cluster_roots(sources, targets)
    timings["union_find_s"] = time.perf_counter() - step
    step = time.perf_counter()
    discounted = boilerplate_discounted_edges(connection, dedup, nodes, roots)
    if discounted is not None:
        sources, targets = discounted
        nodes, roots = cluster_roots(sources, targets)
    connection.execute("DROP TABLE IF EXISTS duplicate_edges")
    timings["boilerplate_sql_s"] = time.perf_counter() - step
    step = time.perf_counter()
    connection.register("clusters", pa.table({"doc_seq": nodes, "cluster_id": roots}))
    connection.execute(load_sql("04_documents"))
    connection.unregister("clusters")
    timings["documents_sql_s"] = time.perf_counter() - step
    timings["dedup_stage_s"] = time.perf_counter() - started - timings["load_tags_s"]
    timings["total_s"] = time.perf_counter() - started
    # planted recall: doc ids are doc-<n>, so n is the generated id
    truth = np.load(work / "truth.npy")
    clusters = connection.execute(
        "SELECT CAST(substr(doc_id, 5) AS BIGINT) AS id, cluster_id FROM documents ORDER BY id"
    ).fetchnumpy()
    cluster_of = np.asarray(clusters["cluster_id"])
    copies = truth[truth[:, 1] >= 0]
    found = cluster_of[copies[:, 0]] == cluster_of[copies[:, 1]]
    (documents,) = connection.execute("SELECT count(*) FROM documents").fetchone() or (0,)
    (duplicates,) = connection.execute("SELECT count(*) FROM documents WHERE is_duplicate").fetchone() or (0,)
    connection.close()
    spilled = sum(p.stat().st_size for p in spill.rglob("*") if p.is_file())
    return {
        **{k: round(v, 2) for k, v in timings.items()},
        "documents": int(documents),
        "duplicates_marked": int(duplicates),
        "edges": int(sources.size),
        "planted_copies": int(copies.shape[0]),
        "planted_copies_found": int(found.sum()),
        "spill_bytes_left": spilled,
        "settings": {"memory_limit": memory_limit, "threads": threads, **dedup.__dict__},
    }


def measure_child(command: list[str]) -> tuple[dict[str, Any], int]:
    """Run the stage in a child process; sample its RSS (and its children's) every 50 ms."""
    import psutil

    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    handle = psutil.Process(process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                rss = handle.memory_info().rss + sum(
                    c.memory_info().rss for c in handle.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"dedup stage failed with exit code {process.returncode}")
    return json.loads(output.strip().splitlines()[-1]), peak


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit for the stage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dedup-scale"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dedup_scale.json")
    parser.add_argument("--stage-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage_only:
        print(json.dumps(stage(args.work, args.memory_limit, args.threads)))
        return 0
    options = MinHashOptions()
    started = time.perf_counter()
    planted = generate(args.work / "tags", args.docs, args.shards, args.seed, options)
    generated_s = time.perf_counter() - started
    tag_bytes = sum(p.stat().st_size for p in (args.work / "tags").glob("*.parquet"))
    print(
        f"generated {args.docs} documents in {args.shards} shards ({tag_bytes / 1e6:.0f} MB) "
        f"in {generated_s:.0f} s"
    )
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stage-only",
        "--work",
        str(args.work),
        "--memory-limit",
        args.memory_limit,
        "--threads",
        str(args.threads),
    ]
    result, peak = measure_child(command)
    report = {
        "docs": args.docs,
        "shards": args.shards,
        "banding": f"{options.bands}x{options.rows}",
        "num_perm": options.num_perm,
        "tags_parquet_bytes": tag_bytes,
        "planted": planted,
        "generate_s": round(generated_s, 1),
        **result,
        "peak_rss_bytes": peak,
        "peak_rss_gb": round(peak / 2**30, 2),
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(
        f"dedup stage on {args.docs} docs: load {result['load_tags_s']} s, edges {result['edges_sql_s']} s, "
        f"union-find {result['union_find_s']} s, boilerplate {result['boilerplate_sql_s']} s, "
        f"documents {result['documents_sql_s']} s "
        f"(dedup stage {result['dedup_stage_s']} s, total {result['total_s']} s); "
        f"peak RSS {peak / 2**30:.2f} GiB; planted copies found "
        f"{result['planted_copies_found']}/{result['planted_copies']}; written {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
