-- Question: which duplicate edges still hold once the boilerplate they share is discounted?
-- (second pass). Parameters: $boilerplate_clusters (K), $verify_jaccard, $verify_containment,
-- $containment_min_jaccard. `provisional(doc_seq, cluster_id)` is registered by the caller:
-- union-find over the first pass's duplicate_edges (sql/03).
-- Two different files that both carry the same licence header or generated-code template agree
-- on every permutation whose minimum falls in the shared text, so their estimated Jaccard says
-- "near duplicate" although the text that makes each one what it is differs. A shared minimum
-- (permutation, value) is boilerplate when at least K distinct provisional clusters hold it as
-- their minimum at that permutation: a real near-duplicate group is one cluster however many
-- copies it has, while a header shared by unrelated files is held by many. (A singleton counts
-- as its own cluster.) Such permutations are left out of the estimate: for an edge that agrees
-- on `agree` of `num_perm` permutations, `common` of them on boilerplate,
--     J' = (agree - common) / (num_perm - common),
-- the Jaccard of the two shingle sets without the boilerplate they share. Band edges are then
-- re-verified with the same rule (passes_verification) on J'; exact edges always stay.
-- Out of core: the only large input is the unnest of every document's signature, probed against
-- the distinct shared minima of the verified edges (a small build side) before any grouping.
WITH band AS (
    SELECT e.doc_seq, e.linked_seq, a.minhash AS first, b.minhash AS second
    FROM duplicate_edges AS e
    JOIN tags AS a ON a.doc_seq = e.doc_seq
    JOIN tags AS b ON b.doc_seq = e.linked_seq
    WHERE NOT e.exact
),
shared AS (
    SELECT doc_seq, linked_seq, perm, first[perm] AS value
    FROM (
        SELECT
            doc_seq,
            linked_seq,
            first,
            unnest(list_filter(range(1, len(first) + 1), lambda i: first[i] = second[i])) AS perm
        FROM band
    )
),
shared_values AS (
    SELECT DISTINCT perm, value FROM shared
),
holders AS (
    SELECT h.doc_seq, h.perm, h.value
    FROM (
        SELECT doc_seq, unnest(minhash) AS value, generate_subscripts(minhash, 1) AS perm
        FROM tags
        WHERE minhash IS NOT NULL
    ) AS h
    SEMI JOIN shared_values AS v ON h.perm = v.perm AND h.value = v.value
),
boilerplate AS (
    SELECT h.perm, h.value
    FROM holders AS h
    LEFT JOIN provisional AS p USING (doc_seq)
    GROUP BY h.perm, h.value
    HAVING count(DISTINCT coalesce(p.cluster_id, h.doc_seq)) >= $boilerplate_clusters
),
discount AS (
    SELECT s.doc_seq, s.linked_seq, count(*) AS common
    FROM shared AS s
    JOIN boilerplate AS b USING (perm, value)
    GROUP BY s.doc_seq, s.linked_seq
),
rescored AS (
    SELECT
        e.doc_seq,
        e.linked_seq,
        (e.agree - coalesce(d.common, 0)) / greatest(e.num_perm - coalesce(d.common, 0), 1) AS jaccard,
        e.n_first,
        e.n_second
    FROM duplicate_edges AS e
    LEFT JOIN discount AS d USING (doc_seq, linked_seq)
    WHERE NOT e.exact
)
SELECT doc_seq, linked_seq
FROM rescored
WHERE passes_verification(
    jaccard, n_first, n_second, $verify_jaccard, $verify_containment, $containment_min_jaccard
)
UNION ALL
SELECT doc_seq, linked_seq FROM duplicate_edges WHERE exact;
