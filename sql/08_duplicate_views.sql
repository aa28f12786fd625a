-- Question: where do the duplicates sit — which domains, crawl dumps and hosts carry them, how big
-- are the clusters, and is a cluster the same page crawled again (spanning dumps) or copies
-- within one dump? Views, so they always reflect the current `documents`.
-- A document without a dump (Dolma, generic jsonl) cannot say which crawl it came from, so a
-- cluster is 'spans_dumps' when its members name two or more dumps, 'within_dump' when all name
-- the same one, and 'dump_unknown' otherwise (some or all members have no dump).
CREATE OR REPLACE VIEW duplicate_rate_by_domain AS
SELECT
    domain,
    count(*) AS docs,
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    count(*) FILTER (WHERE dup_kind = 'exact') AS exact_duplicates,
    count(*) FILTER (WHERE dup_kind = 'near') AS near_duplicates,
    avg(is_duplicate::INTEGER) AS duplicate_rate,
    coalesce(sum(n_tokens) FILTER (WHERE is_duplicate), 0) / nullif(sum(n_tokens), 0) AS duplicate_token_rate
FROM documents
GROUP BY domain
ORDER BY domain;

CREATE OR REPLACE VIEW duplicate_rate_by_dump AS
SELECT
    coalesce(dump, '(none)') AS dump,
    count(*) AS docs,
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    count(*) FILTER (WHERE dup_kind = 'exact') AS exact_duplicates,
    count(*) FILTER (WHERE dup_kind = 'near') AS near_duplicates,
    avg(is_duplicate::INTEGER) AS duplicate_rate,
    coalesce(sum(n_tokens) FILTER (WHERE is_duplicate), 0) / nullif(sum(n_tokens), 0) AS duplicate_token_rate
FROM documents
GROUP BY ALL
ORDER BY dump;

CREATE OR REPLACE VIEW duplicate_rate_by_host AS
SELECT
    coalesce(host, '(none)') AS host,
    count(*) AS docs,
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    avg(is_duplicate::INTEGER) AS duplicate_rate
FROM documents
GROUP BY ALL
ORDER BY duplicates DESC, docs DESC;

CREATE OR REPLACE VIEW cluster_sizes AS
WITH clusters AS (SELECT cluster_id, count(*) AS size FROM documents GROUP BY cluster_id)
SELECT size AS cluster_size, count(*) AS clusters, sum(size) AS docs
FROM clusters
GROUP BY size
ORDER BY size;

CREATE OR REPLACE VIEW duplicate_clusters AS
SELECT
    cluster_id,
    count(*) AS size,
    count(DISTINCT dump) AS dumps,
    count(DISTINCT shard) AS shards,
    CASE
        WHEN count(DISTINCT dump) > 1 THEN 'spans_dumps'
        WHEN count(dump) = count(*) THEN 'within_dump'
        ELSE 'dump_unknown'
    END AS spread,
    bool_or(dup_kind = 'exact') AS has_exact,
    bool_or(dup_kind = 'near') AS has_near,
    arg_min(domain, doc_seq) AS representative_domain
FROM documents
GROUP BY cluster_id
HAVING count(*) > 1
ORDER BY size DESC, cluster_id;

CREATE OR REPLACE VIEW duplicate_spread AS
SELECT
    spread,
    count(*) AS clusters,
    sum(size) AS docs,
    sum(size) - count(*) AS duplicates,
    count(*) FILTER (WHERE shards > 1) AS clusters_spanning_shards
FROM duplicate_clusters
GROUP BY spread
ORDER BY spread;
