-- Question: for the share estimates and their intervals, what does each tagged document weigh and
-- which bootstrap cluster is it in? A cluster is a block of $block_size consecutive rows of one
-- shard, since documents within a shard are not independent. sample_weight is how many input
-- documents it stands for (sampled runs), so the tagged fraction of the input is
-- sum(tokens) / sum(tokens * sample_weight). analyzer/estimates/corpus_shares.py estimates the
-- shares from the predicted domain and the calibrated probabilities (p_*).
SELECT
    dense_rank() OVER (ORDER BY shard, row_index // $block_size) - 1 AS cluster_index,
    array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS domain_index,
    n_tokens::DOUBLE AS tokens,
    (n_tokens * (NOT is_duplicate)::INTEGER)::DOUBLE AS dedup_tokens,
    n_bytes::DOUBLE AS bytes,
    sample_weight::DOUBLE AS sample_weight,
    p_finance::DOUBLE AS p_finance,
    p_law::DOUBLE AS p_law,
    p_code::DOUBLE AS p_code,
    p_medical::DOUBLE AS p_medical,
    p_other::DOUBLE AS p_other
FROM documents
ORDER BY doc_seq;
