-- Question: how much of each crawl dump (and each Dolma source) is each domain — the best
-- estimate with its interval, next to plain classify-and-count? `share_group_estimates` is
-- registered by the caller (analyzer/estimates/corpus_shares.py share_estimates_by_group): per
-- (grouping, group_value) the estimate `domain_shares` gives for the whole input, computed on the
-- group's documents alone, with the same intervals (*_lo / *_hi for the group's analysed documents,
-- *_corpus_lo / *_corpus_hi for the corpus they were drawn from; NULL for a group of fewer than 2
-- bootstrap clusters). grouping names the `documents` column ('dump' or 'source'); documents with
-- NULL there form the group '(none)' (as in sql/11_share_blocks.sql). Counts (docs, tokens, dedup_tokens) are of tagged documents
-- predicted as the domain; *_raw are classify-and-count weighted by sample_weight
-- (`raw_domain_shares`, sql/05). The breakdown views of sql/09_breakdowns.sql read this table.
CREATE OR REPLACE TABLE share_estimates_by_group AS
WITH labels (domain, label_order) AS (
    VALUES ('finance', 1), ('law', 2), ('code', 3), ('medical', 4), ('other', 5)
),
raw AS (  -- plain classify-and-count within the same groups (sql/05_domain_shares_raw.sql)
    FROM raw_domain_shares((SELECT list(DISTINCT grouping) FROM share_group_estimates))
)
SELECT
    e.grouping,
    e.group_value,
    e.domain,
    coalesce(r.docs, 0)::BIGINT AS docs,
    coalesce(r.tokens, 0)::BIGINT AS tokens,
    e.token_share,
    e.token_share_lo,
    e.token_share_hi,
    e.token_share_corpus_lo,
    e.token_share_corpus_hi,
    coalesce(r.token_share, 0)::DOUBLE AS token_share_raw,
    coalesce(r.dedup_tokens, 0)::BIGINT AS dedup_tokens,
    e.dedup_token_share,
    e.dedup_token_share_lo,
    e.dedup_token_share_hi,
    e.dedup_token_share_corpus_lo,
    e.dedup_token_share_corpus_hi,
    coalesce(r.dedup_token_share, 0)::DOUBLE AS dedup_token_share_raw,
    e.byte_share,
    e.byte_share_lo,
    e.byte_share_hi,
    e.byte_share_corpus_lo,
    e.byte_share_corpus_hi,
    coalesce(r.byte_share, 0)::DOUBLE AS byte_share_raw,
    e.unfamiliar_fraction,
    e.estimator,
    e.confidence
FROM share_group_estimates AS e
JOIN labels AS l USING (domain)
LEFT JOIN raw AS r USING (grouping, group_value, domain)
ORDER BY e.grouping, e.group_value, l.label_order;
