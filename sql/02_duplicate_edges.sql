-- Question: which documents might be duplicates of which?
-- Every LSH bucket (band_index, band_key) and every exact content hash with more than one member
-- links each member to the bucket's first document. Union-find over these edges (in Python, on
-- arrays) turns them into clusters. DuckDB does the grouping, so it may spill to disk instead of
-- holding every band key in Python objects.
WITH band_members AS (
    SELECT
        doc_seq,
        unnest(band_keys) AS band_key,
        generate_subscripts(band_keys, 1) AS band_index
    FROM tags
),
band_edges AS (
    SELECT doc_seq, min(doc_seq) OVER (PARTITION BY band_index, band_key) AS linked_seq
    FROM band_members
),
exact_edges AS (
    SELECT doc_seq, min(doc_seq) OVER (PARTITION BY content_hash) AS linked_seq
    FROM tags
)
SELECT DISTINCT doc_seq, linked_seq
FROM (SELECT * FROM band_edges UNION ALL SELECT * FROM exact_edges)
WHERE doc_seq <> linked_seq;
