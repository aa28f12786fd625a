"""MinHash kernels against slow, obviously-correct references and against datasketch."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.taggers.minhash_kernels import (
    band_keys,
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
