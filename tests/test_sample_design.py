"""The size-aware sample (`--sample-design pps`, analyzer/sampler.py) on generated data with known answers:
Horvitz-Thompson unbiasedness over hash seeds, smaller variance of token shares than a Bernoulli sample
when lengths are heavy-tailed, determinism, accounting, and the finite-population factor it implies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from generated import corpus_documents, write_fineweb_parquet
from harness import run_and_open

from analyzer.estimates import corpus_shares
from analyzer.estimates.intervals import estimate_shares
from analyzer.readers import DOCUMENT_SCHEMA
from analyzer.sampler import (
    INCLUSION_COLUMN,
    NOT_SAMPLED,
    ShardSampler,
    design_sampling_fraction,
    inclusion_mask,
    inclusion_probabilities,
)

RATE = 0.2
UNIT = 1000
N_DOCS = 4000
N_SEEDS = 300
S = 5


def heavy_tailed_population(seed: int = 7) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(ids, bytes, tokens, domain): Pareto-tailed lengths; long documents are mostly code (domain 2)."""
    rng = np.random.default_rng(seed)
    n_bytes = np.ceil(300 + 900 * (rng.pareto(1.3, N_DOCS) + 0.2)).astype(np.float64)
    long = n_bytes > 8000
    domain = np.where(
        long & (rng.random(N_DOCS) < 0.7), 2, rng.choice(S, size=N_DOCS, p=[0.1, 0.1, 0.1, 0.1, 0.6])
    )
    tokens = np.round(n_bytes / rng.uniform(3.5, 5.0, N_DOCS))
    ids = [f"gen/shard-{i // 500:02d}/doc-{i}" for i in range(N_DOCS)]
    return ids, n_bytes, tokens, domain


def shard_of(ids: list[str]) -> np.ndarray:
    return np.array([int(i.split("/")[1].removeprefix("shard-")) for i in ids])


def estimates(
    ids: list[str],
    n_bytes: np.ndarray,
    tokens: np.ndarray,
    domain: np.ndarray,
    design: str,
    rate: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(HT token totals per domain, calibrated token shares, bytes tagged fraction) of one hash seed."""
    pi = inclusion_probabilities(n_bytes, rate, design, UNIT)
    kept = inclusion_mask(ids, pi, seed=seed)
    ht = np.bincount(domain[kept], weights=tokens[kept] / pi[kept], minlength=S)
    # as sql/04_documents.sql: 1/pi calibrated to each shard's documents read
    shard = shard_of(ids)
    weight = np.zeros(len(ids))
    for code in np.unique(shard):
        tagged = kept & (shard == code)
        weight[tagged] = (shard == code).sum() / (1.0 / pi[tagged]).sum() / pi[tagged]
    calibrated = np.bincount(domain[kept], weights=tokens[kept] * weight[kept], minlength=S)
    return ht, calibrated / calibrated.sum(), float(n_bytes[kept].sum() / n_bytes.sum())


def test_inclusion_probabilities_follow_the_design() -> None:
    pi = inclusion_probabilities([10, 1000, 2500, 5000, 80_000], 0.2, "pps", 1000)
    np.testing.assert_allclose(pi, [0.2, 0.2, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(inclusion_probabilities([10, 80_000], 0.2, "bernoulli"), [0.2, 0.2])
    np.testing.assert_allclose(inclusion_probabilities([10, 80_000], 1.0, "pps", 1000), [1.0, 1.0])
    for bad in ({"rate": 0.0}, {"rate": 1.5}, {"design": "cluster"}, {"unit": 0}):
        arguments = {"rate": 0.2, "design": "pps", "unit": 1000, **bad}
        with pytest.raises(ValueError):
            inclusion_probabilities([100], arguments["rate"], arguments["design"], arguments["unit"])


def test_inclusion_mask_is_deterministic_nested_and_keeps_certain_documents() -> None:
    ids, n_bytes, _, _ = heavy_tailed_population()
    pi = inclusion_probabilities(n_bytes, RATE, "pps", UNIT)
    kept = inclusion_mask(ids, pi, seed=3)
    np.testing.assert_array_equal(kept, inclusion_mask(list(ids), pi.copy(), seed=3))
    assert kept[pi >= 1.0].all()
    assert not np.any(inclusion_mask(ids, inclusion_probabilities(n_bytes, 0.1, "pps", UNIT), seed=3) & ~kept)
    # pps keeps a superset of the Bernoulli sample of the same rate and seed
    bernoulli = inclusion_mask(ids, inclusion_probabilities(n_bytes, RATE, "bernoulli"), seed=3)
    assert not np.any(bernoulli & ~kept)
    assert (kept != inclusion_mask(ids, pi, seed=4)).mean() > 0.1


def test_horvitz_thompson_is_unbiased_over_hash_seeds() -> None:
    ids, n_bytes, tokens, domain = heavy_tailed_population()
    truth_totals = np.bincount(domain, weights=tokens, minlength=S)
    truth_shares = truth_totals / truth_totals.sum()
    runs = [estimates(ids, n_bytes, tokens, domain, "pps", RATE, seed) for seed in range(N_SEEDS)]
    totals = np.array([ht for ht, _, _ in runs])
    shares = np.array([share for _, share, _ in runs])
    standard_error = totals.std(axis=0, ddof=1) / np.sqrt(N_SEEDS)
    # the HT totals are unbiased: their mean over seeds is within 3.5 standard errors of the truth
    assert np.all(np.abs(totals.mean(axis=0) - truth_totals) < 3.5 * standard_error)
    # ... and the calibrated shares (a ratio, unbiased to first order) within 0.15 points
    assert np.max(np.abs(shares.mean(axis=0) - truth_shares)) < 0.0015
    # weighting the pps sample like a Bernoulli one (1/F for everyone) would not be: long code over-counted
    pi = inclusion_probabilities(n_bytes, RATE, "pps", UNIT)
    naive = np.array(
        [
            np.bincount(domain[k], weights=tokens[k], minlength=S) / tokens[k].sum()
            for k in (inclusion_mask(ids, pi, seed=seed) for seed in range(40))
        ]
    )
    assert naive.mean(axis=0)[2] - truth_shares[2] > 0.02


def test_pps_has_smaller_share_variance_than_bernoulli_on_heavy_tails() -> None:
    ids, n_bytes, tokens, domain = heavy_tailed_population()

    def spread(design: str, rate: float) -> tuple[float, float]:
        runs = [estimates(ids, n_bytes, tokens, domain, design, rate, seed) for seed in range(N_SEEDS)]
        shares = np.array([share for _, share, _ in runs])
        return float(shares.std(axis=0).max()), float(np.mean([tagged for _, _, tagged in runs]))

    pps_sd, pps_bytes = spread("pps", RATE)
    bernoulli_sd, bernoulli_bytes = spread("bernoulli", RATE)
    assert bernoulli_bytes == pytest.approx(RATE, abs=0.03)
    assert pps_sd < 0.5 * bernoulli_sd
    # not only because pps tags more bytes: a Bernoulli sample tagging as many bytes still varies more
    matched_sd, matched_bytes = spread("bernoulli", round(pps_bytes, 2))
    assert matched_bytes == pytest.approx(pps_bytes, abs=0.03)
    assert pps_sd < 0.85 * matched_sd


def test_design_sampling_fraction() -> None:
    amount = np.array([10.0, 200.0, 3000.0, 50.0])
    domain = np.array([0, 1, 2, 1])
    assert design_sampling_fraction(amount, np.ones(4), domain) == pytest.approx(1.0)
    assert design_sampling_fraction(amount, np.full(4, 5.0), domain) == pytest.approx(0.2)
    # a document tagged with certainty adds nothing to the sampling error about the input ...
    certain = np.array([5.0, 5.0, 1.0, 5.0])
    assert design_sampling_fraction(amount, certain, domain) > 0.2
    # ... but the factor is the smallest over domains: here domain 1 barely sees the certain document
    assert design_sampling_fraction(amount, certain, domain) < 0.5
    assert design_sampling_fraction(np.zeros(4), np.full(4, 5.0), domain) == 1.0


def test_pps_input_interval_is_finite_population_corrected_and_covers() -> None:
    """A fixed heavy-tailed input sampled by pps again and again, a perfect classifier: the input-level
    interval with f from the design covers the input's token shares and is narrower than the corpus one."""
    ids, n_bytes, tokens, domain = heavy_tailed_population(seed=8)
    truth = np.bincount(domain, weights=tokens, minlength=S) / tokens.sum()
    shard = shard_of(ids)
    rows = np.arange(N_DOCS) % 500
    one_hot = np.eye(S)[domain]
    pi = inclusion_probabilities(n_bytes, RATE, "pps", UNIT)
    covered, narrower = [], []
    for seed in range(60):
        kept = inclusion_mask(ids, pi, seed=seed)
        weight = 1.0 / pi[kept]
        clusters = np.unique(shard[kept] * 1000 + rows[kept] // 32, return_inverse=True)[1].reshape(-1)
        result = estimate_shares(
            clusters,
            tokens[kept] * weight,
            one_hot[kept],
            "cc",
            sampling_fraction=design_sampling_fraction(tokens[kept], weight, domain[kept]),
            replicates=300,
            seed=seed,
        )
        covered.append((result.input_lo <= truth) & (truth <= result.input_hi))
        narrower.append(result.input_hi - result.input_lo < result.corpus_hi - result.corpus_lo)
    assert np.mean(covered, axis=0).min() >= 0.88
    assert np.mean(narrower) > 0.95


def batch(ids: list[str], lengths: list[int]) -> pa.RecordBatch:
    n = len(ids)
    columns = {
        name: pa.nulls(n, type=field.type)
        for name, field in zip(DOCUMENT_SCHEMA.names, DOCUMENT_SCHEMA, strict=True)
    }
    columns["row_index"] = pa.array(range(n), type=pa.int64())
    columns["doc_id"] = pa.array(ids, type=pa.string())
    columns["text"] = pa.array(["x" * length for length in lengths], type=pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=DOCUMENT_SCHEMA)


def test_shard_sampler_accounts_for_every_document_and_records_pi() -> None:
    ids, n_bytes, _, _ = heavy_tailed_population()
    documents = batch(ids[:800], [min(int(b), 40_000) for b in n_bytes[:800]])
    splits = []
    for _ in range(2):
        sampler = ShardSampler("gen", RATE, None, seed=0, design="pps", unit=UNIT)
        tagged, skipped, left_out = sampler.partition(documents)
        splits.append(tagged.column("row_index").to_pylist())
        assert tagged.num_rows + len(skipped) == documents.num_rows == tagged.num_rows + left_out.num_rows
        assert {row.reason for row in skipped} == {NOT_SAMPLED}
        rows = set(splits[-1]) | {row.row_index for row in skipped}
        assert rows == set(range(documents.num_rows))
        lengths = np.array([len(text) for text in tagged.column("text").to_pylist()])
        np.testing.assert_allclose(
            tagged.column(INCLUSION_COLUMN).to_numpy(), inclusion_probabilities(lengths, RATE, "pps", UNIT)
        )
    assert splits[0] == splits[1]
    # without the census (--no-classify-all) nothing builds the sampled-out batch
    same, same_skipped, not_built = ShardSampler(
        "gen", RATE, None, seed=0, design="pps", unit=UNIT
    ).partition(documents, keep_left_out=False)
    assert same.column("row_index").to_pylist() == splits[0] and len(same_skipped) == len(skipped)
    assert not_built.num_rows == 0
    unsampled, none_skipped, none_left_out = ShardSampler("gen", None, None).partition(documents)
    assert none_skipped == [] and none_left_out.num_rows == 0 and unsampled.num_rows == documents.num_rows
    assert set(unsampled.column(INCLUSION_COLUMN).to_pylist()) == {1.0}


@pytest.fixture()
def mixed_corpus(tmp_path: Path) -> Path:
    """Two shards of short documents, a tenth of them made long (> L0 / F bytes: always tagged)."""
    directory = tmp_path / "corpus"
    directory.mkdir()
    for name, seed in (("000", 1), ("001", 2)):
        records = corpus_documents(300, seed=seed, prefix=name)
        for index in range(0, 300, 10):
            records[index]["text"] = " ".join([records[index]["text"]] * 40)
        write_fineweb_parquet(directory / f"{name}.parquet", records)
    return directory


def test_pps_run_is_deterministic_accounted_weighted_and_recorded(
    mixed_corpus: Path, tmp_path: Path, tiny_model: Path
) -> None:
    picked = []
    for attempt in ("first", "second"):
        arguments = ("--sample-rate", "0.2", "--sample-design", "pps", "--no-classify-all")
        with run_and_open(mixed_corpus, tmp_path / attempt, tiny_model, *arguments) as db:
            picked.append(
                db.execute("SELECT doc_id, sample_weight FROM documents ORDER BY doc_id").fetchall()
            )
            tagged, not_sampled = db.execute(
                "SELECT (SELECT count(*) FROM documents), "
                "(SELECT count(*) FROM skipped WHERE reason = 'not_sampled')"
            ).fetchone() or (0, 0)
            assert tagged + not_sampled == 600
            assert db.execute("SELECT bool_and(balanced) FROM shard_balance").fetchone() == (True,)
            # every long document is tagged, and weighs about 1; the weights add up to each shard's documents
            long_rows = db.execute(
                "SELECT count(*), max(sample_weight) FROM documents WHERE n_bytes >= 1000 / 0.2"
            ).fetchone()
            assert long_rows is not None and long_rows[0] == 60 and long_rows[1] < 1.3
            per_shard = db.execute(
                "SELECT shard, sum(sample_weight) FROM documents GROUP BY shard"
            ).fetchall()
            assert all(total == pytest.approx(300.0) for _, total in per_shard)
            options = json.loads(db.execute("SELECT options FROM runs").fetchone()[0])
            assert (options["sample_rate"], options["sample_design"], options["sample_size_unit"]) == (
                0.2,
                "pps",
                1000,
            )
            docs = db.execute("SELECT n_tokens, n_bytes, sample_weight, domain FROM documents").fetchnumpy()
            domain = np.unique(np.asarray(docs["domain"]), return_inverse=True)[1].reshape(-1)
            sums = corpus_shares._share_sums(db, 256, ("all",), None)[("all", "all")]
            all_fractions = corpus_shares._design_sampling_fractions(sums)  # MEASURES order
            fractions = [all_fractions[0], all_fractions[2]]  # tokens, bytes
            for fraction, measure in zip(fractions, ("n_tokens", "n_bytes"), strict=True):
                expected = design_sampling_fraction(docs[measure], docs["sample_weight"], domain)
                assert fraction == pytest.approx(expected)
            assert 0.2 < fractions[0] < 1.0
    assert picked[0] == picked[1]
    plain = ("--sample-rate", "0.2", "--no-classify-all")
    with run_and_open(mixed_corpus, tmp_path / "bernoulli", tiny_model, *plain) as db:
        # the default design is bernoulli: one weight per shard, (tagged + not sampled) / tagged
        options = json.loads(db.execute("SELECT options FROM runs").fetchone()[0])
        assert options["sample_design"] == "bernoulli"
        rows = db.execute(
            "SELECT shard, count(DISTINCT round(sample_weight, 9)) FROM documents GROUP BY shard"
        ).fetchall()
        assert [count for _, count in rows] == [1, 1]
        bernoulli_ids = {row[0] for row in db.execute("SELECT doc_id FROM documents").fetchall()}
    assert bernoulli_ids <= {doc_id for doc_id, _ in picked[0]}
