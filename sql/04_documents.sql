-- Question: one row per document read and tagged, with its near-duplicate cluster.
-- `clusters(doc_seq, cluster_id)` is registered by the caller from union-find. cluster_id is the
-- smallest doc_seq in the cluster, and that document is the cluster's representative: every other
-- member has is_duplicate = true. dup_kind says why a duplicate was marked: 'exact' when its
-- normalised text equals another member's, 'near' when only MinHash linked it, else 'none'.
-- sample_weight is how many input documents each tagged one stands for: the inverse of its
-- inclusion probability pi (Horvitz-Thompson; pi from analyzer/sampler.py, 1 in tags written before
-- it was recorded), times its shard's calibration (tagged + not sampled) / sum(1 / pi) so the
-- weights add up to the shard's documents read and tagged. With equal pi (a Bernoulli sample,
-- --max-docs-per-shard, or no sampling) that is (tagged + not sampled) / tagged, and 1 when
-- nothing was sampled out (needs `skipped` built first).
CREATE OR REPLACE TABLE documents AS
WITH tags_pi AS (
    -- tags files that predate the column (reused shards of an unsampled run) read as pi = 1
    SELECT * FROM tags
    UNION ALL BY NAME
    SELECT NULL::DOUBLE AS inclusion_probability WHERE false
),
exact_groups AS (
    SELECT content_hash, count(*) AS members FROM tags GROUP BY content_hash
),
shard_weights AS (
    SELECT
        t.shard,
        (count(*) + coalesce(any_value(n.not_sampled), 0))
            / sum(1.0 / coalesce(t.inclusion_probability, 1.0)) AS calibration
    FROM tags_pi AS t
    LEFT JOIN (
        SELECT shard, count(*) AS not_sampled FROM skipped WHERE reason = 'not_sampled' GROUP BY shard
    ) AS n USING (shard)
    GROUP BY t.shard
)
SELECT
    t.doc_id,
    t.shard,
    t.row_index,
    t.dump,
    t.url,
    t.host,
    t.domain,
    t.domains,
    t.p_finance,
    t.p_law,
    t.p_code,
    t.p_medical,
    t.p_other,
    t.n_chars,
    t.n_bytes,
    t.n_tokens,
    coalesce(c.cluster_id, t.doc_seq) AS cluster_id,
    coalesce(c.cluster_id, t.doc_seq) <> t.doc_seq AS is_duplicate,
    CASE
        WHEN coalesce(c.cluster_id, t.doc_seq) = t.doc_seq THEN 'none'
        WHEN e.members > 1 THEN 'exact'
        ELSE 'near'
    END AS dup_kind,
    t.doc_seq,
    t.date,
    t.source,
    t.shard_token_count,
    t.quality_score,
    t.content_hash,
    (w.calibration / coalesce(t.inclusion_probability, 1.0))::DOUBLE AS sample_weight
FROM tags_pi AS t
LEFT JOIN shard_weights AS w USING (shard)
LEFT JOIN clusters AS c USING (doc_seq)
LEFT JOIN exact_groups AS e USING (content_hash)
ORDER BY t.doc_seq;
