-- Question: per bootstrap cluster (a block of $block_size consecutive rows of one shard, since
-- documents within a shard are not independent) and per predicted domain, how many tokens, bytes
-- and probability-weighted tokens are there, raw and deduplicated? Weighted by each document's
-- sample_weight so sampled runs estimate the full input. The estimator code pivots this long
-- table into (cluster x domain) matrices.
SELECT
    dense_rank() OVER (ORDER BY shard, row_index // $block_size) - 1 AS cluster_index,
    domain,
    sum(n_tokens * sample_weight) AS tokens,
    sum(n_bytes * sample_weight) AS bytes,
    coalesce(sum(n_tokens * sample_weight) FILTER (WHERE NOT is_duplicate), 0) AS dedup_tokens,
    sum(n_tokens * sample_weight * p_finance) AS p_finance_tokens,
    sum(n_tokens * sample_weight * p_law) AS p_law_tokens,
    sum(n_tokens * sample_weight * p_code) AS p_code_tokens,
    sum(n_tokens * sample_weight * p_medical) AS p_medical_tokens,
    sum(n_tokens * sample_weight * p_other) AS p_other_tokens
FROM documents
GROUP BY shard, row_index // $block_size, domain
ORDER BY cluster_index, domain;
