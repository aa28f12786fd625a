"""LSH banding: how many bands of how many rows catch pairs above a Jaccard threshold."""

from __future__ import annotations

from datasketch.lsh import _optimal_param


def banding_for_threshold(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas of the S-curve.

    datasketch integrates 1-(1-s^r)^b below and above the threshold for every b*r <= num_perm; its
    private `_optimal_param` is the reference implementation of that search, so we call it
    rather than re-deriving it.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    bands, rows = _optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight)
    return int(bands), int(rows)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one band."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)
