"""Which documents a sampled run reads, and how much each one stands for.

The hash sample is a Bernoulli (Poisson) sample keyed on the document id, so it is the same on every
machine and rerun, nested across rates (everything kept at rate 0.1 is also kept at rate 0.2 with the
same seed) and independent of shard order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import xxhash

BoolArray = npt.NDArray[np.bool_]

_HASH_SPACE = 2**64


def _check_rate(rate: float) -> None:
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate!r}")


def sample_threshold(rate: float) -> int:
    """The integer a document's 64-bit hash must fall below to be kept at `rate`."""
    _check_rate(rate)
    return min(int(rate * _HASH_SPACE), _HASH_SPACE)


def sample_mask(doc_ids: Sequence[str], rate: float, seed: int = 0) -> BoolArray:
    """Keep document `id` iff xxh3_64(utf-8 id, seed=seed) < floor(rate * 2**64): same on every machine."""
    threshold = sample_threshold(rate)
    if threshold >= _HASH_SPACE:
        return np.ones(len(doc_ids), dtype=np.bool_)
    hashes = np.fromiter(
        (xxhash.xxh3_64_intdigest(doc_id.encode("utf-8"), seed=seed) for doc_id in doc_ids),
        dtype=np.uint64,
        count=len(doc_ids),
    )
    return hashes < np.uint64(threshold)


def inclusion_weight(rate: float) -> float:
    """How many corpus documents each hash-sampled document stands for (the inverse inclusion probability)."""
    _check_rate(rate)
    return 1.0 / rate


def first_n_mask(n_rows: int, max_docs: int | None) -> BoolArray:
    """Keep the first `max_docs` rows of a shard (all rows if `max_docs` is None), as `--max-docs-per-shard`.

    This is not a probability sample: a shard's head may differ from its tail (crawl order, sorted dumps),
    so estimates from it are only as good as that assumption. Weight kept rows by `shard_weight`.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if max_docs is not None and max_docs < 0:
        raise ValueError(f"max_docs must be >= 0, got {max_docs}")
    mask = np.zeros(n_rows, dtype=np.bool_)
    mask[: n_rows if max_docs is None else min(n_rows, max_docs)] = True
    return mask


def shard_weight(n_total: int, n_kept: int) -> float:
    """Weight of each kept row when a shard was truncated to its first rows: n_total / n_kept."""
    if n_kept <= 0 or n_total < n_kept:
        raise ValueError(f"need 0 < n_kept <= n_total, got n_kept={n_kept}, n_total={n_total}")
    return n_total / n_kept
