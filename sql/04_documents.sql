-- Question: one row per document read and tagged, with its near-duplicate cluster.
-- `clusters(doc_seq, cluster_id)` is registered by the caller from union-find. cluster_id is the
-- smallest doc_seq in the cluster, and that document is the cluster's representative: every other
-- member has is_duplicate = true. dup_kind says why a duplicate was marked: 'exact' when its
-- normalised text equals another member's, 'near' when only MinHash linked it, else 'none'.
-- In a sample with the census (--classify-all) and dedup, a tagged document is also a duplicate,
-- 'exact', when a document the sample left out has the same content hash and was read before it
-- (`skipped.content_hash`): the whole input's first copy is the representative, so whether a
-- tagged text counts in the dedup measure does not depend on which copies the sample drew, and its
-- weighted dedup tokens estimate the whole input's (Horvitz-Thompson). Near-duplicates are still
-- found among the tagged documents only.
-- sample_weight is how many input documents each tagged one stands for: the inverse of its
-- inclusion probability pi (Horvitz-Thompson; pi from analyzer/sampler.py, 1 in tags written before
-- it was recorded), times its shard's calibration (tagged + not sampled) / sum(1 / pi) so the
-- weights add up to the shard's documents read and tagged. With equal pi (a Bernoulli sample,
-- --max-docs-per-shard, or no sampling) that is (tagged + not sampled) / tagged, and 1 when
-- nothing was sampled out (needs `skipped` and `census` built first).
-- With --classify-all (two-phase sampling) the model also read every sampled-out document, counted
-- per shard, predicted domain, dump and source in `census(shard, domain, dump, source, docs, bytes,
-- shard_tokens, shard_token_docs)`, and the weights are calibrated per cell c = (predicted domain,
-- dump, source) of the whole input instead: (1 / pi) * B_c / sum(x / pi) over the tagged documents
-- of c, B_c the bytes of every document of c (tagged or census) and x a document's
-- `calibration_size`: its bytes, or, when every document of c carries its shard's own token count
-- (e.g. FineWeb's GPT-2 `token_count`) and over all tagged documents those counts predict the run's
-- tokens better than bytes do (FineWeb's: 2.5-4 times smaller residuals), that count times the
-- cell's bytes per shard token (exact, from the census: the sum of x over the cell is B_c either
-- way, and the bootstrap can re-calibrate a domain's cells in one unit). One decision for the whole
-- input: decided per dump on a sample's few documents, a long page the shard counts misread
-- flipped some dumps to bytes (per-dump shares 0.89 points rms off a full run's against 0.35). So
-- each cell's weighted x equals the census's (post-stratification: a token total becomes B_c times
-- the sample's tokens per unit of x in c), and so do each predicted domain's, each dump's and each
-- source's. Bytes of a cell no tagged document holds are spread over the domain's other cells
-- (`domain_spread`: the domain's total still holds, that dump's or source's share of it reads low);
-- bytes of a domain no tagged document holds, or of documents the model failed on, over every
-- document (`uncovered`), so nothing read goes unweighted (where x is bytes, the weighted bytes add
-- up to all bytes read).
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
copied_before AS (  -- tagged documents with an exact copy the sample left out, read before them
    SELECT DISTINCT t.doc_seq
    FROM tags AS t
    JOIN skipped AS s
        ON s.content_hash = t.content_hash
        AND (s.shard < t.shard OR (s.shard = t.shard AND s.row_index < t.row_index))
    WHERE s.reason = 'not_sampled' AND s.content_hash IS NOT NULL
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
cell_totals AS (  -- per (predicted domain, dump, source): every document the model read
    SELECT
        domain,
        dump,
        source,
        sum(docs) AS docs,
        sum(bytes) AS bytes,
        sum(shard_tokens) AS shard_tokens,
        sum(shard_token_docs) AS shard_token_docs
    FROM (
        SELECT
            domain,
            dump,
            source,
            1 AS docs,
            n_bytes AS bytes,
            coalesce(shard_token_count, 0) AS shard_tokens,
            (shard_token_count IS NOT NULL)::INTEGER AS shard_token_docs
        FROM tags
        UNION ALL
        SELECT domain, dump, source, docs, bytes, shard_tokens, shard_token_docs FROM census
    )
    GROUP BY ALL
),
shard_token_fit AS (  -- do the shards' own token counts predict the run's better than bytes do?
    -- over the tagged documents carrying one, each variable's ratio fitted per predicted domain
    SELECT coalesce(sum((n_tokens - by_shard * shard_token_count) ** 2) < sum((n_tokens - by_byte * n_bytes) ** 2), false)
        AS better
    FROM tags
    JOIN (
        SELECT domain, sum(n_tokens) / sum(shard_token_count) AS by_shard, sum(n_tokens) / sum(n_bytes) AS by_byte
        FROM tags
        WHERE shard_token_count > 0
        GROUP BY domain
    ) USING (domain)
    WHERE shard_token_count > 0
),
cell_sizes AS (  -- a cell's calibration variable: the shard's token counts if all carry one and fit
    SELECT c.*, c.shard_token_docs = c.docs AND c.shard_tokens > 0 AND f.better AS by_shard_tokens
    FROM cell_totals AS c
    CROSS JOIN shard_token_fit AS f
),
sized AS (  -- every tagged document with its cell's calibration variable, in bytes (see above)
    SELECT
        t.*,
        (
            CASE WHEN c.by_shard_tokens THEN t.shard_token_count * c.bytes / c.shard_tokens ELSE t.n_bytes END
        )::DOUBLE AS calibration_size
    FROM tags_pi AS t
    LEFT JOIN cell_sizes AS c
        ON t.domain = c.domain AND t.dump IS NOT DISTINCT FROM c.dump AND t.source IS NOT DISTINCT FROM c.source
),
cell_weights AS (  -- the cells some tagged document carries: X_c / sum(x / pi)
    SELECT c.domain, c.dump, c.source, c.bytes, c.bytes / s.weighted_size AS calibration
    FROM cell_sizes AS c
    JOIN (
        SELECT domain, dump, source, sum(calibration_size / coalesce(inclusion_probability, 1.0)) AS weighted_size
        FROM sized
        GROUP BY ALL
    ) AS s
        ON c.domain = s.domain AND c.dump IS NOT DISTINCT FROM s.dump AND c.source IS NOT DISTINCT FROM s.source
    WHERE s.weighted_size > 0
),
domain_spread AS (  -- a domain's bytes over those of its carried cells (the others spread over them)
    SELECT w.domain, t.bytes / sum(w.bytes) AS factor
    FROM cell_weights AS w
    JOIN (SELECT domain, sum(bytes) AS bytes FROM cell_sizes GROUP BY domain) AS t USING (domain)
    GROUP BY w.domain, t.bytes
),
uncovered AS (  -- all bytes over those of the carried domains (the rest spread over every document)
    SELECT
        (SELECT sum(bytes) FROM cell_sizes)
            / (SELECT sum(c.bytes) FROM cell_sizes AS c SEMI JOIN domain_spread AS d USING (domain))
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
    coalesce(c.cluster_id, t.doc_seq) <> t.doc_seq OR cb.doc_seq IS NOT NULL AS is_duplicate,
    CASE
        WHEN cb.doc_seq IS NOT NULL THEN 'exact'
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
    )::DOUBLE AS sample_weight,
    t.calibration_size
FROM sized AS t
LEFT JOIN shard_weights AS w USING (shard)
LEFT JOIN cell_weights AS cw
    ON t.domain = cw.domain AND t.dump IS NOT DISTINCT FROM cw.dump AND t.source IS NOT DISTINCT FROM cw.source
LEFT JOIN domain_spread AS ds ON t.domain = ds.domain
LEFT JOIN clusters AS c USING (doc_seq)
LEFT JOIN exact_groups AS e USING (content_hash)
LEFT JOIN copied_before AS cb ON cb.doc_seq = t.doc_seq
ORDER BY t.doc_seq;
