-- Question: how much of the corpus is finance, law, code, medical and other text by plain
-- classify-and-count, before and after near-duplicate removal?
-- Counts (docs, tokens) are of tagged documents; shares weight each document by its sample_weight
-- so a sampled run estimates the full input. Tokens are in the run's tokenizer (see `runs`);
-- dedup_* keep one representative per near-duplicate cluster. Every domain appears, even with
-- zero rows. sql/12_domain_shares.sql adds the corrected estimates and intervals to this.
CREATE OR REPLACE TABLE domain_shares_raw AS
WITH labels(domain, label_order) AS (
    VALUES ('finance', 1), ('law', 2), ('code', 3), ('medical', 4), ('other', 5)
),
per_domain AS (
    SELECT
        domain,
        count(*) AS docs,
        sum(n_tokens) AS tokens,
        sum(n_tokens * sample_weight) AS weighted_tokens,
        sum(n_bytes * sample_weight) AS weighted_bytes,
        sum(sample_weight) AS weighted_docs,
        count(*) FILTER (WHERE NOT is_duplicate) AS dedup_docs,
        coalesce(sum(n_tokens) FILTER (WHERE NOT is_duplicate), 0) AS dedup_tokens,
        coalesce(sum(n_tokens * sample_weight) FILTER (WHERE NOT is_duplicate), 0) AS weighted_dedup_tokens
    FROM documents
    GROUP BY domain
)
SELECT
    l.domain,
    l.label_order,
    coalesce(p.docs, 0)::BIGINT AS docs,
    coalesce(p.tokens, 0)::BIGINT AS tokens,
    coalesce(p.weighted_tokens / nullif(sum(p.weighted_tokens) OVER (), 0), 0)::DOUBLE AS token_share,
    coalesce(p.dedup_docs, 0)::BIGINT AS dedup_docs,
    coalesce(p.dedup_tokens, 0)::BIGINT AS dedup_tokens,
    coalesce(p.weighted_dedup_tokens / nullif(sum(p.weighted_dedup_tokens) OVER (), 0), 0)::DOUBLE
        AS dedup_token_share,
    coalesce(p.weighted_bytes / nullif(sum(p.weighted_bytes) OVER (), 0), 0)::DOUBLE AS byte_share,
    coalesce(p.weighted_docs / nullif(sum(p.weighted_docs) OVER (), 0), 0)::DOUBLE AS doc_share,
    coalesce(p.weighted_tokens, 0)::DOUBLE AS estimated_input_tokens
FROM labels AS l
LEFT JOIN per_domain AS p USING (domain)
ORDER BY l.label_order;
