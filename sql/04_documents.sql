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
-- per shard, predicted domain, dump and source in `census(shard, domain, dump, source, docs,
-- bytes)`, and the weights are calibrated per cell c = (predicted domain, dump, source) of the whole
-- input instead: (1 / pi) * B_c / sum(n_bytes / pi) over the tagged documents of c, B_c being the
-- bytes of every document of c (tagged or census), so each cell's weighted bytes equal the census's
-- (post-stratification: a token total becomes B_c times the sample's tokens per byte in c), and so
-- do each predicted domain's, each dump's and each source's. Bytes of a cell no tagged document
-- holds are spread over the domain's other cells (`domain_spread`: the domain's total still holds,
-- that dump's or source's share of it reads low); bytes of a domain no tagged document holds, or of
-- documents the model failed on, over every document (`uncovered`), so the weighted bytes still add
-- up to all bytes read.
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
cell_bytes AS (  -- per (predicted domain, dump, source): bytes of every document the model read
    SELECT domain, dump, source, sum(bytes) AS bytes
    FROM (
        SELECT domain, dump, source, n_bytes AS bytes FROM tags
        UNION ALL
        SELECT domain, dump, source, bytes FROM census
    )
    GROUP BY ALL
),
cell_weights AS (  -- the cells some tagged document carries: B_c / sum(n_bytes / pi)
    SELECT c.domain, c.dump, c.source, c.bytes, c.bytes / s.weighted_bytes AS calibration
    FROM cell_bytes AS c
    JOIN (
        SELECT domain, dump, source, sum(n_bytes / coalesce(inclusion_probability, 1.0)) AS weighted_bytes
        FROM tags_pi
        GROUP BY ALL
    ) AS s
        ON c.domain = s.domain AND c.dump IS NOT DISTINCT FROM s.dump AND c.source IS NOT DISTINCT FROM s.source
    WHERE s.weighted_bytes > 0
),
domain_spread AS (  -- a domain's bytes over those of its carried cells (the others spread over them)
    SELECT w.domain, t.bytes / sum(w.bytes) AS factor
    FROM cell_weights AS w
    JOIN (SELECT domain, sum(bytes) AS bytes FROM cell_bytes GROUP BY domain) AS t USING (domain)
    GROUP BY w.domain, t.bytes
),
uncovered AS (  -- all bytes over those of the carried domains (the rest spread over every document)
    SELECT
        (SELECT sum(bytes) FROM cell_bytes)
            / (SELECT sum(c.bytes) FROM cell_bytes AS c SEMI JOIN domain_spread AS d USING (domain))
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
                THEN coalesce(cw.calibration, 1.0) * coalesce(ds.factor, 1.0) * (SELECT factor FROM uncovered)
            ELSE w.calibration
        END / coalesce(t.inclusion_probability, 1.0)
    )::DOUBLE AS sample_weight
FROM tags_pi AS t
LEFT JOIN shard_weights AS w USING (shard)
LEFT JOIN cell_weights AS cw
    ON t.domain = cw.domain AND t.dump IS NOT DISTINCT FROM cw.dump AND t.source IS NOT DISTINCT FROM cw.source
LEFT JOIN domain_spread AS ds ON t.domain = ds.domain
LEFT JOIN clusters AS c USING (doc_seq)
LEFT JOIN exact_groups AS e USING (content_hash)
ORDER BY t.doc_seq;
