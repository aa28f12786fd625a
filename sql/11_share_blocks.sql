-- Question: for the share estimates and their intervals, what are the sufficient statistics of the
-- tagged documents, per bootstrap cluster and over the whole input? A cluster is a block of
-- $block_size consecutive rows of one shard, since documents within a shard are not independent.
-- Each measure (tokens, dedup_tokens, bytes) weighs a document by w = amount * sample_weight,
-- sample_weight being how many input documents a tagged one stands for. Its posterior for domain k
-- is q_k = p_k r_k / sum_j p_j r_j with r = $ratio_<measure>: all ones gives the calibrated
-- probabilities renormalised; EMQ passes its current shares over the training prior.
-- Long rows (statistic, measure, cluster_index, k, l, value): measure indexes MEASURES and k, l
-- index DOMAINS, from 0; cluster_index numbers the clusters in (shard, block) order.
--   counts            per cluster and k: sum of w over the documents predicted k
--   posterior_totals  per cluster and k: sum of w q_k
--   posterior_sums    per k: sum of w q_k over the whole input
--   total_weight      sum of w
--   noise_diagonal    per k: sum of w^2 q_k           } the label-noise covariance
--   noise_outer       per k <= l: sum of w^2 q_k q_l  }
-- With $with_blocks false only posterior_sums and total_weight come back: one E and M step of EMQ.
-- analyzer/estimates/corpus_shares.py reshapes the rows; no per-document row leaves DuckDB.
WITH measures (measure, name, r) AS (
    VALUES (0, 'tokens', $ratio_tokens), (1, 'dedup_tokens', $ratio_dedup_tokens), (2, 'bytes', $ratio_bytes)
),
-- NOT MATERIALIZED: recomputing these for each reader is cheaper than storing them
weighted AS NOT MATERIALIZED (  -- one row per document and measure
    SELECT *, w / list_inner_product(p, r) AS w_per_pr
    FROM (
        SELECT
            shard,
            row_index // $block_size AS block,
            array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS predicted,
            measure,
            CASE name
                WHEN 'tokens' THEN n_tokens
                WHEN 'dedup_tokens' THEN n_tokens * (NOT is_duplicate)::INTEGER
                WHEN 'bytes' THEN n_bytes
            END::DOUBLE * sample_weight::DOUBLE AS w,
            [p_finance, p_law, p_code, p_medical, p_other]::DOUBLE[] AS p,
            r
        FROM documents CROSS JOIN measures
    )
),
posteriors AS NOT MATERIALIZED (  -- one row per document, measure and domain k: wq = w q_k
    SELECT *, p_k * r_k * w_per_pr AS wq
    FROM (SELECT *, unnest(range(5)) AS k, unnest(p) AS p_k, unnest(r) AS r_k FROM weighted)
),
clusters AS (
    SELECT
        measure,
        dense_rank() OVER (ORDER BY shard, block) - 1 AS cluster_index,
        k,
        coalesce(sum(w) FILTER (WHERE predicted = k), 0) AS counts,
        sum(wq) AS posterior_totals
    FROM posteriors
    WHERE $with_blocks
    GROUP BY shard, block, measure, k
),
whole_input AS (
    SELECT measure, k, sum(wq) AS posterior_sums, sum(w * wq) AS noise_diagonal
    FROM posteriors
    GROUP BY measure, k
),
noise_outer AS (  -- each domain k paired with every l >= k of the same document and measure
    SELECT measure, k, l, sum(wq * p_l * r_l * w_per_pr) AS noise_outer
    FROM (SELECT *, unnest(range(5)) AS l, unnest(p) AS p_l, unnest(r) AS r_l FROM posteriors)
    WHERE $with_blocks AND k <= l
    GROUP BY measure, k, l
)
SELECT statistic, measure, cluster_index, k, NULL AS l, value
FROM (UNPIVOT clusters ON counts, posterior_totals INTO NAME statistic VALUE value)
UNION ALL
SELECT statistic, measure, NULL, k, NULL, value
FROM (UNPIVOT whole_input ON posterior_sums, noise_diagonal INTO NAME statistic VALUE value)
WHERE $with_blocks OR statistic = 'posterior_sums'
UNION ALL
SELECT 'total_weight', measure, NULL, NULL, NULL, sum(w) FROM weighted GROUP BY measure
UNION ALL
SELECT 'noise_outer', measure, NULL, k, l, noise_outer FROM noise_outer;
