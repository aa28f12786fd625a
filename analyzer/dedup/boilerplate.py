"""How many distinct clusters must share a MinHash minimum before it counts as boilerplate.

sql/03b_discount_boilerplate.sql leaves out of a pair's Jaccard estimate every permutation on
which the two agree on a minimum that at least K distinct provisional clusters hold. Signatures
keep 32-bit minima, so in a large run unrelated documents also share a minimum by chance: a
document with n shingles has a given small value as its minimum with probability ~n / 2^32, so
the number of *other* documents holding one given minimum is ~Poisson(lambda) with
lambda = (shingles in the run) / 2^32 (0.12 for 1 M documents of 500 shingles). K is raised until
chance alone reaches it with probability at most `chance_tail`, so the discount only ever
responds to text that is really shared.
"""

from __future__ import annotations

import math

MINHASH_VALUES = 2.0**32


def boilerplate_threshold(minimum: int, total_shingles: float, chance_tail: float = 1e-3) -> int:
    """K: at least `minimum`, and high enough that chance collisions of 32-bit minima rarely reach it.

    The pair's own cluster holds the minimum, so chance reaches K when K - 1 other documents
    collide: P(Poisson(lambda) >= K - 1) <= chance_tail. `minimum` <= 0 switches the discount off
    (returns 0).
    """
    if minimum <= 0:
        return 0
    expected = max(float(total_shingles), 0.0) / MINHASH_VALUES
    threshold = max(int(minimum), 2)
    while poisson_at_least(threshold - 1, expected) > chance_tail:
        threshold += 1
    return threshold


def poisson_at_least(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean), as 1 - P(X < count) (scipy.stats would cost ~0.8 s to import)."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    below = sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(count))
    return max(0.0, 1.0 - below)
