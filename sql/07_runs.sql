-- Question: which run produced these tables — when, over which inputs, with which options,
-- model and tokenizer? One row per build of the database; the shard table has the details.
CREATE OR REPLACE TABLE runs AS
SELECT
    $started_at::TIMESTAMP AS started_at,
    $finished_at::TIMESTAMP AS finished_at,
    $inputs::JSON AS inputs,
    $options::JSON AS options,
    $model_name::VARCHAR AS model_name,
    $model_version::VARCHAR AS model_version,
    $tokenizer::VARCHAR AS tokenizer,
    $analyzer_version::VARCHAR AS analyzer_version,
    (SELECT count(*) FROM shards) AS shards,
    (SELECT count(*) FROM shards WHERE status = 'failed') AS failed_shards,
    (SELECT count(*) FROM documents) AS documents,
    (SELECT count(*) FROM skipped) AS skipped;
