-- Question: for the share estimates and their intervals, what are the sufficient statistics of the
-- tagged documents, per bootstrap cluster and overall? A cluster is a block of $block_size
-- consecutive rows of one shard, since documents within a shard are not independent. Each measure
-- (tokens, dedup_tokens, bytes) has weight w = amount * sample_weight, sample_weight being how many
-- input documents a tagged one stands for. A document's posterior q for a measure is
-- p_k * r_k / sum_j p_j * r_j with r = $ratio_<measure>: all ones gives the calibrated
-- probabilities renormalised; EMQ passes its current shares over the training prior.
-- One row per cluster with `totals`: 15 weighted counts by predicted domain, then 15 totals of w q
-- (measure-major, domains in DOMAINS order). Then one summary row (cluster_index NULL) with
-- `summary`, 27 numbers per measure: the tagged amount and its weighted total (their ratio is the
-- tagged fraction of the input), sum w q (5), and the label-noise moments sum w^2 q (5) and the
-- upper triangle of sum w^2 q q^T (15, row-major). With $with_blocks false only the summary row
-- comes back: one E and M step of EMQ. analyzer/estimates/corpus_shares.py reads both, so no
-- per-document row leaves DuckDB.
WITH tagged AS (
    SELECT
        shard,
        row_index // $block_size AS block,
        array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS domain_index,
        n_tokens::DOUBLE AS amount_tokens,
        (n_tokens * (NOT is_duplicate)::INTEGER)::DOUBLE AS amount_dedup_tokens,
        n_bytes::DOUBLE AS amount_bytes,
        sample_weight::DOUBLE AS sample_weight,
        p_finance::DOUBLE AS p_finance,
        p_law::DOUBLE AS p_law,
        p_code::DOUBLE AS p_code,
        p_medical::DOUBLE AS p_medical,
        p_other::DOUBLE AS p_other
    FROM documents
),
scaled AS (
    SELECT
        shard,
        block,
        domain_index,
        amount_tokens,
        amount_dedup_tokens,
        amount_bytes,
        amount_tokens * sample_weight AS w_tokens,
        amount_dedup_tokens * sample_weight AS w_dedup_tokens,
        amount_bytes * sample_weight AS w_bytes,
        p_finance * $ratio_tokens[1] AS s_tokens_0,
        p_law * $ratio_tokens[2] AS s_tokens_1,
        p_code * $ratio_tokens[3] AS s_tokens_2,
        p_medical * $ratio_tokens[4] AS s_tokens_3,
        p_other * $ratio_tokens[5] AS s_tokens_4,
        p_finance * $ratio_dedup_tokens[1] AS s_dedup_tokens_0,
        p_law * $ratio_dedup_tokens[2] AS s_dedup_tokens_1,
        p_code * $ratio_dedup_tokens[3] AS s_dedup_tokens_2,
        p_medical * $ratio_dedup_tokens[4] AS s_dedup_tokens_3,
        p_other * $ratio_dedup_tokens[5] AS s_dedup_tokens_4,
        p_finance * $ratio_bytes[1] AS s_bytes_0,
        p_law * $ratio_bytes[2] AS s_bytes_1,
        p_code * $ratio_bytes[3] AS s_bytes_2,
        p_medical * $ratio_bytes[4] AS s_bytes_3,
        p_other * $ratio_bytes[5] AS s_bytes_4
    FROM tagged
),
posteriors AS (
    SELECT
        shard,
        block,
        domain_index,
        amount_tokens,
        amount_dedup_tokens,
        amount_bytes,
        w_tokens,
        w_dedup_tokens,
        w_bytes,
        s_tokens_0 * weight_over_tokens AS e_tokens_0,
        s_tokens_1 * weight_over_tokens AS e_tokens_1,
        s_tokens_2 * weight_over_tokens AS e_tokens_2,
        s_tokens_3 * weight_over_tokens AS e_tokens_3,
        s_tokens_4 * weight_over_tokens AS e_tokens_4,
        s_dedup_tokens_0 * weight_over_dedup_tokens AS e_dedup_tokens_0,
        s_dedup_tokens_1 * weight_over_dedup_tokens AS e_dedup_tokens_1,
        s_dedup_tokens_2 * weight_over_dedup_tokens AS e_dedup_tokens_2,
        s_dedup_tokens_3 * weight_over_dedup_tokens AS e_dedup_tokens_3,
        s_dedup_tokens_4 * weight_over_dedup_tokens AS e_dedup_tokens_4,
        s_bytes_0 * weight_over_bytes AS e_bytes_0,
        s_bytes_1 * weight_over_bytes AS e_bytes_1,
        s_bytes_2 * weight_over_bytes AS e_bytes_2,
        s_bytes_3 * weight_over_bytes AS e_bytes_3,
        s_bytes_4 * weight_over_bytes AS e_bytes_4
    FROM (
        SELECT
            *,
            w_tokens / (
                s_tokens_0 + s_tokens_1 + s_tokens_2 + s_tokens_3 + s_tokens_4
            ) AS weight_over_tokens,
            w_dedup_tokens / (
                s_dedup_tokens_0 + s_dedup_tokens_1 + s_dedup_tokens_2
                + s_dedup_tokens_3 + s_dedup_tokens_4
            ) AS weight_over_dedup_tokens,
            w_bytes / (
                s_bytes_0 + s_bytes_1 + s_bytes_2 + s_bytes_3 + s_bytes_4
            ) AS weight_over_bytes
        FROM scaled
    )
),
blocks AS (
    SELECT
        dense_rank() OVER (ORDER BY shard, block) - 1 AS cluster_index,
        [
            coalesce(sum(w_tokens) FILTER (WHERE domain_index = 0), 0),
            coalesce(sum(w_tokens) FILTER (WHERE domain_index = 1), 0),
            coalesce(sum(w_tokens) FILTER (WHERE domain_index = 2), 0),
            coalesce(sum(w_tokens) FILTER (WHERE domain_index = 3), 0),
            coalesce(sum(w_tokens) FILTER (WHERE domain_index = 4), 0),
            coalesce(sum(w_dedup_tokens) FILTER (WHERE domain_index = 0), 0),
            coalesce(sum(w_dedup_tokens) FILTER (WHERE domain_index = 1), 0),
            coalesce(sum(w_dedup_tokens) FILTER (WHERE domain_index = 2), 0),
            coalesce(sum(w_dedup_tokens) FILTER (WHERE domain_index = 3), 0),
            coalesce(sum(w_dedup_tokens) FILTER (WHERE domain_index = 4), 0),
            coalesce(sum(w_bytes) FILTER (WHERE domain_index = 0), 0),
            coalesce(sum(w_bytes) FILTER (WHERE domain_index = 1), 0),
            coalesce(sum(w_bytes) FILTER (WHERE domain_index = 2), 0),
            coalesce(sum(w_bytes) FILTER (WHERE domain_index = 3), 0),
            coalesce(sum(w_bytes) FILTER (WHERE domain_index = 4), 0),
            sum(e_tokens_0),
            sum(e_tokens_1),
            sum(e_tokens_2),
            sum(e_tokens_3),
            sum(e_tokens_4),
            sum(e_dedup_tokens_0),
            sum(e_dedup_tokens_1),
            sum(e_dedup_tokens_2),
            sum(e_dedup_tokens_3),
            sum(e_dedup_tokens_4),
            sum(e_bytes_0),
            sum(e_bytes_1),
            sum(e_bytes_2),
            sum(e_bytes_3),
            sum(e_bytes_4)
        ] AS totals
    FROM posteriors
    WHERE $with_blocks
    GROUP BY shard, block
),
overall AS (
    SELECT
        [
            sum(amount_tokens),
            sum(w_tokens),
            sum(e_tokens_0),
            sum(e_tokens_1),
            sum(e_tokens_2),
            sum(e_tokens_3),
            sum(e_tokens_4),
            sum(w_tokens * e_tokens_0),
            sum(w_tokens * e_tokens_1),
            sum(w_tokens * e_tokens_2),
            sum(w_tokens * e_tokens_3),
            sum(w_tokens * e_tokens_4),
            sum(e_tokens_0 * e_tokens_0),
            sum(e_tokens_0 * e_tokens_1),
            sum(e_tokens_0 * e_tokens_2),
            sum(e_tokens_0 * e_tokens_3),
            sum(e_tokens_0 * e_tokens_4),
            sum(e_tokens_1 * e_tokens_1),
            sum(e_tokens_1 * e_tokens_2),
            sum(e_tokens_1 * e_tokens_3),
            sum(e_tokens_1 * e_tokens_4),
            sum(e_tokens_2 * e_tokens_2),
            sum(e_tokens_2 * e_tokens_3),
            sum(e_tokens_2 * e_tokens_4),
            sum(e_tokens_3 * e_tokens_3),
            sum(e_tokens_3 * e_tokens_4),
            sum(e_tokens_4 * e_tokens_4),
            sum(amount_dedup_tokens),
            sum(w_dedup_tokens),
            sum(e_dedup_tokens_0),
            sum(e_dedup_tokens_1),
            sum(e_dedup_tokens_2),
            sum(e_dedup_tokens_3),
            sum(e_dedup_tokens_4),
            sum(w_dedup_tokens * e_dedup_tokens_0),
            sum(w_dedup_tokens * e_dedup_tokens_1),
            sum(w_dedup_tokens * e_dedup_tokens_2),
            sum(w_dedup_tokens * e_dedup_tokens_3),
            sum(w_dedup_tokens * e_dedup_tokens_4),
            sum(e_dedup_tokens_0 * e_dedup_tokens_0),
            sum(e_dedup_tokens_0 * e_dedup_tokens_1),
            sum(e_dedup_tokens_0 * e_dedup_tokens_2),
            sum(e_dedup_tokens_0 * e_dedup_tokens_3),
            sum(e_dedup_tokens_0 * e_dedup_tokens_4),
            sum(e_dedup_tokens_1 * e_dedup_tokens_1),
            sum(e_dedup_tokens_1 * e_dedup_tokens_2),
            sum(e_dedup_tokens_1 * e_dedup_tokens_3),
            sum(e_dedup_tokens_1 * e_dedup_tokens_4),
            sum(e_dedup_tokens_2 * e_dedup_tokens_2),
            sum(e_dedup_tokens_2 * e_dedup_tokens_3),
            sum(e_dedup_tokens_2 * e_dedup_tokens_4),
            sum(e_dedup_tokens_3 * e_dedup_tokens_3),
            sum(e_dedup_tokens_3 * e_dedup_tokens_4),
            sum(e_dedup_tokens_4 * e_dedup_tokens_4),
            sum(amount_bytes),
            sum(w_bytes),
            sum(e_bytes_0),
            sum(e_bytes_1),
            sum(e_bytes_2),
            sum(e_bytes_3),
            sum(e_bytes_4),
            sum(w_bytes * e_bytes_0),
            sum(w_bytes * e_bytes_1),
            sum(w_bytes * e_bytes_2),
            sum(w_bytes * e_bytes_3),
            sum(w_bytes * e_bytes_4),
            sum(e_bytes_0 * e_bytes_0),
            sum(e_bytes_0 * e_bytes_1),
            sum(e_bytes_0 * e_bytes_2),
            sum(e_bytes_0 * e_bytes_3),
            sum(e_bytes_0 * e_bytes_4),
            sum(e_bytes_1 * e_bytes_1),
            sum(e_bytes_1 * e_bytes_2),
            sum(e_bytes_1 * e_bytes_3),
            sum(e_bytes_1 * e_bytes_4),
            sum(e_bytes_2 * e_bytes_2),
            sum(e_bytes_2 * e_bytes_3),
            sum(e_bytes_2 * e_bytes_4),
            sum(e_bytes_3 * e_bytes_3),
            sum(e_bytes_3 * e_bytes_4),
            sum(e_bytes_4 * e_bytes_4)
        ] AS summary
    FROM posteriors
)
SELECT cluster_index, totals, NULL::DOUBLE[] AS summary FROM blocks
UNION ALL
SELECT NULL, NULL, summary FROM overall
ORDER BY cluster_index NULLS LAST;
