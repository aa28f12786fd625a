-- Question: what did the taggers say about every document of every finished shard?
-- Loads the per-shard tags parquet files ($tag_files) into one table and numbers the documents
-- (doc_seq) in a stable order: by shard, then row. The numbering is what clusters are keyed on.
CREATE OR REPLACE TABLE tags AS
SELECT
    (row_number() OVER (ORDER BY shard, row_index) - 1)::BIGINT AS doc_seq,
    *
FROM read_parquet($tag_files, union_by_name = true);
