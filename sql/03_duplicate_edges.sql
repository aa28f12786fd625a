-- Question: which documents might be duplicates of which? (first pass: every edge for union-find)
-- Parameters: $dedup_mode ('off' | 'exact' | 'near'), $verify_jaccard, $verify_containment,
-- $containment_min_jaccard (the macro passes_verification of sql/03a_verification_rule.sql).
-- LSH: every bucket (band_index, band_key) with more than one member links each member to the
-- bucket's smallest doc_seq. Buckets are found with GROUP BY and joined back, both of which DuckDB
-- runs out of core (spilling to the connection's temp_directory under its memory_limit), so no
-- step holds every band key of the run in memory, let alone in Python objects.
-- Verification: a candidate pair is kept when passes_verification holds for its estimated Jaccard
-- (the share of equal MinHash permutations, `agree` / `num_perm`).
-- Exact: every group of equal content hashes links its members to the group's smallest doc_seq,
-- whatever MinHash says (exact = true).
-- Result: the temporary table duplicate_edges. Union-find over its edges (in Python, on arrays)
-- makes the provisional clusters that sql/03b uses to recognise boilerplate.
CREATE OR REPLACE TEMP TABLE duplicate_edges AS
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
            AS agree,
        len(a.minhash) AS num_perm,
        a.n_shingles::DOUBLE AS n_first,
        b.n_shingles::DOUBLE AS n_second
    FROM band_candidates AS c
    JOIN tags AS a ON a.doc_seq = c.doc_seq
    JOIN tags AS b ON b.doc_seq = c.linked_seq
),
band_edges AS (
    SELECT *
    FROM scored
    WHERE passes_verification(
        agree / num_perm, n_first, n_second, $verify_jaccard, $verify_containment, $containment_min_jaccard
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
SELECT doc_seq, linked_seq, false AS exact, agree, num_perm, n_first, n_second FROM band_edges
UNION ALL
SELECT doc_seq, linked_seq, true, NULL, NULL, NULL, NULL FROM exact_edges;
