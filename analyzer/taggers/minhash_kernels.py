"""MinHash kernels as pure numpy functions: words → shingles → signature → LSH band keys.

Words are maximal runs of ASCII letters/digits or non-ASCII bytes in the lower-cased UTF-8 text,
so punctuation and whitespace edits do not change a document's shingles. Hashes are 64-bit and
wrap modulo 2**64 by design; numpy integer arrays wrap silently.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

_MAX_WORD_POSITIONS = 64
_SHINGLE_BLOCK = 8192
"""Shingles hashed against all permutations at once; bounds the temporary matrix to ~7 MB."""

_WORD_BYTE = np.zeros(256, dtype=bool)
for _byte in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _WORD_BYTE[_byte] = True
_WORD_BYTE[128:] = True

_rng = np.random.Generator(np.random.PCG64(0x5EED))
_POSITION_MULTIPLIERS: U64 = _rng.integers(1, 2**63, size=_MAX_WORD_POSITIONS, dtype=np.uint64) | np.uint64(1)
_NGRAM_MULTIPLIERS: U64 = _rng.integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)
_BAND_MULTIPLIERS: U64 = _rng.integers(1, 2**63, size=256, dtype=np.uint64) | np.uint64(1)


def mix64(values: U64) -> U64:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def word_hashes(text: str) -> U64:
    """One 64-bit hash per word of `text`, in order."""
    data = np.frombuffer(text.lower().encode("utf-8", "replace"), dtype=np.uint8)
    word_byte_positions = np.flatnonzero(_WORD_BYTE[data])
    if word_byte_positions.size == 0:
        return np.zeros(0, dtype=np.uint64)
    starts_word = np.empty(word_byte_positions.size, dtype=bool)
    starts_word[0] = True
    np.not_equal(np.diff(word_byte_positions), 1, out=starts_word[1:])
    word_starts = np.flatnonzero(starts_word)
    word_index = np.cumsum(starts_word) - 1
    position_in_word = np.arange(word_byte_positions.size) - word_starts[word_index]
    weighted = (
        data[word_byte_positions].astype(np.uint64)
        * _POSITION_MULTIPLIERS[position_in_word % _MAX_WORD_POSITIONS]
    )
    sums = np.add.reduceat(weighted, word_starts)
    lengths = np.diff(np.append(word_starts, word_byte_positions.size)).astype(np.uint64)
    return mix64(sums + lengths * np.uint64(0x9E3779B97F4A7C15))


def shingle_hashes(words: U64, ngram: int) -> U64:
    """Hashes of every run of `ngram` consecutive words; a shorter text is one shingle."""
    if words.size == 0:
        return np.zeros(0, dtype=np.uint64)
    width = min(ngram, words.size)
    count = words.size - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    for offset in range(width):
        combined += words[offset : offset + count] * _NGRAM_MULTIPLIERS[offset]
    return mix64(combined + np.uint64(width))


def permutation_parameters(num_perm: int, seed: int) -> tuple[U64, U64]:
    """Random (odd multiplier, offset) pairs, one per permutation, fixed by `seed`."""
    rng = np.random.Generator(np.random.PCG64(seed))
    multipliers = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    offsets = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return multipliers, offsets


def signature(shingles: U64, multipliers: U64, offsets: U64) -> U32:
    """Per permutation, the minimum over shingles of the upper 32 bits of `a*x + b` (mod 2**64)."""
    # The upper 32 bits of a minimum are the minimum of the upper 32 bits, so the shift is
    # applied once to the per-permutation minima instead of to every shingle.
    minima = np.full(multipliers.size, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, shingles.size, _SHINGLE_BLOCK):
        permuted = shingles[start : start + _SHINGLE_BLOCK, None] * multipliers[None, :]
        permuted += offsets[None, :]
        np.minimum(minima, permuted.min(axis=0), out=minima)
    return (minima >> np.uint64(32)).astype(np.uint32)


def band_keys(signature_row: U32, bands: int, rows: int) -> U64:
    """One 64-bit key per band: equal keys mean (up to 2**-64) equal rows of that band."""
    grid = signature_row[: bands * rows].astype(np.uint64).reshape(bands, rows)
    combined = (grid * _BAND_MULTIPLIERS[:rows][None, :]).sum(axis=1, dtype=np.uint64)
    return mix64(combined + np.arange(bands, dtype=np.uint64))


def estimated_jaccard(first: U32, second: U32) -> float:
    """Fraction of permutations whose minima agree: an unbiased estimate of Jaccard similarity."""
    return float(np.mean(first == second))
