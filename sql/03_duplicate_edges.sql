-- Question: which documents might be duplicates of which?
-- Parameters: $dedup_mode ('off' | 'exact' | 'near') and $verify_jaccard (0 keeps every candidate).
-- Every LSH bucket (band_index, band_key) with more than one member links each member to the
-- bucket's first document; the pair is kept when the share of agreeing MinHash permutations
-- (the estimated Jaccard similarity) reaches $verify_jaccard. Every group of equal content hashes
-- links its members to the group's first document. Union-find over these edges (in Python, on
-- arrays) turns them into clusters. DuckDB does the grouping, so it may spill to disk instead of
-- holding every band key in Python objects.
WITH band_members AS (
    SELECT
        doc_seq,
        unnest(band_keys) AS band_key,
        generate_subscripts(band_keys, 1) AS band_index
    FROM tags
    WHERE $dedup_mode = 'near' AND band_keys IS NOT NULL
),
band_candidates AS (
    SELECT DISTINCT doc_seq, linked_seq
    FROM (
        SELECT doc_seq, min(doc_seq) OVER (PARTITION BY band_index, band_key) AS linked_seq
        FROM band_members
    )
    WHERE doc_seq <> linked_seq
),
band_edges AS (
    SELECT c.doc_seq, c.linked_seq
    FROM band_candidates AS c
    JOIN tags AS a ON a.doc_seq = c.doc_seq
    JOIN tags AS b ON b.doc_seq = c.linked_seq
    WHERE $verify_jaccard <= 0
        OR list_sum(list_transform(range(1, len(a.minhash) + 1), lambda i: (a.minhash[i] = b.minhash[i])::INTEGER))
            >= $verify_jaccard * len(a.minhash)
),
exact_edges AS (
    SELECT doc_seq, min(doc_seq) OVER (PARTITION BY content_hash) AS linked_seq
    FROM tags
    WHERE $dedup_mode <> 'off'
)
SELECT doc_seq, linked_seq FROM band_edges
UNION
SELECT doc_seq, linked_seq FROM exact_edges WHERE doc_seq <> linked_seq;
