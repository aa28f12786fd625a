-- Question: how do the domain shares break down — by crawl dump, by web host, by Dolma source,
-- by document length — how concentrated is each domain on few hosts, and how entangled are the
-- domains with each other? Views over `documents` (the by-dump and by-source shares over
-- share_estimates_by_group, sql/12a); counts are raw (duplicates included) unless a column says dedup_.

-- Token share of each domain within each crawl dump (the trend over crawl years), from
-- share_estimates_by_group (sql/12a): token_share is the run's estimator on the dump's documents
-- alone, with its 95% interval for those documents (_lo/_hi) and for the crawl they were drawn
-- from (_corpus_lo/_hi); token_share_raw is classify-and-count. Documents without a dump are under
-- '(none)'. docs, tokens and dedup_tokens count the tagged documents predicted as the domain.
-- Its first six columns are those it had before intervals existed, in their old positions (queries
-- that read them by position keep working; tests/test_share_groups.py holds that order).
CREATE OR REPLACE VIEW domain_shares_by_dump AS
SELECT
    group_value AS dump,
    domain,
    docs,
    tokens,
    token_share,
    dedup_tokens,
    token_share_lo,
    token_share_hi,
    token_share_corpus_lo,
    token_share_corpus_hi,
    token_share_raw,
    dedup_token_share,
    dedup_token_share_lo,
    dedup_token_share_hi,
    dedup_token_share_raw,
    estimator
FROM share_estimates_by_group
WHERE grouping = 'dump'
ORDER BY dump, domain;

-- Token share of each domain within each Dolma `source` (or any shard that carries one), with
-- intervals as in domain_shares_by_dump; documents without a source are under '(none)'.
CREATE OR REPLACE VIEW domain_shares_by_source AS
SELECT
    group_value AS source,
    domain,
    docs,
    tokens,
    token_share,
    token_share_lo,
    token_share_hi,
    token_share_corpus_lo,
    token_share_corpus_hi,
    token_share_raw,
    dedup_tokens,
    dedup_token_share,
    dedup_token_share_lo,
    dedup_token_share_hi,
    dedup_token_share_raw,
    estimator
FROM share_estimates_by_group
WHERE grouping = 'source'
ORDER BY source, domain;

-- Every host's tokens in every domain, ranked within the domain, with its share of the domain.
CREATE OR REPLACE VIEW domain_hosts AS
SELECT
    domain,
    coalesce(host, '(none)') AS host,
    count(*) AS docs,
    sum(n_tokens) AS tokens,
    sum(n_tokens) / sum(sum(n_tokens)) OVER (PARTITION BY domain) AS share_of_domain,
    row_number() OVER (PARTITION BY domain ORDER BY sum(n_tokens) DESC, coalesce(host, '(none)')) AS host_rank
FROM documents
GROUP BY domain, coalesce(host, '(none)');

CREATE OR REPLACE VIEW top_hosts_per_domain AS
SELECT * FROM domain_hosts WHERE host_rank <= 20 ORDER BY domain, host_rank;

-- How concentrated a domain is: hosts needed for half of its tokens, and the Herfindahl-Hirschman
-- index of host shares (1 = one host holds everything; 1/n = n equal hosts).
CREATE OR REPLACE VIEW host_concentration AS
WITH ranked AS (
    SELECT
        domain,
        host_rank,
        share_of_domain,
        sum(share_of_domain) OVER (PARTITION BY domain ORDER BY host_rank) AS cumulative_share
    FROM domain_hosts
)
SELECT
    domain,
    count(*) AS hosts,
    min(host_rank) FILTER (WHERE cumulative_share >= 0.5) AS hosts_for_half_of_tokens,
    sum(share_of_domain * share_of_domain) AS herfindahl_index
FROM ranked
GROUP BY domain
ORDER BY domain;

-- Document length distribution per domain (characters and tokens).
CREATE OR REPLACE VIEW length_distribution AS
SELECT
    domain,
    count(*) AS docs,
    quantile_cont(n_chars, 0.1) AS chars_p10,
    quantile_cont(n_chars, 0.5) AS chars_median,
    quantile_cont(n_chars, 0.9) AS chars_p90,
    quantile_cont(n_tokens, 0.5) AS tokens_median,
    avg(n_tokens) AS tokens_mean
FROM documents
GROUP BY domain
ORDER BY domain;

-- Bytes per token per domain, for converting shares and totals between tokenizers: code and legal
-- text tokenize differently from prose. `shard_*` uses the count the shard itself carries
-- (FineWeb's GPT-2 token_count) where present.
CREATE OR REPLACE VIEW bytes_per_token AS
SELECT
    domain,
    sum(n_bytes) AS bytes,
    sum(n_tokens) AS tokens,
    sum(n_bytes) / nullif(sum(n_tokens), 0) AS bytes_per_token,
    sum(shard_token_count) AS shard_tokens,
    sum(n_bytes) FILTER (WHERE shard_token_count IS NOT NULL)
        / nullif(sum(shard_token_count), 0) AS shard_bytes_per_token
FROM documents
GROUP BY domain
ORDER BY domain;

-- Entanglement: for each ordered pair of domains, the share of documents whose probability is at
-- least 0.2 for both (a DeFi contract page can be both finance and code).
CREATE OR REPLACE VIEW domain_entanglement AS
WITH probabilities AS (
    SELECT doc_seq, 'finance' AS domain, p_finance AS p FROM documents
    UNION ALL SELECT doc_seq, 'law', p_law FROM documents
    UNION ALL SELECT doc_seq, 'code', p_code FROM documents
    UNION ALL SELECT doc_seq, 'medical', p_medical FROM documents
    UNION ALL SELECT doc_seq, 'other', p_other FROM documents
)
SELECT
    a.domain AS domain_a,
    b.domain AS domain_b,
    count(*) FILTER (WHERE a.p >= 0.2 AND b.p >= 0.2) AS docs_both,
    count(*) FILTER (WHERE a.p >= 0.2 AND b.p >= 0.2) / count(*) AS share_both
FROM probabilities AS a
JOIN probabilities AS b USING (doc_seq)
GROUP BY a.domain, b.domain
ORDER BY domain_a, domain_b;

-- Quality x domain: token share of each domain within each quality score (FineWeb-Edu's
-- int_score when the shard carries one; rows without a score are grouped as NULL).
CREATE OR REPLACE VIEW domain_shares_by_quality AS
SELECT
    quality_score,
    domain,
    count(*) AS docs,
    sum(n_tokens) AS tokens,
    sum(n_tokens) / sum(sum(n_tokens)) OVER (PARTITION BY quality_score) AS token_share
FROM documents
GROUP BY quality_score, domain
ORDER BY quality_score, domain;
