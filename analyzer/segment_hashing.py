"""64-bit hashes of many byte segments of one buffer at once (words, tokens), as numpy passes.

A segment's hash is a polynomial in its bytes, sum(byte_j * B**(j - start)) mod 2**64, read off a
prefix sum of byte_j * B**j as (prefix[end] - prefix[start]) * B**-start (B is odd, so it has an
inverse mod 2**64), plus the segment's length, through mix64. It depends on the bytes only, not on
where they sit. The exponents restart every `chunk` bytes so the power tables stay small; the few
segments crossing a restart are stitched from their pieces.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def mix64(values: U64) -> U64:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _modular_inverse(odd: int) -> int:
    """x with odd * x == 1 (mod 2**64), by Newton's iteration (each step doubles the correct bits)."""
    inverse = odd
    for _ in range(6):
        inverse = inverse * (2 - odd * inverse) % 2**64
    return inverse


_WORD_BASE = 0x9E3779B97F4A7C15
"""Odd base of the polynomial sum(byte_j * base**(j - start)) mod 2**64."""
_HASH_CHUNK = 1 << 20
"""Bytes per block of the position tables (2 x 8 MB); a segment crossing a block is stitched."""


@functools.lru_cache(maxsize=4)
def _power_tables(chunk: int) -> tuple[U64, U64]:
    """base**j and base**-j mod 2**64 for j < chunk."""
    powers = np.empty(chunk, dtype=np.uint64)
    inverse_powers = np.empty(chunk, dtype=np.uint64)
    powers[0] = inverse_powers[0] = 1
    np.cumprod(np.full(chunk - 1, _WORD_BASE, dtype=np.uint64), out=powers[1:])
    np.cumprod(np.full(chunk - 1, _modular_inverse(_WORD_BASE), dtype=np.uint64), out=inverse_powers[1:])
    return powers, inverse_powers


def byte_runs(member: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """Start and end offsets of the maximal runs of True in `member` (e.g. word bytes of a buffer)."""
    edges = np.empty(member.size + 1, dtype=bool)
    if member.size:
        edges[0], edges[-1] = member[0], member[-1]
        np.not_equal(member[1:], member[:-1], out=edges[1:-1])
    else:
        edges[0] = False
    boundaries = np.flatnonzero(edges)
    return boundaries[0::2], boundaries[1::2]


def segment_hashes(data: npt.NDArray[np.uint8], starts: I64, ends: I64, chunk: int | None = None) -> U64:
    """The hash of every segment data[starts[i]:ends[i]] (non-empty, in increasing order or not)."""
    chunk = chunk or _HASH_CHUNK
    powers, inverse_powers = _power_tables(chunk)
    prefix = np.zeros(data.size + 1, dtype=np.uint64)
    for block in range(0, data.size, chunk):
        piece = data[block : block + chunk]
        np.multiply(piece, powers[: piece.size], out=prefix[block + 1 : block + 1 + piece.size])
    np.cumsum(prefix, out=prefix)
    values = (prefix[ends] - prefix[starts]) * inverse_powers[starts % chunk]
    for word in np.flatnonzero(starts // chunk != (ends - 1) // chunk):
        values[word] = _stitched_word_value(prefix, inverse_powers, int(starts[word]), int(ends[word]), chunk)
    lengths = (ends - starts).astype(np.uint64)
    return mix64(values + lengths * np.uint64(0x9E3779B97F4A7C15))


def _stitched_word_value(prefix: U64, inverse_powers: U64, start: int, end: int, chunk: int) -> np.uint64:
    """The polynomial value of a segment whose bytes cross one or more exponent restarts."""
    total = 0
    piece_start = start
    while piece_start < end:
        piece_end = min(end, (piece_start // chunk + 1) * chunk)
        piece = (int(prefix[piece_end]) - int(prefix[piece_start])) * int(inverse_powers[piece_start % chunk])
        total = (total + piece * pow(_WORD_BASE, piece_start - start, 2**64)) % 2**64
        piece_start = piece_end
    return np.uint64(total)
