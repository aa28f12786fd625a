-- Question: how much of the corpus is finance, law, code, medical and other text,
-- before and after near-duplicate removal?
-- Shares are of tokens (n_tokens, in the run's tokenizer; see the `runs` table); dedup_* counts
-- keep one representative per near-duplicate cluster. Every domain appears, even with zero rows.
CREATE OR REPLACE TABLE domain_shares AS
WITH labels(domain, label_order) AS (
    VALUES ('finance', 1), ('law', 2), ('code', 3), ('medical', 4), ('other', 5)
),
per_domain AS (
    SELECT
        domain,
        count(*) AS docs,
        sum(n_tokens) AS tokens,
        count(*) FILTER (WHERE NOT is_duplicate) AS dedup_docs,
        coalesce(sum(n_tokens) FILTER (WHERE NOT is_duplicate), 0) AS dedup_tokens
    FROM documents
    GROUP BY domain
)
SELECT
    l.domain,
    coalesce(p.docs, 0)::BIGINT AS docs,
    coalesce(p.tokens, 0)::BIGINT AS tokens,
    coalesce(p.tokens / nullif(sum(p.tokens) OVER (), 0), 0)::DOUBLE AS token_share,
    coalesce(p.dedup_docs, 0)::BIGINT AS dedup_docs,
    coalesce(p.dedup_tokens, 0)::BIGINT AS dedup_tokens,
    coalesce(p.dedup_tokens / nullif(sum(p.dedup_tokens) OVER (), 0), 0)::DOUBLE AS dedup_token_share,
    coalesce(p.docs / nullif(sum(p.docs) OVER (), 0), 0)::DOUBLE AS doc_share
FROM labels AS l
LEFT JOIN per_domain AS p USING (domain)
ORDER BY l.label_order;
