-- Question: how much of the corpus is finance, law, code, medical and other text by plain
-- classify-and-count, before and after near-duplicate removal?
-- Counts (docs, tokens) are of tagged documents; shares weight each document by its sample_weight
-- so a sampled run estimates the full input. Tokens are in the run's tokenizer (see `runs`);
-- dedup_* keep one representative per near-duplicate cluster. Every domain appears, even with
-- zero rows. sql/12_domain_shares.sql adds the corrected estimates and intervals to this.
--
-- `raw_domain_shares(groupings)` is the same count within groups, for queries of your own and for
-- sql/12a: groupings lists 'all' (the whole input, group_value 'all'), 'dump' and/or 'source'; a
-- document with NULL there is in the group '(none)' (sql/04a_document_groups.sql). Only
-- domains some document of the group is predicted as get a row, e.g.
--   FROM raw_domain_shares(['dump']) ORDER BY group_value, domain;
CREATE OR REPLACE MACRO raw_domain_shares(groupings) AS TABLE
WITH counted AS (
    SELECT
        grouping,
        group_value,
        domain,
        count(*) AS docs,
        sum(n_tokens) AS tokens,
        sum(n_tokens * sample_weight) AS weighted_tokens,
        sum(n_bytes * sample_weight) AS weighted_bytes,
        sum(sample_weight) AS weighted_docs,
        count(*) FILTER (WHERE NOT is_duplicate) AS dedup_docs,
        coalesce(sum(n_tokens) FILTER (WHERE NOT is_duplicate), 0) AS dedup_tokens,
        coalesce(sum(n_tokens * sample_weight) FILTER (WHERE NOT is_duplicate), 0) AS weighted_dedup_tokens
    FROM documents_in_groups(groupings)
    GROUP BY grouping, group_value, domain
)
SELECT
    grouping,
    group_value,
    domain,
    docs,
    tokens,
    coalesce(weighted_tokens / nullif(sum(weighted_tokens) OVER w, 0), 0)::DOUBLE AS token_share,
    dedup_docs,
    dedup_tokens,
    coalesce(weighted_dedup_tokens / nullif(sum(weighted_dedup_tokens) OVER w, 0), 0)::DOUBLE
        AS dedup_token_share,
    coalesce(weighted_bytes / nullif(sum(weighted_bytes) OVER w, 0), 0)::DOUBLE AS byte_share,
    coalesce(weighted_docs / nullif(sum(weighted_docs) OVER w, 0), 0)::DOUBLE AS doc_share,
    weighted_tokens::DOUBLE AS estimated_input_tokens
FROM counted
WINDOW w AS (PARTITION BY grouping, group_value);

CREATE OR REPLACE TABLE domain_shares_raw AS
WITH labels (domain, label_order) AS (
    VALUES ('finance', 1), ('law', 2), ('code', 3), ('medical', 4), ('other', 5)
)
SELECT
    l.domain,
    l.label_order,
    coalesce(r.docs, 0)::BIGINT AS docs,
    coalesce(r.tokens, 0)::BIGINT AS tokens,
    coalesce(r.token_share, 0)::DOUBLE AS token_share,
    coalesce(r.dedup_docs, 0)::BIGINT AS dedup_docs,
    coalesce(r.dedup_tokens, 0)::BIGINT AS dedup_tokens,
    coalesce(r.dedup_token_share, 0)::DOUBLE AS dedup_token_share,
    coalesce(r.byte_share, 0)::DOUBLE AS byte_share,
    coalesce(r.doc_share, 0)::DOUBLE AS doc_share,
    coalesce(r.estimated_input_tokens, 0)::DOUBLE AS estimated_input_tokens
FROM labels AS l
LEFT JOIN raw_domain_shares(['all']) AS r USING (domain)
ORDER BY l.label_order;
