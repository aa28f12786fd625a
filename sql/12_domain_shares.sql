-- Question: how much of the corpus is each domain — the best estimate with its interval, next to
-- plain classify-and-count? `share_estimates` is registered by the caller (analyzer/estimates/
-- corpus_shares.py): the point estimate of the chosen --estimator and two intervals that both carry
-- the classifier's own error (label noise, decision-rule ambiguity, dev-resampled calibration):
-- *_lo / *_hi bound the share of the analysed input (sampling error finite-population corrected,
-- so it vanishes when every document was read); *_corpus_lo / *_corpus_hi bound the share of the
-- corpus the input's blocks were drawn from (full cluster bootstrap; `analyzer estimate` uses them).
-- unfamiliar_fraction: how unfamiliar the input reads to the model (0 as its dev set, 1 as sources it
-- never saw), the share of the source-shift term the intervals carry (analyzer/estimates/source_shift.py).
-- Contract: token_share / dedup_token_share are the corrected estimates; *_raw are plain
-- classify-and-count; *_lo / *_hi bound the corrected estimates.
CREATE OR REPLACE TABLE domain_shares AS
SELECT
    r.domain,
    r.docs,
    r.tokens,
    e.token_share,
    e.token_share_lo,
    e.token_share_hi,
    e.token_share_corpus_lo,
    e.token_share_corpus_hi,
    r.token_share AS token_share_raw,
    r.dedup_docs,
    r.dedup_tokens,
    e.dedup_token_share,
    e.dedup_token_share_lo,
    e.dedup_token_share_hi,
    e.dedup_token_share_corpus_lo,
    e.dedup_token_share_corpus_hi,
    r.dedup_token_share AS dedup_token_share_raw,
    e.byte_share,
    e.byte_share_lo,
    e.byte_share_hi,
    e.byte_share_corpus_lo,
    e.byte_share_corpus_hi,
    r.byte_share AS byte_share_raw,
    r.doc_share,
    r.estimated_input_tokens,
    e.unfamiliar_fraction,
    e.estimator,
    e.confidence
FROM domain_shares_raw AS r
JOIN share_estimates AS e USING (domain)
ORDER BY r.label_order;
