"""MinHash signatures, LSH band keys and an exact-content hash for near-duplicate detection."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from analyzer.config import MinHashOptions
from analyzer.taggers.minhash_kernels import (
    band_keys,
    permutation_parameters,
    shingle_hashes,
    signature,
    word_hashes,
)


def content_hash(text: str) -> int:
    """Hash of the lower-cased, whitespace-collapsed text: equal for exact duplicates."""
    return xxhash.xxh3_64_intdigest(" ".join(text.lower().split()).encode("utf-8"))


class MinHashTagger:
    """Adds `content_hash`, `minhash` (uint32 per permutation) and `band_keys` (uint64 per band)."""

    name = "minhash"

    def __init__(self, options: MinHashOptions, signatures: bool = True) -> None:
        self.options = options
        self.signatures = signatures
        """False when only exact dedup is wanted: the signature columns are then null."""
        self.version = (
            f"minhash-v1-ngram{options.ngram}-b{options.bands}r{options.rows}-s{options.seed}"
            if signatures
            else "content-hash-v1"
        )
        self._multipliers, self._offsets = permutation_parameters(options.num_perm, options.seed)

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = documents.column("text").to_pylist()
        hashes = np.array([content_hash(text) for text in texts], dtype=np.uint64)
        if not self.signatures:
            return {
                "content_hash": pa.array(hashes, type=pa.uint64()),
                "minhash": pa.nulls(len(texts), pa.list_(pa.uint32(), self.options.num_perm)),
                "band_keys": pa.nulls(len(texts), pa.list_(pa.uint64(), self.options.bands)),
            }
        signatures = np.empty((len(texts), self.options.num_perm), dtype=np.uint32)
        keys = np.empty((len(texts), self.options.bands), dtype=np.uint64)
        for index, text in enumerate(texts):
            shingles = shingle_hashes(word_hashes(text), self.options.ngram)
            signatures[index] = signature(shingles, self._multipliers, self._offsets)
            keys[index] = band_keys(signatures[index], self.options.bands, self.options.rows)
        return {
            "content_hash": pa.array(hashes, type=pa.uint64()),
            "minhash": pa.FixedSizeListArray.from_arrays(
                pa.array(signatures.ravel(), type=pa.uint32()), self.options.num_perm
            ),
            "band_keys": pa.FixedSizeListArray.from_arrays(
                pa.array(keys.ravel(), type=pa.uint64()), self.options.bands
            ),
        }
