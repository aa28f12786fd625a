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
-- nothing was sampled out (needs `skipped` and `census` built first).
-- With --classify-all (two-phase sampling) the model also read every sampled-out document, counted
-- per shard and predicted domain in `census(shard, domain, docs, bytes)`, and the weights are
-- calibrated per predicted domain over the whole input instead: (1 / pi) * B_d / sum(n_bytes / pi)
-- over the tagged documents predicted d, B_d being the bytes of every document predicted d (tagged
-- or census), so each predicted domain's weighted bytes equal the census's (post-stratification: a
-- token total becomes B_d times the sample's tokens per byte in d). Bytes the sample cannot carry
-- (a domain only the census saw, documents the model failed on) are spread over every tagged
-- document (`uncovered`), so the weighted bytes still add up to all bytes read.
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
),
census_bytes AS (  -- per predicted domain: bytes of every document the model read
    SELECT domain, sum(bytes) AS bytes
    FROM (
        SELECT domain, n_bytes AS bytes FROM tags
        UNION ALL
        SELECT domain, bytes FROM census
    )
    GROUP BY domain
),
domain_weights AS (
    SELECT c.domain, c.bytes / s.weighted_bytes AS calibration
    FROM census_bytes AS c
    JOIN (
        SELECT domain, sum(n_bytes / coalesce(inclusion_probability, 1.0)) AS weighted_bytes
        FROM tags_pi
        GROUP BY domain
    ) AS s USING (domain)
    WHERE s.weighted_bytes > 0
),
uncovered AS (
    SELECT
        (SELECT sum(bytes) FROM census_bytes)
            / (SELECT sum(c.bytes) FROM census_bytes AS c SEMI JOIN domain_weights AS d USING (domain))
            AS factor
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
    (
        CASE
            WHEN EXISTS (SELECT 1 FROM census)
                THEN coalesce(dw.calibration, 1.0) * (SELECT factor FROM uncovered)
            ELSE w.calibration
        END / coalesce(t.inclusion_probability, 1.0)
    )::DOUBLE AS sample_weight
FROM tags_pi AS t
LEFT JOIN shard_weights AS w USING (shard)
LEFT JOIN domain_weights AS dw USING (domain)
LEFT JOIN clusters AS c USING (doc_seq)
LEFT JOIN exact_groups AS e USING (content_hash)
ORDER BY t.doc_seq;
