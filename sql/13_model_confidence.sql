-- Question: does the classifier read this input as confidently as its own dev set? A tagged document
-- whose top calibrated probability is below $threshold is one the model is unsure of; on sources
-- like its training data's about one in eight dev documents is, on sources it never saw about one
-- in four, and the sources it misreads most are the least confident (README, "On sources the
-- classifier never saw"). A share well above dev's says: unfamiliar text, larger errors than the
-- intervals allow. One row per predicted domain and one for 'all': documents, tokens, how many of
-- them are below the threshold, and the same document share on dev (`dev_top_probabilities`, a
-- relation of (predicted, top_probability) the caller registers from the model's dev predictions;
-- empty for a model without them, so the dev column is NULL).
CREATE OR REPLACE TABLE model_confidence AS
WITH tagged AS (
    SELECT
        domain AS predicted,
        n_tokens,
        greatest(p_finance, p_law, p_code, p_medical, p_other) < $threshold AS unsure
    FROM documents
    WHERE domain IS NOT NULL
),
input AS (
    SELECT
        coalesce(predicted, 'all') AS predicted,
        count(*) AS docs,
        sum(n_tokens) AS tokens,
        count(*) FILTER (WHERE unsure) AS low_confidence_docs,
        coalesce(sum(n_tokens) FILTER (WHERE unsure), 0) AS low_confidence_tokens
    FROM tagged
    GROUP BY ROLLUP (predicted)
),
dev AS (
    SELECT
        coalesce(predicted, 'all') AS predicted,
        avg((top_probability < $threshold)::DOUBLE) AS dev_low_confidence_doc_share
    FROM dev_top_probabilities
    GROUP BY ROLLUP (predicted)
)
SELECT
    predicted,
    docs,
    tokens,
    low_confidence_docs,
    low_confidence_docs / docs AS low_confidence_doc_share,
    low_confidence_tokens / nullif(tokens, 0) AS low_confidence_token_share,
    dev.dev_low_confidence_doc_share,
    $threshold::DOUBLE AS threshold
FROM input
LEFT JOIN dev USING (predicted)
ORDER BY predicted = 'all', array_position(['finance', 'law', 'code', 'medical', 'other'], predicted);
