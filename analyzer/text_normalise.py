"""The one text normalisation the domain classifier sees, at training and at prediction time.

fastText splits on whitespace only, so punctuation is spaced out: `foo(bar);` must yield the tokens
`foo ( bar ) ;`, which is most of what tells source code from prose. Digits fold to 0 so that
prices, dates and line numbers share features. Newlines become spaces because fastText treats a
newline as the end of an example.
"""

from __future__ import annotations

import re

DEFAULT_HEAD_CHARS = 6000
"""Characters of a document the classifier reads by default (web pages run 1-100 KB)."""

_PUNCTUATION = re.compile(r"[^\w\s]")
_DIGITS = re.compile(r"\d")


def normalise_for_classifier(text: str, head_chars: int | None = DEFAULT_HEAD_CHARS) -> str:
    """Return the single-line, lower-cased, punctuation-spaced form of `text` fastText is fed.

    `head_chars` keeps only the first characters (None keeps all); the cut happens before
    normalisation so its cost does not grow with the document.
    """
    if head_chars is not None:
        text = text[:head_chars]
    text = text.replace("\x00", " ").lower()
    text = _DIGITS.sub("0", text)
    # a function replacement skips re's template expansion, which dominated the cost
    text = _PUNCTUATION.sub(_spaced, text)
    return " ".join(text.split())


def _spaced(match: re.Match[str]) -> str:
    return f" {match.group()} "
