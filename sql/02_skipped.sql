-- Question: which rows were read but could not be tagged, and why?
-- Documents read = rows of `documents` + rows of `skipped`, per shard and in total.
CREATE OR REPLACE TABLE skipped AS
SELECT shard, row_index, reason
FROM read_parquet($skipped_files, union_by_name = true)
ORDER BY shard, row_index;
