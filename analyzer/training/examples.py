"""Which training lines a model learns from: source balancing and extra windows of long documents.

Labeled data is usually a few large sources per label (here: SEC filings and FOMC texts for
finance, CUAD contracts for law, MedQuAD pages for medical). Trained on the documents as they come,
fastText learns those sources' style as much as their subject, and reads a new source of the same
domain poorly: leave-one-source-out macro-F1 was 0.814 against 0.960 on dev (source_holdout.py,
bench/classifier_sources.py). Two changes to the training set carry over better:
- source balancing: within each label, the documents of a source are repeated or subsampled so the
  source's weight grows as n ** `source_balance` (0.5: square root) rather than n, keeping each
  label's total; small sources (a few web pages) are heard, one big collection does not set the style;
- extra windows: a document longer than the head the classifier reads also contributes its next
  `extra_windows` windows of `head` characters as examples of its label, so the model learns the
  domain's vocabulary beyond the opening boilerplate of one source.
Together they raised leave-one-source-out macro-F1 from 0.814 to 0.837 and cost 0.2 point of dev
macro-F1 (0.960 to 0.958; `make bench-classifier` has each change alone).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analyzer.line_markers import NO_MARKERS, LineMarkers
from analyzer.training.data import LabeledData

MIN_WINDOW_CHARS = 500
"""An extra window shorter than this (the tail end of a document) is not used: too little text to
say much about the label."""


@dataclass(frozen=True)
class TrainingSetRecipe:
    """How labeled documents become fastText training lines (see the module docstring)."""

    source_balance: float = 0.5
    """Exponent a: a (label, source) group of n documents gets a weight ~ n ** a within its label;
    1.0 keeps the documents as they are."""
    extra_windows: int = 2
    """Further `head`-long windows of a long document used as examples (0: the head only)."""
    shuffle_seed: int = 0

    def short(self) -> str:
        """Return a compact one-line description for tables."""
        balance = "as read" if self.source_balance == 1.0 else f"sources^{self.source_balance:g}"
        return f"{balance}, {self.extra_windows} extra windows"


AS_READ = TrainingSetRecipe(source_balance=1.0, extra_windows=0)
"""Every document once, its head only: the recipe before source balancing."""


def balanced_indices(
    labels: Sequence[str], sources: Sequence[str], indices: Sequence[int], exponent: float, rng: random.Random
) -> list[int]:
    """Indices (with repeats) so each (label, source) group weighs ~ n ** exponent within its label.

    A label keeps its number of lines; a group whose target exceeds its size is repeated whole as
    often as it fits and topped up by a seeded sample; a smaller target is a seeded sample.
    """
    if exponent == 1.0:
        return list(indices)
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in indices:
        groups[labels[i]][sources[i]].append(i)
    chosen: list[int] = []
    for label in sorted(groups):
        by_source = groups[label]
        total = sum(len(members) for members in by_source.values())
        denominator = sum(len(members) ** exponent for members in by_source.values())
        for source in sorted(by_source):
            members = by_source[source]
            target = round(total * len(members) ** exponent / denominator)
            whole, remainder = divmod(target, len(members))
            chosen += members * whole + rng.sample(members, remainder)
    return chosen


def document_lines(
    text: str,
    head: int | None,
    extra_windows: int,
    markers: LineMarkers = NO_MARKERS,
) -> list[str]:
    """The prepared head of `text` and up to `extra_windows` further windows of `head` characters."""
    lines = [markers.line(text, head)]
    if head is None:
        return lines
    for number in range(1, extra_windows + 1):
        window = text[number * head : (number + 1) * head]
        if len(window) < MIN_WINDOW_CHARS:
            break
        lines.append(markers.line(window, None))
    return lines


def training_examples(
    data: LabeledData,
    indices: Sequence[int] | None,
    pieces: Callable[[str], list[str]],
    recipe: TrainingSetRecipe,
) -> tuple[list[str], list[str]]:
    """Return shuffled (normalised lines, labels) for the documents at `indices` (None: all).

    `pieces(text)` gives a document's lines (`TextView.training_pieces`: the head and extra windows,
    or the chunks of a chunked view).
    """
    rng = random.Random(recipe.shuffle_seed)
    chosen = list(range(len(data.texts))) if indices is None else [int(i) for i in indices]
    sources = data.sources if len(data.sources) == len(data.texts) else ["unknown"] * len(data.texts)
    chosen = balanced_indices(data.labels, sources, chosen, recipe.source_balance, rng)
    pairs = [(line, data.labels[i]) for i in chosen for line in pieces(data.texts[i])]
    rng.shuffle(pairs)
    return [line for line, _ in pairs], [label for _, label in pairs]
