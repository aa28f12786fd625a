-- Question: for the finite-population factor sqrt(1 - f) of the input-level share intervals, what
-- is f under the run's sampling design? Per measure (tokens, dedup_tokens, bytes) and predicted
-- domain d, with wy = amount * sample_weight, inclusion probability pi = min(1, 1 / sample_weight),
-- share R = sum wy [domain = d] / sum wy and residual e = wy ([domain = d] - R):
-- f_d = sum pi e^2 / sum e^2, the part of the cluster bootstrap's with-replacement variance sum e^2
-- that a Poisson sample does not have about its input, sum (1 - pi) e^2; f is the smallest f_d
-- (analyzer/sampler.py design_sampling_fraction). sum e^2 over all documents is
-- q_d (1 - R)^2 + (Q - q_d) R^2 with q_d = sum wy^2 over domain d and Q over all, likewise with pi.
-- 1 when every document was tagged; NULL when nothing carries weight.
WITH weighted AS (
    SELECT
        domain,
        least(1.0, 1.0 / sample_weight) AS pi,
        n_tokens * sample_weight AS wy_tokens,
        n_tokens * (NOT is_duplicate)::INTEGER * sample_weight AS wy_dedup_tokens,
        n_bytes * sample_weight AS wy_bytes
    FROM documents
    WHERE sample_weight > 0
),
by_domain AS (
    SELECT
        domain,
        sum(wy_tokens) AS s_tokens,
        sum(wy_tokens * wy_tokens) AS q_tokens,
        sum(pi * wy_tokens * wy_tokens) AS p_tokens,
        sum(wy_dedup_tokens) AS s_dedup_tokens,
        sum(wy_dedup_tokens * wy_dedup_tokens) AS q_dedup_tokens,
        sum(pi * wy_dedup_tokens * wy_dedup_tokens) AS p_dedup_tokens,
        sum(wy_bytes) AS s_bytes,
        sum(wy_bytes * wy_bytes) AS q_bytes,
        sum(pi * wy_bytes * wy_bytes) AS p_bytes
    FROM weighted
    GROUP BY domain
),
shares AS (
    SELECT
        *,
        s_tokens / nullif(sum(s_tokens) OVER (), 0) AS r_tokens,
        sum(q_tokens) OVER () AS qq_tokens,
        sum(p_tokens) OVER () AS pp_tokens,
        s_dedup_tokens / nullif(sum(s_dedup_tokens) OVER (), 0) AS r_dedup_tokens,
        sum(q_dedup_tokens) OVER () AS qq_dedup_tokens,
        sum(p_dedup_tokens) OVER () AS pp_dedup_tokens,
        s_bytes / nullif(sum(s_bytes) OVER (), 0) AS r_bytes,
        sum(q_bytes) OVER () AS qq_bytes,
        sum(p_bytes) OVER () AS pp_bytes
    FROM by_domain
)
SELECT
    min(
        (p_tokens * pow(1 - r_tokens, 2) + (pp_tokens - p_tokens) * pow(r_tokens, 2))
        / nullif(q_tokens * pow(1 - r_tokens, 2) + (qq_tokens - q_tokens) * pow(r_tokens, 2), 0)
    ) AS tokens,
    min(
        (p_dedup_tokens * pow(1 - r_dedup_tokens, 2) + (pp_dedup_tokens - p_dedup_tokens) * pow(r_dedup_tokens, 2))
        / nullif(
            q_dedup_tokens * pow(1 - r_dedup_tokens, 2) + (qq_dedup_tokens - q_dedup_tokens) * pow(r_dedup_tokens, 2),
            0
        )
    ) AS dedup_tokens,
    min(
        (p_bytes * pow(1 - r_bytes, 2) + (pp_bytes - p_bytes) * pow(r_bytes, 2))
        / nullif(q_bytes * pow(1 - r_bytes, 2) + (qq_bytes - q_bytes) * pow(r_bytes, 2), 0)
    ) AS bytes
FROM shares;
