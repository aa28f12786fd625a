"""MinHash kernels against slow, obviously-correct references and against datasketch."""

from __future__ import annotations

import random
import re

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.config import MinHashOptions
from analyzer.taggers.minhash import MinHashTagger
from analyzer.taggers.minhash_kernels import (
    band_keys,
    batch_band_keys,
    batch_shingle_hashes,
    batch_signatures,
    batch_word_hashes,
    estimated_jaccard,
    permutation_parameters,
    shingle_hashes,
    signature,
    word_hashes,
)

WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+")


def reference_words(text: str) -> list[bytes]:
    """Words exactly as the kernel defines them: ASCII alphanumerics or non-ASCII bytes."""
    return WORD.findall(text.lower().encode("utf-8"))


def reference_shingles(text: str, ngram: int) -> set[tuple[bytes, ...]]:
    words = reference_words(text)
    if not words:
        return set()
    width = min(ngram, len(words))
    return {tuple(words[i : i + width]) for i in range(len(words) - width + 1)}


def jaccard(first: set[tuple[bytes, ...]], second: set[tuple[bytes, ...]]) -> float:
    return len(first & second) / len(first | second)


def text_pair(rng: random.Random, overlap: float) -> tuple[str, str]:
    vocabulary = [f"w{i}" for i in range(3000)]
    base = [rng.choice(vocabulary) for _ in range(400)]
    edited = list(base)
    for index in range(len(edited)):
        if rng.random() > overlap:
            edited[index] = rng.choice(vocabulary)
    return " ".join(base), " ".join(edited)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_word_hashes_follow_the_word_definition(text: str) -> None:
    words = reference_words(text)
    hashes = word_hashes(text)
    assert hashes.size == len(words)
    for i in range(len(words)):
        for j in range(len(words)):
            assert (hashes[i] == hashes[j]) == (words[i] == words[j])


def test_punctuation_and_case_do_not_change_shingles() -> None:
    first = shingle_hashes(word_hashes("The quick, brown fox -- jumps over the lazy dog!"), 5)
    second = shingle_hashes(word_hashes("the QUICK brown fox jumps\n\nover the lazy dog"), 5)
    assert np.array_equal(first, second)


def test_shingle_count_matches_reference() -> None:
    text = "one two three four five six seven"
    assert shingle_hashes(word_hashes(text), 5).size == len(reference_shingles(text, 5)) == 3
    assert shingle_hashes(word_hashes("just two"), 5).size == 1
    assert shingle_hashes(word_hashes("   ,,, "), 5).size == 0


@pytest.mark.parametrize("overlap", [0.5, 0.8, 0.9, 0.97])
def test_signature_estimates_jaccard_like_datasketch(overlap: float) -> None:
    rng = random.Random(int(overlap * 100))
    first, second = text_pair(rng, overlap)
    truth = jaccard(reference_shingles(first, 5), reference_shingles(second, 5))
    multipliers, offsets = permutation_parameters(512, seed=7)
    ours = estimated_jaccard(
        signature(shingle_hashes(word_hashes(first), 5), multipliers, offsets),
        signature(shingle_hashes(word_hashes(second), 5), multipliers, offsets),
    )
    sketches = []
    for text in (first, second):
        sketch = MinHash(num_perm=512, seed=7)
        sketch.update_batch([b" ".join(s) for s in reference_shingles(text, 5)])
        sketches.append(sketch)
    theirs = sketches[0].jaccard(sketches[1])
    # standard error of a 512-permutation estimate is at most 0.022; allow ~3 sigma
    assert abs(ours - truth) < 0.07
    assert abs(ours - theirs) < 0.09


def test_identical_texts_have_identical_band_keys_and_different_texts_do_not() -> None:
    multipliers, offsets = permutation_parameters(112, seed=1)
    rng = random.Random(3)
    first, second = text_pair(rng, 0.0)
    sig_first = signature(shingle_hashes(word_hashes(first), 5), multipliers, offsets)
    sig_again = signature(shingle_hashes(word_hashes(first), 5), multipliers, offsets)
    sig_second = signature(shingle_hashes(word_hashes(second), 5), multipliers, offsets)
    assert np.array_equal(band_keys(sig_first, 14, 8), band_keys(sig_again, 14, 8))
    assert not np.any(band_keys(sig_first, 14, 8) == band_keys(sig_second, 14, 8))


def test_band_key_equality_is_row_equality() -> None:
    rows = np.arange(16, dtype=np.uint32)
    changed = rows.copy()
    changed[9] += 1  # second band (rows 8..15) differs, first band does not
    keys, changed_keys = band_keys(rows, 2, 8), band_keys(changed, 2, 8)
    assert keys[0] == changed_keys[0] and keys[1] != changed_keys[1]


def test_long_documents_are_hashed_in_blocks() -> None:
    multipliers, offsets = permutation_parameters(16, seed=2)
    shingles = np.random.default_rng(0).integers(0, 2**63, size=20_000, dtype=np.uint64)
    blocked = signature(shingles, multipliers, offsets)
    direct = ((shingles[:, None] * multipliers[None, :] + offsets[None, :]) >> np.uint64(32)).min(axis=0)
    assert np.array_equal(blocked, direct.astype(np.uint32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=12), st.integers(min_value=1, max_value=6))
def test_batched_kernels_equal_the_per_document_kernels(texts: list[str], ngram: int) -> None:
    multipliers, offsets = permutation_parameters(16, seed=3)
    words, word_offsets = batch_word_hashes(texts)
    shingles, shingle_offsets = batch_shingle_hashes(words, word_offsets, ngram)
    signatures = batch_signatures(shingles, shingle_offsets, multipliers, offsets)
    assert word_offsets.size == shingle_offsets.size == len(texts) + 1
    for index, text in enumerate(texts):
        expected_words = word_hashes(text)
        expected_shingles = shingle_hashes(expected_words, ngram)
        assert np.array_equal(words[word_offsets[index] : word_offsets[index + 1]], expected_words)
        assert np.array_equal(
            shingles[shingle_offsets[index] : shingle_offsets[index + 1]], expected_shingles
        )
        assert np.array_equal(signatures[index], signature(expected_shingles, multipliers, offsets))
    keys = batch_band_keys(signatures, 4, 4)
    for index in range(len(texts)):
        assert np.array_equal(keys[index], band_keys(signatures[index], 4, 4))


def test_batched_signatures_cross_block_boundaries() -> None:
    multipliers, offsets = permutation_parameters(8, seed=4)
    rng = np.random.default_rng(1)
    rows = [
        rng.integers(0, 2**63, size=n, dtype=np.uint64)
        for n in (0, 300, 700, 0, 1, 5000, 3, 1024, 1025, 20_000, 2)
    ]
    flat = np.concatenate(rows)
    row_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([r.size for r in rows], out=row_offsets[1:])
    batched = batch_signatures(flat, row_offsets, multipliers, offsets)
    for index, row in enumerate(rows):
        assert np.array_equal(batched[index], signature(row, multipliers, offsets))


@pytest.mark.parametrize("backend", ["numpy", "rensa"])
@pytest.mark.parametrize("overlap", [0.6, 0.8, 0.95])
def test_tagger_signatures_agree_with_datasketch(backend: str, overlap: float) -> None:
    """Both backends' Jaccard estimates agree with datasketch's and with the true Jaccard."""
    if backend == "rensa":
        pytest.importorskip("rensa")
    rng = random.Random(int(overlap * 1000))
    pairs = [text_pair(rng, overlap) for _ in range(6)]
    tagger = MinHashTagger(MinHashOptions(bands=64, rows=4, seed=11, backend=backend))
    assert tagger.backend == backend
    signatures, counts = tagger.signature_matrix([text for pair in pairs for text in pair])
    assert signatures.shape == (12, 256)
    errors_ours, errors_theirs = [], []
    for index, (first, second) in enumerate(pairs):
        shingles = [reference_shingles(text, 5) for text in (first, second)]
        truth = jaccard(*shingles)
        assert counts[2 * index] == len(reference_words(first)) - 4  # no repeated 5-grams here
        ours = estimated_jaccard(signatures[2 * index], signatures[2 * index + 1])
        sketches = []
        for shingle_set in shingles:
            sketch = MinHash(num_perm=256, seed=11)
            sketch.update_batch([b" ".join(s) for s in shingle_set])
            sketches.append(sketch)
        errors_ours.append(ours - truth)
        errors_theirs.append(ours - sketches[0].jaccard(sketches[1]))
    # 256 permutations: standard error <= 0.031 per pair; the mean of 6 pairs is ~2.4x tighter
    assert max(abs(e) for e in errors_ours) < 0.1
    assert abs(float(np.mean(errors_ours))) < 0.04
    assert max(abs(e) for e in errors_theirs) < 0.13


def test_tagger_columns_and_unknown_backend() -> None:
    tagger = MinHashTagger(MinHashOptions(backend="numpy"))
    batch = pa.RecordBatch.from_pydict({"text": ["one two three four five six", "", "Just Two"]})
    columns = tagger.tag(batch)
    assert columns["n_shingles"].to_pylist() == [2, 0, 1]
    assert columns["minhash"].type.list_size == MinHashOptions().num_perm
    assert columns["band_keys"].type.list_size == MinHashOptions().bands
    assert columns["minhash"].to_pylist()[1] == [2**32 - 1] * MinHashOptions().num_perm
    with pytest.raises(ValueError, match="backend"):
        MinHashTagger(MinHashOptions(backend="gpu"))
    exact_only = MinHashTagger(MinHashOptions(), signatures=False).tag(batch)
    assert exact_only["n_shingles"].null_count == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab é,\n", max_size=60), max_size=6), st.integers(min_value=2, max_value=9))
def test_words_crossing_the_exponent_restarts_hash_the_same(texts: list[str], chunk: int) -> None:
    """Small exponent blocks force words across block edges; the stitched hashes must not change."""
    default, default_offsets = batch_word_hashes(texts)
    small, small_offsets = batch_word_hashes(texts, chunk=chunk)
    assert np.array_equal(default, small) and np.array_equal(default_offsets, small_offsets)
