"""Symbol-density marker: one token per classifier line saying how much code punctuation it holds.

Source code is defined by its syntax more than by its words: `;`, braces, brackets, `=`, `_` and
friends make up 3-15 % of a source file's characters and well under 1 % of prose. fastText sees
punctuation only inside its character n-grams of single tokens, so a page that talks about
software (a driver review, a how-to for clicking through Windows folders) and a source file can
look alike to it. The marker puts the line's density of those characters, binned, in front of the
line as one token (`__symbols<k>__`), so the model learns one weight per density band.

Measured with the recipe of the time (lexicon v3, `classifiers/domain-v1.card.md`): dev macro-F1
0.9655, 0.9648, 0.9656 at fastText seeds 0, 1, 2 against 0.9650, 0.9637, 0.9639 without the marker;
leave-one-source-out 0.8804 against 0.8783. Every band set tried on dev (three) gained 0.1-0.3 point
over three seeds, so the shipped bands are a plain 1-2-5 series rather than the best of them on dev.

The density is computed by the normaliser (`text_normalise.normalise_for_classifier`) on the
folded UTF-8 bytes it already holds (so before lexicon markers, whose `__` would count), with
bytes.translate deleting the other bytes at C speed: ~1.4 ms per MB of text, about 3 % of
prediction time (a separate pass over the decoded line cost 5.5 %).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from analyzer.errors import ModelError

CODE_SYMBOLS = b";{}=()<>[]_#/*\\|$&"
"""The ASCII characters whose density the marker bins."""

SYMBOL_DENSITY_BINS: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""Lower edges of the density bands after the first: a line with density d gets marker k, the
number of edges <= d. A 1-2-5 series: prose sits below 0.01, source files above 0.03."""

_OTHER_BYTES = bytes(byte for byte in range(256) if byte not in CODE_SYMBOLS)


def byte_density(encoded: bytes) -> float:
    """Fraction of `encoded` that is CODE_SYMBOLS bytes (0.0 when empty)."""
    if not encoded:
        return 0.0
    return len(encoded.translate(None, _OTHER_BYTES)) / len(encoded)


def density_marker(band: int) -> str:
    """The token for density band `band` (0 = below the first edge)."""
    return f"__symbols{band}__"


_MARKER_PREFIXES = tuple(f"{density_marker(band)} ".encode("ascii") for band in range(64))


def with_density_marker_bytes(encoded: bytes, bins: Sequence[float]) -> bytes:
    """Return the UTF-8 line `encoded` with its density marker in front; unchanged when `bins` is
    empty or the line holds no token (an empty document is read as it was before the marker
    existed). Works on bytes because the normaliser already holds them: no second encode."""
    if not bins or not encoded.strip():
        return encoded
    return _MARKER_PREFIXES[bisect_right(bins, byte_density(encoded))] + encoded


def checked_bins(raw: object, origin: str) -> tuple[float, ...]:
    """Validate bins read from a model sidecar: increasing numbers in (0, 1]; raise ModelError."""
    if not isinstance(raw, list) or not all(
        isinstance(edge, int | float) and not isinstance(edge, bool) for edge in raw
    ):
        raise ModelError(f"{origin}: `symbol_density_bins` must be a list of numbers; retrain the model")
    edges = tuple(float(edge) for edge in raw)
    if any(not 0.0 < edge <= 1.0 for edge in edges) or list(edges) != sorted(set(edges)):
        raise ModelError(
            f"{origin}: `symbol_density_bins` must be increasing fractions in (0, 1]; retrain the model"
        )
    if len(edges) >= len(_MARKER_PREFIXES):
        raise ModelError(f"{origin}: `symbol_density_bins` holds more than {len(_MARKER_PREFIXES) - 1} edges")
    return edges
