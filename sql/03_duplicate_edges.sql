-- Question: which documents might be duplicates of which?
-- Parameters: $dedup_mode ('off' | 'exact' | 'near'), $verify_jaccard, $verify_containment,
-- $containment_min_jaccard (see Verification below).
-- LSH: every bucket (band_index, band_key) with more than one member links each member to the
-- bucket's smallest doc_seq. Buckets are found with GROUP BY and joined back, both of which DuckDB
-- runs out of core (spilling to the connection's temp_directory under its memory_limit), so no
-- step holds every band key of the run in memory, let alone in Python objects.
-- Verification ($verify_jaccard > 0; 0 keeps every candidate): a candidate pair is kept when its
-- estimated Jaccard similarity J (share of equal MinHash permutations) reaches $verify_jaccard, or
-- — the rescue for a copy that lost a paragraph or gained boilerplate, whose Jaccard is low while
-- one text contains the other — when J >= $containment_min_jaccard and its estimated containment
-- reaches $verify_containment (0: no rescue). Containment is |A ∩ B| / min(|A|, |B|) with
-- |A ∩ B| ≈ J (|A| + |B|) / (1 + J) from the shingle counts n_shingles. The J floor keeps a short
-- page that happens to sit inside a long one (a template, a quote) from being rescued on noise.
-- Exact: every group of equal content hashes links its members to the group's smallest doc_seq,
-- whatever MinHash says. Union-find over all these edges (in Python, on arrays) makes clusters.
WITH band_members AS (
    SELECT
        doc_seq,
        unnest(band_keys) AS band_key,
        generate_subscripts(band_keys, 1) AS band_index
    FROM tags
    WHERE $dedup_mode = 'near' AND band_keys IS NOT NULL
),
buckets AS (
    SELECT band_index, band_key, min(doc_seq) AS linked_seq
    FROM band_members
    GROUP BY band_index, band_key
    HAVING count(*) > 1
),
band_candidates AS (
    SELECT DISTINCT m.doc_seq, b.linked_seq
    FROM band_members AS m
    JOIN buckets AS b USING (band_index, band_key)
    WHERE m.doc_seq <> b.linked_seq
),
scored AS (
    SELECT
        c.doc_seq,
        c.linked_seq,
        list_sum(list_transform(range(1, len(a.minhash) + 1), lambda i: (a.minhash[i] = b.minhash[i])::INTEGER))
            / len(a.minhash) AS jaccard,
        a.n_shingles::DOUBLE AS n_first,
        b.n_shingles::DOUBLE AS n_second
    FROM band_candidates AS c
    JOIN tags AS a ON a.doc_seq = c.doc_seq
    JOIN tags AS b ON b.doc_seq = c.linked_seq
),
band_edges AS (
    SELECT doc_seq, linked_seq
    FROM scored
    WHERE $verify_jaccard <= 0
        OR jaccard >= $verify_jaccard
        OR (
            $verify_containment > 0
            AND jaccard >= $containment_min_jaccard
            AND jaccard * (n_first + n_second) / (1 + jaccard) / greatest(least(n_first, n_second), 1)
                >= $verify_containment
        )
),
exact_groups AS (
    SELECT content_hash, min(doc_seq) AS linked_seq
    FROM tags
    WHERE $dedup_mode <> 'off'
    GROUP BY content_hash
    HAVING count(*) > 1
),
exact_edges AS (
    SELECT t.doc_seq, g.linked_seq
    FROM tags AS t
    JOIN exact_groups AS g USING (content_hash)
    WHERE t.doc_seq <> g.linked_seq
)
SELECT doc_seq, linked_seq FROM band_edges
UNION
SELECT doc_seq, linked_seq FROM exact_edges;
