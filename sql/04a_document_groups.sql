-- Question: which groups of the input is each document in? One row per document and grouping:
-- `documents_in_groups(groupings)` lists each document once for every grouping in `groupings` —
-- 'all' (the whole input, group_value 'all'), 'dump' or 'source' — with the group it falls in
-- ('(none)' where that column is NULL), followed by all columns of `documents`. The one place this
-- rule lives: the raw shares (sql/05) and the estimates' sums (sql/11) both read it, e.g.
--   SELECT group_value, count(*) FROM documents_in_groups(['dump']) GROUP BY ALL;
CREATE OR REPLACE MACRO documents_in_groups(groupings) AS TABLE
SELECT
    g.grouping,
    CASE g.grouping
        WHEN 'all' THEN 'all'
        WHEN 'dump' THEN coalesce(d.dump, '(none)')
        WHEN 'source' THEN coalesce(d.source, '(none)')
        ELSE error('unknown grouping ''' || g.grouping || '''; use all, dump or source')
    END AS group_value,
    d.*
FROM documents AS d CROSS JOIN (SELECT unnest(groupings::VARCHAR[]) AS grouping) AS g;
