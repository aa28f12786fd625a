"""MinHash kernels as pure numpy functions: words → shingles → signature → LSH band keys.

Words are maximal runs of ASCII letters/digits or non-ASCII bytes in the lower-cased UTF-8 text,
so punctuation and whitespace edits do not change a document's shingles. Hashes are 64-bit and
wrap modulo 2**64 by design; numpy integer arrays wrap silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from analyzer.segment_hashing import byte_runs, mix64, segment_hashes

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

_SHINGLE_BLOCK = 8192
"""Shingles hashed against all permutations at once; bounds the temporary matrix to ~7 MB."""
_BATCH_SHINGLE_BLOCK = 1024
"""Shingles of several short rows hashed at once (measured faster than 8192: fits in cache)."""

_WORD_BYTE = np.zeros(256, dtype=bool)
for _byte in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _WORD_BYTE[_byte] = True
_WORD_BYTE[128:] = True

_rng = np.random.Generator(np.random.PCG64(0x5EED))
_rng.integers(
    1, 2**63, size=64, dtype=np.uint64
)  # (was: per-position word multipliers) keeps the draws below
_NGRAM_MULTIPLIERS: U64 = _rng.integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)
_BAND_MULTIPLIERS: U64 = _rng.integers(1, 2**63, size=256, dtype=np.uint64) | np.uint64(1)


def word_hashes(text: str) -> U64:
    """One 64-bit hash per word of `text`, in order (`batch_word_hashes` of one text)."""
    return batch_word_hashes([text])[0]


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


def batch_word_hashes(
    texts: Sequence[str], chunk: int | None = None, lowered: bool = False
) -> tuple[U64, I64]:
    """Word hashes of many texts in one numpy pass: (flat hashes, row offsets of size len+1).

    The texts are joined with a newline, which is not a word byte, so no word spans two texts.
    A word's hash is `analyzer.segment_hashing.segment_hashes` of its bytes. One pass over the
    bytes for all texts removes numpy's per-call overhead (~60 us per document) and the per-byte
    position arithmetic of a per-word reduction.
    `lowered=True` says the caller has already lower-cased the texts.
    """
    encoded = [(text if lowered else text.lower()).encode("utf-8", "replace") for text in texts]
    byte_starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(piece) + 1 for piece in encoded], out=byte_starts[1:])
    data = np.frombuffer(b"\n".join(encoded) + b"\n", dtype=np.uint8)
    starts, ends = byte_runs(_WORD_BYTE[data])
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.searchsorted(starts, byte_starts[1:])
    if starts.size == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    return segment_hashes(data, starts, ends, chunk), offsets


def batch_shingle_hashes(words: U64, word_offsets: I64, ngram: int) -> tuple[U64, I64]:
    """`shingle_hashes` of every row of a flat word-hash batch: (flat shingles, row offsets).

    Shingles are computed over the whole flat array at once and those that would span two rows
    are dropped; a row with fewer than `ngram` (but some) words gets its one short shingle.
    """
    rows = word_offsets.size - 1
    counts = np.diff(word_offsets)
    shingle_counts = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(shingle_counts, out=offsets[1:])
    result = np.empty(int(offsets[-1]), dtype=np.uint64)
    if words.size >= ngram:
        count = words.size - ngram + 1
        combined = np.zeros(count, dtype=np.uint64)
        for offset in range(ngram):
            combined += words[offset : offset + count] * _NGRAM_MULTIPLIERS[offset]
        combined += np.uint64(ngram)
        # position i starts a full shingle of its row when i + ngram <= the row's end
        row_of_word = np.repeat(np.arange(rows), counts)[:count]
        valid = np.arange(count) + ngram <= word_offsets[1:][row_of_word]
        full_rows = counts >= ngram
        result_full = mix64(combined[valid])
        destination = np.repeat(full_rows, shingle_counts).astype(bool)
        result[destination] = result_full
    for row in np.flatnonzero((counts > 0) & (counts < ngram)):
        start = int(offsets[row])
        result[start] = shingle_hashes(words[word_offsets[row] : word_offsets[row + 1]], ngram)[0]
    return result, offsets


def batch_signatures(shingles: U64, shingle_offsets: I64, multipliers: U64, offsets: U64) -> U32:
    """`signature` of every row of a flat shingle batch, one (rows x num_perm) uint32 matrix.

    Rows are processed in groups of at most `_BATCH_SHINGLE_BLOCK` shingles: one (shingles x perms)
    product per group, reduced per row with `np.minimum.reduceat`; a longer row goes alone through
    the blocked `signature`, so the temporary matrix stays small. An empty row keeps the all-ones
    signature.
    """
    rows = shingle_offsets.size - 1
    result = np.full((rows, multipliers.size), np.iinfo(np.uint32).max, dtype=np.uint32)
    counts = np.diff(shingle_offsets)
    row = 0
    while row < rows:
        if counts[row] > _BATCH_SHINGLE_BLOCK:
            start, stop = int(shingle_offsets[row]), int(shingle_offsets[row + 1])
            result[row] = signature(shingles[start:stop], multipliers, offsets)
            row += 1
            continue
        limit = shingle_offsets[row] + _BATCH_SHINGLE_BLOCK
        end = min(max(int(np.searchsorted(shingle_offsets, limit, side="right")) - 1, row + 1), rows)
        first, last = int(shingle_offsets[row]), int(shingle_offsets[end])
        nonempty = np.flatnonzero(counts[row:end] > 0) + row
        if nonempty.size:
            permuted = shingles[first:last, None] * multipliers[None, :]
            permuted += offsets[None, :]
            minima = np.minimum.reduceat(permuted, shingle_offsets[nonempty] - first, axis=0)
            result[nonempty] = (minima >> np.uint64(32)).astype(np.uint32)
        row = end
    return result


def batch_band_keys(signatures: U32, bands: int, rows: int) -> U64:
    """`band_keys` of every row of a signature matrix: (documents x bands) uint64."""
    grid = signatures[:, : bands * rows].astype(np.uint64).reshape(signatures.shape[0], bands, rows)
    combined = (grid * _BAND_MULTIPLIERS[:rows][None, None, :]).sum(axis=2, dtype=np.uint64)
    return mix64(combined + np.arange(bands, dtype=np.uint64)[None, :])
