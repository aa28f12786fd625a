"""The one text normalisation the domain classifier sees, at training and at prediction time.

Lower-casing and folding ASCII digits to 0 (prices, dates and line numbers then share features) are
what the model needs; newlines become spaces because fastText ends an example at a newline. fastText
itself splits on spaces, tabs, CR, VT, FF and NUL, and its character n-grams see punctuation inside
tokens, so nothing else is done here.

Earlier versions also spaced punctuation out and collapsed whitespace with regexes. On the labelled
dev set that bought nothing (macro-F1 0.961 with it, 0.961-0.962 without, same fastText settings)
and cost more than fastText itself: 22 MB/s per core against 390 MB/s for this byte-table version
(`classifiers/domain-v1.card.md` has the measurements).
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.symbol_density import with_density_marker_bytes

NORMALISATION_VERSION = 2
"""Recorded in every trained model's sidecar; a model trained on another version is refused, since
feeding it differently prepared text would quietly cost accuracy. 1: punctuation spaced out (until
November 2026); 2: this byte-table fold."""

DEFAULT_HEAD_CHARS = 4000
"""Characters of a document the classifier reads by default (web pages run 1-100 KB)."""

_FOLD_BYTES = bytes.maketrans(b"0123456789\n\r\x00", b"0000000000   ")
"""Digits to 0; line breaks and NUL to spaces (one example per line for fastText)."""


def normalise_for_classifier(
    text: str, head_chars: int | None = DEFAULT_HEAD_CHARS, symbol_bins: Sequence[float] = ()
) -> str:
    """Return the single-line, lower-cased, digit-folded form of `text` that fastText is fed.

    `head_chars` keeps only the first characters (None keeps all); the cut happens first so the cost
    does not grow with the document. Digits and line breaks are folded on the UTF-8 bytes, where a
    one-to-one byte table runs at C speed (str.translate and re.sub were 4-15x slower); these
    ASCII bytes never occur inside a multi-byte UTF-8 sequence, so the round trip is exact. With
    `symbol_bins` (a model trained with them, `analyzer.symbol_density`) the line starts with its
    symbol-density marker, counted on these same bytes.
    """
    if head_chars is not None:
        text = text[:head_chars]
    # "surrogatepass" keeps a lone surrogate (possible in a str built by hand) from raising
    encoded = text.lower().encode("utf-8", "surrogatepass").translate(_FOLD_BYTES)
    if symbol_bins:
        encoded = with_density_marker_bytes(encoded, symbol_bins)
    return encoded.decode("utf-8", "surrogatepass")
