-- Question: which rows were read but could not be tagged, and why?
-- Documents read = rows of `documents` + rows of `skipped`, per shard and in total.
-- content_hash: for a `not_sampled` row of a run with the census and dedup, the document's
-- exact-duplicate hash (analyzer/shard_task.py), else NULL (also in files written before it).
CREATE OR REPLACE TABLE skipped AS
SELECT shard, row_index, reason, content_hash
FROM (
    SELECT * FROM read_parquet($skipped_files, union_by_name = true)
    UNION ALL BY NAME
    SELECT NULL::UBIGINT AS content_hash WHERE false
)
ORDER BY shard, row_index;
