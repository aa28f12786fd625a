-- Question: per shard, how many documents were read, tagged and skipped, and does it balance?
-- `shards` is registered by the caller from the shard tasks' accounting; the view checks it
-- against the rows that actually landed in `documents` and `skipped`.
CREATE OR REPLACE VIEW shard_balance AS
SELECT
    s.shard,
    s.status,
    s.docs_read,
    s.docs_tagged,
    s.docs_skipped,
    coalesce(d.rows, 0) AS documents_rows,
    coalesce(k.rows, 0) AS skipped_rows,
    s.docs_read = coalesce(d.rows, 0) + coalesce(k.rows, 0) AS balanced
FROM shards AS s
LEFT JOIN (SELECT shard, count(*) AS rows FROM documents GROUP BY shard) AS d USING (shard)
LEFT JOIN (SELECT shard, count(*) AS rows FROM skipped GROUP BY shard) AS k USING (shard)
WHERE s.status <> 'failed';

-- Question: which shards could not be read at all, and why? (Their documents are in no table.)
CREATE OR REPLACE VIEW failed_shards AS
SELECT shard, url, error AS reason
FROM shards
WHERE status = 'failed';
