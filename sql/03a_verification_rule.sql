-- Question: does an LSH candidate pair with (estimated) Jaccard j count as a duplicate?
-- One macro so that both passes (sql/03 on the raw estimate, sql/03b on the estimate with shared
-- boilerplate discounted) apply the same rule. verify_jaccard <= 0 keeps every candidate. Otherwise
-- the pair is kept when j >= verify_jaccard, or — the rescue for a copy that lost a paragraph or
-- gained boilerplate, whose Jaccard is low while one text contains the other — when
-- j >= min_jaccard and its estimated containment reaches verify_containment (0: no rescue).
-- Containment is |A ∩ B| / min(|A|, |B|) with |A ∩ B| ≈ j (|A| + |B|) / (1 + j) from the shingle
-- counts n_first, n_second (NULL for tags written before n_shingles existed: no rescue). The j floor
-- keeps a short page that happens to sit inside a long one (a template, a quote) from being
-- rescued on noise.
CREATE OR REPLACE TEMP MACRO passes_verification(
    j, n_first, n_second, verify_jaccard, verify_containment, min_jaccard
) AS
    verify_jaccard <= 0
    OR j >= verify_jaccard
    OR coalesce(
        verify_containment > 0
        AND j >= min_jaccard
        AND j * (n_first + n_second) / (1 + j) / greatest(least(n_first, n_second), 1) >= verify_containment,
        false
    );
