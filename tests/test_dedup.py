"""Dedup modes, banding maths and candidate verification, end to end on generated shards."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasketch import MinHashLSH
from generated import corpus_documents, write_fineweb_parquet
from harness import run_and_open

from analyzer.config import MinHashOptions
from analyzer.dedup.banding import banding_for_threshold, candidate_probability
from analyzer.sql_library import load_sql
from analyzer.store import DedupSettings, connection_config, duplicate_clusters
from analyzer.taggers.minhash_kernels import batch_band_keys


def near_copy(text: str, rng: random.Random) -> str:
    """Drop one word in the middle: most word 5-grams survive."""
    words = text.split()
    del words[rng.randrange(len(words) // 3, 2 * len(words) // 3)]
    return " ".join(words)


@pytest.fixture()
def shards_with_duplicates(tmp_path: Path) -> Path:
    rng = random.Random(5)
    directory = tmp_path / "corpus"
    directory.mkdir()
    first = corpus_documents(40, seed=7, prefix="a")
    second = corpus_documents(30, seed=8, prefix="b")
    for index in range(5):  # exact copies across shards, upper-cased: same content hash
        second.append(dict(first[index], id=f"exact-{index}", text=first[index]["text"].upper()))
    for index in range(5, 10):  # near copies across shards
        second.append(dict(first[index], id=f"near-{index}", text=near_copy(str(first[index]["text"]), rng)))
    write_fineweb_parquet(directory / "000.parquet", first)
    write_fineweb_parquet(directory / "001.parquet", second)
    return directory


def kinds(db: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(db.execute("SELECT doc_id, dup_kind FROM documents WHERE is_duplicate").fetchall())


def test_near_mode_finds_exact_and_near_copies_across_shards(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    with run_and_open(shards_with_duplicates, tmp_path / "near", tiny_model) as db:
        marked = kinds(db)
        # the copies sit in the second shard, so they (not the originals) are the duplicates
        assert {f"exact-{i}" for i in range(5)} <= marked.keys()
        assert {f"near-{i}" for i in range(5, 10)} <= marked.keys()
        assert all(marked[f"exact-{i}"] == "exact" for i in range(5))
        assert all(marked[f"near-{i}"] == "near" for i in range(5, 10))
        spans = db.execute("SELECT count(*), max(shards) FROM duplicate_clusters").fetchone()
        assert spans is not None and spans[0] >= 10 and spans[1] == 2
        rate = db.execute("SELECT sum(duplicates) FROM duplicate_rate_by_domain").fetchone()
        assert rate == (len(marked),)
        for view in ("duplicate_rate_by_dump", "duplicate_rate_by_host", "duplicate_spread"):
            assert db.execute(f"SELECT sum(duplicates) FROM {view}").fetchone() == (len(marked),)
        sizes = db.execute(
            "SELECT sum(docs), sum(clusters * (cluster_size - 1)) FROM cluster_sizes"
        ).fetchone()
        assert sizes == (db.execute("SELECT count(*) FROM documents").fetchone()[0], len(marked))
        spreads = {row[0] for row in db.execute("SELECT spread FROM duplicate_clusters").fetchall()}
        assert spreads <= {"spans_dumps", "within_dump", "dump_unknown"}


def test_exact_mode_ignores_near_copies_and_off_keeps_everything(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    with run_and_open(shards_with_duplicates, tmp_path / "exact", tiny_model, "--dedup", "exact") as db:
        marked = kinds(db)
        assert marked.keys() == {f"exact-{i}" for i in range(5)}
        assert db.execute("SELECT count(*) FROM documents WHERE dup_kind = 'near'").fetchone() == (0,)
    with run_and_open(shards_with_duplicates, tmp_path / "off", tiny_model, "--dedup", "off") as db:
        assert kinds(db) == {}
        assert db.execute("SELECT count(DISTINCT cluster_id) = count(*) FROM documents").fetchone() == (True,)


def test_strict_verification_keeps_only_exact_copies(
    shards_with_duplicates: Path, tmp_path: Path, tiny_model: Path
) -> None:
    # estimated Jaccard of a one-word deletion is below 1, so a threshold of 1 keeps only exact
    # copies — unless the containment rescue (default on) takes them, so it is switched off here
    run_and_open(shards_with_duplicates, tmp_path / "tags-only", tiny_model).close()
    tags = (tmp_path / "tags-only" / "tags").glob("*.parquet")
    tag_files = sorted(p for p in tags if not p.name.endswith(".skipped.parquet"))
    assert len(tag_files) == 2
    strict = clusters_of(tag_files, DedupSettings(verify_jaccard=1.0, verify_containment=0), tmp_path / "s")
    rescued = clusters_of(tag_files, DedupSettings(verify_jaccard=1.0), tmp_path / "s")
    assert len(strict) == 10  # 5 exact pairs
    # + most near pairs: each contains all but ~5 of the other's ~75 shingles, so its estimated
    # containment is high whenever its estimated Jaccard is not unluckily low
    assert strict.items() <= rescued.items() and len(rescued) >= 16


def test_banding_for_threshold_puts_the_s_curve_around_the_threshold() -> None:
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = banding_for_threshold(threshold, 112)
        assert bands * rows <= 112
        assert candidate_probability(threshold + 0.15, bands, rows) > 0.85 or threshold + 0.15 > 1
        assert candidate_probability(threshold - 0.3, bands, rows) < 0.2


def test_banding_matches_datasketch_lsh() -> None:
    """Our banding for a threshold is the one datasketch's MinHashLSH picks for itself."""
    for threshold, num_perm in ((0.8, 112), (0.7, 128), (0.5, 112), (0.9, 256)):
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert banding_for_threshold(threshold, num_perm) == (lsh.b, lsh.r)


def test_default_banding_catches_the_low_jaccard_copies() -> None:
    options = MinHashOptions()
    assert (options.bands, options.rows) == (48, 4)
    # injected copies go down to Jaccard 0.63: candidates with probability > 0.999 at 48x4 ...
    assert candidate_probability(0.63, options.bands, options.rows) > 0.999
    # ... while FineWeb's 14x8 would miss two in three of them
    assert candidate_probability(0.63, 14, 8) < 0.35


def test_candidate_probability_matches_the_closed_form() -> None:
    assert candidate_probability(1.0, 14, 8) == 1.0
    assert candidate_probability(0.0, 14, 8) == 0.0
    assert candidate_probability(0.5, 2, 1) == pytest.approx(0.75)


# --- the store's dedup stage on hand-made tags: LSH, verification, containment, spilling ---------

OPTIONS = MinHashOptions()


def signature_like(base: np.ndarray, agreement: float, rng: np.random.Generator) -> np.ndarray:
    """A signature that agrees with `base` in exactly round(agreement * num_perm) positions."""
    result = base.copy()
    changed = rng.choice(base.size, size=base.size - round(agreement * base.size), replace=False)
    result[changed] = rng.integers(0, 2**32, size=changed.size, dtype=np.uint32)
    return result


def write_tags(
    path: Path, signatures: np.ndarray, hashes: np.ndarray, shingles: np.ndarray, shard: str
) -> None:
    keys = batch_band_keys(signatures, OPTIONS.bands, OPTIONS.rows)
    pq.write_table(
        pa.table(
            {
                "shard": pa.array([shard] * len(hashes)),
                "row_index": pa.array(np.arange(len(hashes), dtype=np.int64)),
                "content_hash": pa.array(hashes, type=pa.uint64()),
                "minhash": pa.FixedSizeListArray.from_arrays(pa.array(signatures.ravel()), OPTIONS.num_perm),
                "band_keys": pa.FixedSizeListArray.from_arrays(pa.array(keys.ravel()), OPTIONS.bands),
                "n_shingles": pa.array(shingles.astype(np.uint32)),
            }
        ),
        path,
        row_group_size=8192,
    )


def clusters_of(
    tag_files: list[Path], settings: DedupSettings, spill: Path, edges_memory_limit: str | None = None
) -> dict[int, int]:
    spill.mkdir(exist_ok=True)
    database = spill / "db.duckdb"  # a file database, like the store's, so tables can spill too
    database.unlink(missing_ok=True)
    with duckdb.connect(str(database), config=connection_config(spill, settings)) as connection:
        connection.execute(load_sql("01_tags"), {"tag_files": [str(p) for p in tag_files]})
        if edges_memory_limit:
            connection.execute("SET memory_limit = $limit", {"limit": edges_memory_limit})
        nodes, roots = duplicate_clusters(connection, settings)
    return dict(zip(nodes.tolist(), roots.tolist(), strict=True))


@pytest.fixture()
def crafted_tags(tmp_path: Path) -> list[Path]:
    """Shard a: originals 0..9. Shard b (doc_seq 10..): copies of them with known agreement."""
    rng = np.random.default_rng(3)
    originals = rng.integers(0, 2**32, size=(10, OPTIONS.num_perm), dtype=np.uint32)
    hashes = rng.integers(0, 2**63, size=10, dtype=np.uint64)
    shingles = np.full(10, 1000)
    copies = np.stack(
        [
            originals[0],  # 10: exact copy (same content hash too)
            signature_like(originals[1], 0.0, rng),  # 11: exact copy whose signature shares nothing
            signature_like(originals[2], 0.9, rng),  # 12: near copy, J 0.9
            signature_like(originals[3], 0.65, rng),  # 13: lost a paragraph: J 0.65, contained
            signature_like(originals[4], 0.65, rng),  # 14: J 0.65, same size: a different page
            signature_like(originals[5], 0.3, rng),  # 15: J 0.3, an LSH candidate at most by chance
        ]
    )
    copy_hashes = np.concatenate([hashes[:2], rng.integers(0, 2**63, size=4, dtype=np.uint64)])
    copy_shingles = np.array([1000, 1000, 1000, 650, 1000, 1000])
    write_tags(tmp_path / "a.parquet", originals, hashes, shingles, "a")
    write_tags(tmp_path / "b.parquet", copies, copy_hashes, copy_shingles, "b")
    return [tmp_path / "a.parquet", tmp_path / "b.parquet"]


def test_exact_and_near_duplicates_across_shards_with_verification(
    crafted_tags: list[Path], tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    default = clusters_of(crafted_tags, DedupSettings(), spill)
    # exact copies always; J 0.9; the contained copy rescued by containment; not the J 0.65 page
    assert {k: v for k, v in default.items() if k >= 10} == {10: 0, 11: 1, 12: 2, 13: 3}
    no_rescue = clusters_of(crafted_tags, DedupSettings(verify_containment=0), spill)
    assert {k for k in no_rescue if k >= 10} == {10, 11, 12}
    everything = clusters_of(crafted_tags, DedupSettings(verify_jaccard=0), spill)
    assert {10, 11, 12, 13, 14} <= everything.keys()  # every LSH candidate at J 0.65 is kept
    strict = clusters_of(crafted_tags, DedupSettings(verify_jaccard=1.0, verify_containment=0), spill)
    assert {k for k in strict if k >= 10} == {10, 11}
    exact = clusters_of(crafted_tags, DedupSettings(mode="exact"), spill)
    assert exact == {0: 0, 1: 1, 10: 0, 11: 1}
    assert clusters_of(crafted_tags, DedupSettings(mode="off"), spill) == {}


def test_band_grouping_spills_under_a_small_memory_limit(tmp_path: Path) -> None:
    """Same clusters when the edges SQL gets 64 MB of DuckDB memory (tags: ~130 MB) as with 2 GB."""
    rng = np.random.default_rng(9)
    count = 100_000
    signatures = rng.integers(0, 2**32, size=(count, OPTIONS.num_perm), dtype=np.uint32)
    copies = rng.choice(count // 2, size=500, replace=False)
    signatures[count // 2 + np.arange(500)] = signatures[copies]
    hashes = rng.integers(0, 2**63, size=count, dtype=np.uint64)
    write_tags(tmp_path / "t.parquet", signatures, hashes, np.full(count, 500), "t")
    roomy = clusters_of(
        [tmp_path / "t.parquet"], DedupSettings(memory_limit="2GB", threads=1), tmp_path / "s1"
    )
    tight = clusters_of(
        [tmp_path / "t.parquet"], DedupSettings(threads=1), tmp_path / "s2", edges_memory_limit="64MB"
    )
    assert roomy == tight
    assert len(roomy) == 1000 and all(roomy[count // 2 + i] == copies[i] for i in range(500))


def test_build_settings_bound_memory_and_spill_under_out(tmp_path: Path) -> None:
    config = connection_config(tmp_path / ".duckdb-tmp", DedupSettings(memory_limit="1GB", threads=2))
    assert config["memory_limit"] == "1GB" and config["threads"] == 2
    assert config["temp_directory"] == (tmp_path / ".duckdb-tmp").as_posix()
    assert connection_config(tmp_path, DedupSettings())["memory_limit"].endswith("MB")


# --- boilerplate discount (sql/03b): shared licence headers are not evidence of duplication -------


def random_words(rng: random.Random, count: int) -> list[str]:
    """Made-up words from a large alphabet space, so unrelated texts share no 5-gram."""
    return [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(count)
    ]


def tags_from_texts(path: Path, texts: list[str]) -> None:
    from analyzer.taggers.minhash import MinHashTagger, content_hash

    signatures, shingle_counts = MinHashTagger(OPTIONS).signature_matrix([t.lower() for t in texts])
    hashes = np.array([content_hash(t) for t in texts], dtype=np.uint64)
    write_tags(path, signatures, hashes, shingle_counts, "t")


@pytest.fixture()
def header_family(tmp_path: Path) -> tuple[list[Path], dict[str, list[int]]]:
    """Files that share one generated licence header, plus real near-duplicate groups.

    0, 1: the header and a 12-word body each (true Jaccard ~0.8: one header, two different files);
    2..9: the header and a body of 80-160 words (they hold the header's minima on about half of
    the permutations, but match nothing well enough to be joined);
    10..16: one 300-word text and 6 near copies, each missing a different word (a big real cluster);
    17, 18: the header with a 250-word body, and a near copy of that file (a real pair that also
    shares the boilerplate).
    """
    rng = random.Random(11)
    header = random_words(rng, 150)
    texts = [" ".join(header + random_words(rng, 12)) for _ in range(2)]
    texts += [" ".join(header + random_words(rng, rng.randint(80, 160))) for _ in range(8)]
    article = random_words(rng, 300)
    texts.append(" ".join(article))
    for index in range(6):
        texts.append(" ".join(article[: 40 * index + 20] + article[40 * index + 21 :]))
    body = random_words(rng, 250)
    texts.append(" ".join(header + body))
    texts.append(" ".join(header + body[:100] + body[101:]))
    tags_from_texts(tmp_path / "t.parquet", texts)
    return [tmp_path / "t.parquet"], {"short": [0, 1], "cluster": list(range(10, 17)), "pair": [17, 18]}


def test_shared_boilerplate_does_not_join_different_files(
    header_family: tuple[list[Path], dict[str, list[int]]], tmp_path: Path
) -> None:
    tag_files, groups = header_family
    default = clusters_of(tag_files, DedupSettings(), tmp_path / "s1")
    without = clusters_of(tag_files, DedupSettings(boilerplate_clusters=0), tmp_path / "s2")
    first, second = groups["short"]
    # without the discount the two header-only files are joined: their signatures agree wherever
    # a minimum falls in the header, which is most permutations
    assert without.get(first) is not None and without.get(first) == without.get(second)
    # with it, the header's minima are held by many unrelated files, so they do not count
    assert default.get(first, first) != default.get(second, second)
    # the real near-duplicate groups survive: a cluster of 7 holds its minima as *one* cluster,
    # and the file pair agrees on its body as well as on the header
    assert {default.get(d) for d in groups["cluster"]} == {groups["cluster"][0]}
    assert default.get(groups["pair"][1]) == groups["pair"][0]
    # nothing else is joined
    linked = set(groups["cluster"]) | set(groups["pair"])
    assert set(default) == linked


def test_boilerplate_discount_is_off_at_zero_and_leaves_exact_copies(
    crafted_tags: list[Path], tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    on = clusters_of(crafted_tags, DedupSettings(), spill)
    off = clusters_of(crafted_tags, DedupSettings(boilerplate_clusters=0), spill)
    # random signatures share no minimum with a third document: the discount changes nothing
    assert on == off
    assert {10: 0, 11: 1}.items() <= on.items()


def test_boilerplate_threshold_rises_with_chance_collisions() -> None:
    from scipy.stats import poisson

    from analyzer.dedup.boilerplate import MINHASH_VALUES, boilerplate_threshold

    assert boilerplate_threshold(0, 1e12) == 0
    assert boilerplate_threshold(4, 0) == 4
    assert boilerplate_threshold(4, 1e6 * 500) == 4  # 1 M documents: lambda 0.12
    previous = 4
    for documents in (1e7, 1e8, 1e9):
        total = documents * 500
        threshold = boilerplate_threshold(4, total)
        expected = total / MINHASH_VALUES
        assert threshold >= previous
        # chance (K - 1 other documents holding the same minimum) stays within the tail ...
        assert poisson.sf(threshold - 2, expected) <= 1e-3
        # ... and K is the smallest such value above the requested minimum
        assert threshold == 4 or poisson.sf(threshold - 3, expected) > 1e-3
        previous = threshold
    assert previous > 4


def test_poisson_tail_matches_scipy() -> None:
    from scipy.stats import poisson

    from analyzer.dedup.boilerplate import poisson_at_least

    for mean in (0.0, 0.001, 0.12, 1.2, 12.0, 40.0):
        for count in (0, 1, 2, 3, 5, 8, 20, 60):
            assert poisson_at_least(count, mean) == pytest.approx(poisson.sf(count - 1, mean), abs=1e-9)
