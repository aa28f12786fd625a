"""What a classifier reads beside its normalised text: the marker tokens put in front of its line.

A model trained with markers must predict from lines carrying the same markers, so the markers
travel as one value, `LineMarkers`, from the training recipe to the sidecar JSON and back into
`DomainModel`: the symbol-density marker (`analyzer.symbol_density`, counted by the normaliser) and
the lexicon markers (`analyzer.lexicon`, added to the normalised line). A model trained without
either reads `NO_MARKERS`, the plain normalised line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer import text_normalise
from analyzer.lexicon import DomainLexicon


@dataclass(frozen=True)
class LineMarkers:
    """The marker tokens a model's lines carry: a lexicon's (or None) and density bands (() for none)."""

    lexicon: DomainLexicon | None = None
    symbol_bins: tuple[float, ...] = ()

    def line(self, text: str, head_chars: int | None) -> str:
        """The classifier's line for `text`: normalised, density marker in front, then lexicon markers."""
        return self.annotate(self.unannotated_line(text, head_chars))

    def unannotated_line(self, text: str, head_chars: int | None) -> str:
        """`line` without the lexicon markers (the vectorised engine adds those per distinct token)."""
        return text_normalise.normalise_for_classifier(text, head_chars, self.symbol_bins)

    def annotate(self, line: str) -> str:
        """Put the lexicon markers in front of a normalised `line` (unchanged without a lexicon)."""
        return line if self.lexicon is None else self.lexicon.annotate(line)

    def sidecar_fields(self) -> dict[str, Any]:
        """The sidecar JSON keys that record these markers (none for NO_MARKERS, so a model without
        markers has the sidecar of a model from before they existed)."""
        fields: dict[str, Any] = {}
        if self.lexicon is not None:
            fields["lexicon"] = self.lexicon.to_json()
        if self.symbol_bins:
            fields["symbol_density_bins"] = list(self.symbol_bins)
        return fields


NO_MARKERS = LineMarkers()
"""The plain normalised line (models trained with `--no-lexicon --no-symbol-marker`, foreign models)."""
