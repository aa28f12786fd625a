"""MinHash signatures, LSH band keys and an exact-content hash for near-duplicate detection."""

from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import xxhash

from analyzer.config import MINHASH_BACKENDS, MinHashOptions
from analyzer.taggers.minhash_kernels import (
    U32,
    U64,
    batch_band_keys,
    batch_shingle_hashes,
    batch_signatures,
    batch_word_hashes,
    permutation_parameters,
)


def content_hash(text: str, lowered: bool = False) -> int:
    """Hash of the lower-cased, whitespace-collapsed text: equal for exact duplicates."""
    return xxhash.xxh3_64_intdigest(" ".join((text if lowered else text.lower()).split()).encode("utf-8"))


def resolve_backend(backend: str) -> str:
    """'auto' → 'rensa' when the package is importable, else 'numpy'; other names are checked."""
    if backend not in MINHASH_BACKENDS:
        raise ValueError(f"unknown MinHash backend {backend!r}; choose one of {', '.join(MINHASH_BACKENDS)}")
    if backend == "auto":
        return "rensa" if importlib.util.find_spec("rensa") is not None else "numpy"
    return backend


def rensa_signatures(shingles: U64, shingle_offsets: np.ndarray, num_perm: int, seed: int) -> U32:
    """rensa's RMinHash over flat shingle hashes: (rows x num_perm) uint32.

    rensa's digest matrix has no buffer interface; `to_rows()` (lists of ints) is the way out.
    An empty row is all 0xFFFFFFFF, as with the numpy backend.
    """
    import rensa

    rows = shingle_offsets.size - 1
    if rows == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        shingles, shingle_offsets.astype(np.uint64), num_perm, seed
    )
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(rows, num_perm)


class MinHashTagger:
    """Adds `content_hash`, `minhash` (uint32 per permutation), `band_keys` (uint64 per band) and
    `n_shingles` (word n-grams of the document, for containment estimates)."""

    name = "minhash"

    def __init__(self, options: MinHashOptions, signatures: bool = True) -> None:
        self.options = options
        self.signatures = signatures
        """False when only exact dedup is wanted: the signature columns are then null."""
        self.backend = resolve_backend(options.backend) if signatures else "none"
        self.version = (
            f"minhash-v2-{self.backend}-ngram{options.ngram}-b{options.bands}r{options.rows}-s{options.seed}"
            if signatures
            else "content-hash-v1"
        )
        self._multipliers, self._offsets = permutation_parameters(options.num_perm, options.seed)

    def signature_matrix(self, texts: list[str], lowered: bool = False) -> tuple[U32, np.ndarray]:
        """(documents x num_perm) signatures and the shingle count of every document."""
        words, word_offsets = batch_word_hashes(texts, lowered=lowered)
        shingles, shingle_offsets = batch_shingle_hashes(words, word_offsets, self.options.ngram)
        if self.backend == "rensa":
            matrix = rensa_signatures(shingles, shingle_offsets, self.options.num_perm, self.options.seed)
        else:
            matrix = batch_signatures(shingles, shingle_offsets, self._multipliers, self._offsets)
        return matrix, np.diff(shingle_offsets)

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = [text.lower() for text in documents.column("text").to_pylist()]
        hashes = np.array([content_hash(text, lowered=True) for text in texts], dtype=np.uint64)
        if not self.signatures:
            return {
                "content_hash": pa.array(hashes, type=pa.uint64()),
                "minhash": pa.nulls(len(texts), pa.list_(pa.uint32(), self.options.num_perm)),
                "band_keys": pa.nulls(len(texts), pa.list_(pa.uint64(), self.options.bands)),
                "n_shingles": pa.nulls(len(texts), pa.uint32()),
            }
        signatures, shingle_counts = self.signature_matrix(texts, lowered=True)
        keys = batch_band_keys(signatures, self.options.bands, self.options.rows)
        return {
            "content_hash": pa.array(hashes, type=pa.uint64()),
            "minhash": pa.FixedSizeListArray.from_arrays(
                pa.array(signatures.ravel(), type=pa.uint32()), self.options.num_perm
            ),
            "band_keys": pa.FixedSizeListArray.from_arrays(
                pa.array(keys.ravel(), type=pa.uint64()), self.options.bands
            ),
            "n_shingles": pa.array(shingle_counts.astype(np.uint32), type=pa.uint32()),
        }
