-- Question: per bootstrap cluster (a block of $block_size consecutive rows of one shard, since
-- documents within a shard are not independent) and per predicted domain, how many tokens,
-- deduplicated tokens and bytes are there, and how are they spread over the model's
-- probabilities (p_<domain>_<measure>, for probabilistic estimators)? Weighted by each document's
-- sample_weight so sampled runs estimate the full input. analyzer/estimates/corpus_shares.py
-- pivots this long table into (cluster x domain) matrices.
SELECT
    dense_rank() OVER (ORDER BY shard, row_index // $block_size) - 1 AS cluster_index,
    domain,
    sum(n_tokens * sample_weight) AS tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER) AS dedup_tokens,
    sum(n_bytes * sample_weight) AS bytes,
    sum(n_tokens * sample_weight * p_finance) AS p_finance_tokens,
    sum(n_tokens * sample_weight * p_law) AS p_law_tokens,
    sum(n_tokens * sample_weight * p_code) AS p_code_tokens,
    sum(n_tokens * sample_weight * p_medical) AS p_medical_tokens,
    sum(n_tokens * sample_weight * p_other) AS p_other_tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER * p_finance) AS p_finance_dedup_tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER * p_law) AS p_law_dedup_tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER * p_code) AS p_code_dedup_tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER * p_medical) AS p_medical_dedup_tokens,
    sum(n_tokens * sample_weight * (NOT is_duplicate)::INTEGER * p_other) AS p_other_dedup_tokens,
    sum(n_bytes * sample_weight * p_finance) AS p_finance_bytes,
    sum(n_bytes * sample_weight * p_law) AS p_law_bytes,
    sum(n_bytes * sample_weight * p_code) AS p_code_bytes,
    sum(n_bytes * sample_weight * p_medical) AS p_medical_bytes,
    sum(n_bytes * sample_weight * p_other) AS p_other_bytes
FROM documents
GROUP BY shard, row_index // $block_size, domain
ORDER BY cluster_index, domain;
