"""What do the share estimates cost on a large store? Seconds and peak memory per estimator, whole
input and per crawl dump, on a generated `documents` table of N rows (default 1 M).

The table has the columns sql/11_share_blocks.sql reads: shards of 10,000 rows, 100 dumps, 10 %
near-duplicates joined to an earlier document's cluster, unequal sample weights, soft posteriors.
Only the estimate is timed (sql/11 aggregation, EMQ steps, the bootstrap over clusters), not the
table's generation. EMQ runs its E and M steps as repeated aggregations in DuckDB, so its cost
grows with the number of steps, which this measures.

Usage: .venv/bin/python bench/estimates_scale.py [--docs N] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer.config import shipped_model_path  # noqa: E402
from analyzer.estimates.corpus_shares import EstimateSettings, share_estimates, share_estimates_by_group  # noqa: E402

GENERATE = """
CREATE TABLE documents AS
WITH base AS (
    SELECT
        i,
        [random(), random(), random(), random(), random()] AS noise,
        (hash(i) % 100)::INTEGER AS pick
    FROM range($docs) AS t(i)
),
labelled AS (  -- a true label by a fixed mix, a posterior leaning to it
    SELECT
        i,
        CASE
            WHEN pick < 10 THEN 1 WHEN pick < 18 THEN 2 WHEN pick < 37 THEN 3 WHEN pick < 45 THEN 4 ELSE 5
        END AS true_index,
        noise
    FROM base
),
scored AS (
    SELECT
        i,
        list_transform(range(1, 6), lambda k: exp(2.0 * (k = true_index)::INTEGER + 1.2 * noise[k])) AS weight
    FROM labelled
)
SELECT
    'shard-' || (i // 10000) AS shard,
    i % 10000 AS row_index,
    i AS doc_seq,
    CASE WHEN hash(i) % 10 = 0 AND i > 0 THEN hash(i) % i ELSE i END AS cluster_id,
    hash(i) % 10 = 0 AND i > 0 AS is_duplicate,
    ['finance', 'law', 'code', 'medical', 'other'][list_position(weight, list_max(weight))] AS domain,
    weight[1] / list_sum(weight) AS p_finance,
    weight[2] / list_sum(weight) AS p_law,
    weight[3] / list_sum(weight) AS p_code,
    weight[4] / list_sum(weight) AS p_medical,
    weight[5] / list_sum(weight) AS p_other,
    (50 + hash(i * 7) % 3000)::BIGINT AS n_tokens,
    (200 + hash(i * 7) % 12000)::BIGINT AS n_bytes,
    (200 + hash(i * 7) % 12000)::DOUBLE AS calibration_size,
    1.0 + (i // 10000) % 3 AS sample_weight,
    'CC-MAIN-' || lpad(((i // 10000) % 100)::VARCHAR, 3, '0') AS dump,
    NULL::VARCHAR AS source
FROM scored
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "estimates_scale.json")
    args = parser.parse_args()
    connection = duckdb.connect()
    started = time.perf_counter()
    connection.execute("SELECT setseed(0.42)")  # random() in GENERATE: the same table every run
    connection.execute(GENERATE, {"docs": args.docs})
    generated = time.perf_counter() - started
    dev = shipped_model_path().with_suffix(".dev-predictions.parquet")
    results = []
    for estimator in ("cc", "pcc", "emq"):
        settings = EstimateSettings(dev_predictions=dev, estimator=estimator)
        for scope, run in (
            ("whole input", lambda s=settings: share_estimates(connection, s)),
            ("per dump", lambda s=settings: share_estimates_by_group(connection, s, ("dump",))),
        ):
            started = time.perf_counter()
            table = run()
            seconds = time.perf_counter() - started
            results.append(
                {
                    "estimator": estimator,
                    "scope": scope,
                    "seconds": seconds,
                    "rows": table.num_rows,
                    "peak_rss_mb_so_far": peak_rss_mb(),
                }
            )
            rss = peak_rss_mb()
            print(f"{estimator:4s} {scope:12s} {seconds:7.2f} s  {table.num_rows:4d} rows  RSS {rss:.0f} MB")
    # a --classify-all run: its census makes the whole input's bootstrap re-calibrate each replicate,
    # which needs the posterior totals split by predicted domain (sql/11_share_blocks.sql, strata)
    connection.execute(
        "CREATE TABLE census AS SELECT 'shard-0' AS shard, 'other' AS domain, 1 AS docs, 1 AS bytes"
    )
    settings = EstimateSettings(dev_predictions=dev, estimator="cc")
    started = time.perf_counter()
    table = share_estimates(connection, settings)
    seconds = time.perf_counter() - started
    connection.execute("DROP TABLE census")
    scope = "whole input, census"
    results.append(
        {
            "estimator": "cc",
            "scope": scope,
            "seconds": seconds,
            "rows": table.num_rows,
            "peak_rss_mb_so_far": peak_rss_mb(),
        }
    )
    print(f"cc   {scope:12s} {seconds:7.2f} s  {table.num_rows:4d} rows  RSS {peak_rss_mb():.0f} MB")
    report = {"docs": args.docs, "generate_seconds": generated, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
