-- Question: how big are the full general corpora and the domain-specific corpora that measured
-- shares are extrapolated to and compared with? Seed data in sql/seed/reference_corpora.csv,
-- one row per corpus with the source of every number and the tokenizer its count is in.
CREATE OR REPLACE TABLE reference_corpora AS
SELECT * FROM read_csv($seed_file, header = true, auto_detect = true, all_varchar = false);
