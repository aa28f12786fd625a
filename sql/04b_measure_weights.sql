-- Question: how much does a document weigh in each share measure? `measure_weight(measure,
-- n_tokens, n_bytes, is_duplicate, sample_weight)` is w = amount x sample_weight for measure 0
-- (tokens), 1 (dedup_tokens: 0 for a near-duplicate copy) and 2 (bytes), the order of MEASURES in
-- analyzer/estimates/corpus_shares.py; the estimates' sums (sql/11, sql/11b) read it, e.g.
--   SELECT sum(measure_weight(0, n_tokens, n_bytes, is_duplicate, sample_weight)) FROM documents;
CREATE OR REPLACE MACRO measure_weight(measure, n_tokens, n_bytes, is_duplicate, sample_weight) AS
    CASE measure
        WHEN 0 THEN n_tokens
        WHEN 1 THEN n_tokens * (NOT is_duplicate)::INTEGER
        WHEN 2 THEN n_bytes
    END::DOUBLE * sample_weight::DOUBLE;
