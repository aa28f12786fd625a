"""From shares to tokens: domain token counts with intervals, ratios to reference corpora, and conversion
between tokenizers.

The corpus token total is treated as known; if it is itself estimated from a sample, its uncertainty is
not in these intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DomainTokens:
    """Tokens per domain with the interval carried over from the share interval."""

    tokens: FloatArray
    lo: FloatArray
    hi: FloatArray


def extrapolate(shares: ArrayLike, lo: ArrayLike, hi: ArrayLike, corpus_tokens: float) -> DomainTokens:
    """Scale shares and their bounds by the corpus token total: tokens per domain with interval."""
    if not np.isfinite(corpus_tokens) or corpus_tokens < 0:
        raise ValueError(f"corpus_tokens must be finite and >= 0, got {corpus_tokens}")
    point, low, high = (np.asarray(a, dtype=np.float64) for a in (shares, lo, hi))
    if not point.shape == low.shape == high.shape:
        raise ValueError("shares, lo and hi must have the same shape")
    # Only lo <= hi is required: basic or BCa bounds may legitimately sit off-centre of the point.
    if np.any(low > high):
        raise ValueError("need lo <= hi for every domain")
    return DomainTokens(point * corpus_tokens, low * corpus_tokens, high * corpus_tokens)


def ratio_to_reference(domain_tokens: ArrayLike, reference_tokens: ArrayLike) -> FloatArray:
    """How many times the reference corpus (per domain or one total) each domain's tokens amount to."""
    ref = np.asarray(reference_tokens, dtype=np.float64)
    if np.any(ref <= 0):
        raise ValueError("reference_tokens must be > 0")
    out: FloatArray = np.asarray(domain_tokens, dtype=np.float64) / ref
    return out


def convert_tokens(
    tokens: ArrayLike, bytes_per_token_from: ArrayLike, bytes_per_token_to: ArrayLike
) -> FloatArray:
    """Re-express token counts in another tokenizer's units via (per-domain) bytes-per-token ratios.

    Text bytes are invariant: tokens_to = tokens_from * bytes_per_token_from / bytes_per_token_to.
    """
    src = np.asarray(bytes_per_token_from, dtype=np.float64)
    dst = np.asarray(bytes_per_token_to, dtype=np.float64)
    if np.any(src <= 0) or np.any(dst <= 0):
        raise ValueError("bytes-per-token ratios must be > 0")
    out: FloatArray = np.asarray(tokens, dtype=np.float64) * src / dst
    return out
