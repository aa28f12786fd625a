-- Question: for the share estimates and their intervals, what are the sufficient statistics of the
-- tagged documents, per bootstrap cluster and over the whole input — or over each group of it? A
-- cluster is a block of $block_size consecutive rows of one shard, since documents within a shard
-- are not independent. Each measure (tokens, dedup_tokens, bytes) weighs a document by
-- w = amount * sample_weight (`measure_weight`, sql/04b_measure_weights.sql), sample_weight being how
-- many input documents a tagged one stands for.
-- Its posterior for domain k is q_k = p_k r_k / sum_j p_j r_j with r the row of the caller's
-- relation `share_ratios(grouping, group_value, measure, r)` for its group and measure, all ones
-- where there is none (the calibrated probabilities renormalised); EMQ's final shares over the
-- training prior when the estimator reads EMQ's posteriors (its steps run sql/11b_posterior_sums.sql).
-- Groups: $groupings lists the grouping columns, 'all' (the whole input, group_value 'all'),
-- 'dump' or 'source'; a document is in the group of its value of each, '(none)' where that is NULL
-- (`documents_in_groups`, sql/04a_document_groups.sql; the caller skips a grouping column that is
-- NULL for every document).
-- Every group is aggregated in the same pass, its statistics exactly those of its documents alone.
-- Long rows (statistic, grouping, group_value, measure, cluster_index, k, l, value): measure
-- indexes MEASURES and k, l index DOMAINS, from 0; cluster_index numbers a group's clusters in
-- (shard, block) order.
--   counts            per cluster and k: sum of w over the documents predicted k
--   posterior_totals  per cluster and k: sum of w q_k
--   total_weight      sum of w
--   unsure_weight     sum of w over documents whose top calibrated probability p (not q) is below
--                     $unsure_threshold: how unfamiliar the text reads (analyzer/estimates/source_shift.py)
--   noise_diagonal    per k: sum of W^2 Q_k / S       } the label-noise covariance, over
--   noise_outer       per k <= l: sum of W^2 Q_k Q_l / S } near-duplicate clusters (see below)
--   squared_weight           per predicted k: sum of w^2      } the design's sampling fraction
--   included_squared_weight  per predicted k: sum of pi w^2   } (analyzer/sampler.py design_sampling_fraction)
--   stratum_posterior_totals  with $strata, per cluster, predicted k and domain l: sum of w q_l
--                             (the posterior totals split by predicted domain, so a bootstrap
--                             replicate can be re-calibrated to a census, analyzer/estimates)
--   stratum_sizes      with $strata, per cluster and predicted k (measure NULL): sum of
--                      sample_weight x calibration_size, the variable the census fixed (sql/04)
-- (pi = min(1, 1 / sample_weight), the inclusion probability). Label noise treats a near-duplicate
-- cluster (`cluster_id`) as one text: its members are the same words, so the model misreads all of
-- them or none. W is a cluster's sum of w in the group, Q its w-weighted mean posterior and S its
-- w-weighted mean sample_weight; for a document without duplicates that is w^2 q_k / s, as if every
-- document were misread independently. The label noise at stake is the input's (whether its texts
-- are misread), whose variance sum a^2 q (1 - q) over the input's texts (a the amount) a sample
-- estimates by Horvitz-Thompson, sum s a^2 q (1 - q) = sum w^2 q (1 - q) / s over the tagged ones;
-- w^2 alone would count each tagged text's misreading s times over (sampling is the bootstrap's).
-- analyzer/estimates/corpus_shares.py reshapes the rows; no per-document row leaves DuckDB.
WITH measures AS (  -- MEASURES order: tokens, dedup_tokens, bytes
    SELECT unnest(range(3)) AS measure
),
grouped AS NOT MATERIALIZED (  -- one row per document and group it belongs to (sql/04a)
    SELECT
        grouping,
        group_value,
        shard,
        row_index,
        cluster_id,
        domain,
        n_tokens,
        n_bytes,
        is_duplicate,
        sample_weight,
        calibration_size,
        p_finance,
        p_law,
        p_code,
        p_medical,
        p_other
    FROM documents_in_groups($groupings)
),
-- NOT MATERIALIZED: recomputing these for each reader is cheaper than storing them
weighted AS NOT MATERIALIZED (  -- one row per document, group and measure
    SELECT *, w / list_inner_product(p, r) AS w_per_pr
    FROM (
        SELECT
            grouping,
            group_value,
            shard,
            row_index // $block_size AS block,
            cluster_id,
            array_position(['finance', 'law', 'code', 'medical', 'other'], domain) - 1 AS predicted,
            measure,
            measure_weight(measure, n_tokens, n_bytes, is_duplicate, sample_weight) AS w,
            sample_weight::DOUBLE AS sample_weight,
            calibration_size::DOUBLE AS calibration_size,
            CASE WHEN sample_weight > 0 THEN least(1.0, 1.0 / sample_weight::DOUBLE) ELSE 1.0 END AS pi,
            [p_finance, p_law, p_code, p_medical, p_other]::DOUBLE[] AS p,
            coalesce(share_ratios.r::DOUBLE[], [1.0, 1.0, 1.0, 1.0, 1.0]::DOUBLE[]) AS r
        FROM grouped
        CROSS JOIN measures
        LEFT JOIN share_ratios USING (grouping, group_value, measure)
    )
),
posteriors AS NOT MATERIALIZED (  -- one row per document, group, measure and domain k: wq = w q_k
    SELECT *, p_k * r_k * w_per_pr AS wq
    FROM (SELECT *, unnest(range(5)) AS k, unnest(p) AS p_k, unnest(r) AS r_k FROM weighted)
),
clusters AS (
    SELECT
        grouping,
        group_value,
        measure,
        dense_rank() OVER (PARTITION BY grouping, group_value ORDER BY shard, block) - 1 AS cluster_index,
        k,
        coalesce(sum(w) FILTER (WHERE predicted = k), 0) AS counts,
        sum(wq) AS posterior_totals
    FROM posteriors
    GROUP BY grouping, group_value, shard, block, measure, k
),
strata AS (  -- only with $strata: the same clusters as `clusters`, split by predicted domain
    SELECT
        grouping,
        group_value,
        measure,
        dense_rank() OVER (PARTITION BY grouping, group_value ORDER BY shard, block) - 1 AS cluster_index,
        predicted AS k,
        k AS l,
        sum(wq) AS stratum_posterior_totals
    FROM posteriors
    WHERE $strata
    GROUP BY grouping, group_value, shard, block, measure, predicted, k
),
stratum_sizes AS (  -- only with $strata: per cluster and predicted domain, what the census fixed
    SELECT
        grouping,
        group_value,
        dense_rank() OVER (PARTITION BY grouping, group_value ORDER BY shard, block) - 1 AS cluster_index,
        predicted AS k,
        sum(sample_weight * calibration_size) AS stratum_sizes
    FROM weighted
    WHERE $strata AND measure = 0  -- one row per document
    GROUP BY grouping, group_value, shard, block, predicted
),
duplicate_sets AS (  -- per near-duplicate cluster in a group, measure and k: W, W Q_k and W / S
    SELECT
        grouping,
        group_value,
        measure,
        cluster_id,
        k,
        sum(w) AS w_set,
        sum(wq) AS wq_set,
        CASE WHEN sum(w * sample_weight) > 0 THEN sum(w) * sum(w) / sum(w * sample_weight) ELSE 0 END
            AS w_per_s_set
    FROM posteriors
    GROUP BY grouping, group_value, measure, cluster_id, k
),
noise_diagonal AS (
    SELECT grouping, group_value, measure, k, sum(w_per_s_set * wq_set) AS noise_diagonal
    FROM duplicate_sets
    GROUP BY grouping, group_value, measure, k
),
noise_outer AS (  -- each domain k paired with every l >= k of the same cluster and measure
    SELECT
        a.grouping,
        a.group_value,
        a.measure,
        a.k,
        b.k AS l,
        sum(CASE WHEN a.w_set > 0 THEN a.wq_set * b.wq_set * a.w_per_s_set / a.w_set ELSE 0 END) AS noise_outer
    FROM duplicate_sets AS a
    JOIN duplicate_sets AS b USING (grouping, group_value, measure, cluster_id)
    WHERE a.k <= b.k
    GROUP BY a.grouping, a.group_value, a.measure, a.k, b.k
),
design AS (  -- per predicted domain: the sums the design's sampling fraction needs
    SELECT
        grouping,
        group_value,
        measure,
        predicted AS k,
        sum(w * w) AS squared_weight,
        sum(pi * w * w) AS included_squared_weight
    FROM weighted
    WHERE predicted IS NOT NULL
    GROUP BY grouping, group_value, measure, predicted
)
SELECT statistic, grouping, group_value, measure, cluster_index, k, NULL AS l, value
FROM (UNPIVOT clusters ON counts, posterior_totals INTO NAME statistic VALUE value)
UNION ALL
SELECT 'stratum_posterior_totals', grouping, group_value, measure, cluster_index, k, l, stratum_posterior_totals
FROM strata
UNION ALL
SELECT 'stratum_sizes', grouping, group_value, NULL, cluster_index, k, NULL, stratum_sizes
FROM stratum_sizes
UNION ALL
SELECT 'noise_diagonal', grouping, group_value, measure, NULL, k, NULL, noise_diagonal FROM noise_diagonal
UNION ALL
SELECT 'total_weight', grouping, group_value, measure, NULL, NULL, NULL, sum(w)
FROM weighted
GROUP BY grouping, group_value, measure
UNION ALL
SELECT 'unsure_weight', grouping, group_value, measure, NULL, NULL, NULL,
    coalesce(sum(w) FILTER (WHERE list_max(p) < $unsure_threshold), 0)
FROM weighted
GROUP BY grouping, group_value, measure
UNION ALL
SELECT 'noise_outer', grouping, group_value, measure, NULL, k, l, noise_outer FROM noise_outer
UNION ALL
SELECT statistic, grouping, group_value, measure, NULL, k, NULL, value
FROM (UNPIVOT design ON squared_weight, included_squared_weight INTO NAME statistic VALUE value);
