-- Question: at given prior ratios, what is each group's sum of w q_k per measure — one E and M
-- step of EMQ? The lean counterpart of sql/11_share_blocks.sql, which EMQ would otherwise run once
-- per step: the same groups (`documents_in_groups`), weights w and posteriors
-- q_k = p_k r_k / sum_j p_j r_j (r from the caller's relation `share_ratios(grouping, group_value,
-- measure, r)`, all ones where there is none), but no clusters, label noise or design sums, and no
-- row per domain: one row per (grouping, group_value, measure) with total_weight (sum of w) and
-- posterior_sums (the list of sum of w q_k over the 5 domains in DOMAINS order).
WITH measures AS (  -- MEASURES order: tokens, dedup_tokens, bytes
    SELECT unnest(range(3)) AS measure
),
weighted AS (  -- one row per document, group and measure: w and p_k r_k as five columns
    SELECT
        grouping,
        group_value,
        measure,
        measure_weight(measure, n_tokens, n_bytes, is_duplicate, sample_weight) AS w,
        p_finance::DOUBLE * coalesce(share_ratios.r[1], 1.0) AS pr_0,
        p_law::DOUBLE * coalesce(share_ratios.r[2], 1.0) AS pr_1,
        p_code::DOUBLE * coalesce(share_ratios.r[3], 1.0) AS pr_2,
        p_medical::DOUBLE * coalesce(share_ratios.r[4], 1.0) AS pr_3,
        p_other::DOUBLE * coalesce(share_ratios.r[5], 1.0) AS pr_4
    FROM documents_in_groups($groupings)
    CROSS JOIN measures
    LEFT JOIN share_ratios USING (grouping, group_value, measure)
),
posteriors AS (
    SELECT *, w / (pr_0 + pr_1 + pr_2 + pr_3 + pr_4) AS w_per_pr FROM weighted
)
SELECT
    grouping,
    group_value,
    measure,
    sum(w) AS total_weight,
    [sum(pr_0 * w_per_pr), sum(pr_1 * w_per_pr), sum(pr_2 * w_per_pr), sum(pr_3 * w_per_pr),
     sum(pr_4 * w_per_pr)] AS posterior_sums
FROM posteriors
GROUP BY grouping, group_value, measure;
