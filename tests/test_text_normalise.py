"""The classifier's text normalisation: what it folds, what it keeps, and that it is one line."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from analyzer.text_normalise import normalise_for_classifier


def test_lowercases_folds_ascii_digits_and_joins_lines() -> None:
    text = "Revenue ROSE 12.5% in Q3\r\n2024:\tnet = $1,034;\x00done"
    assert normalise_for_classifier(text, None) == "revenue rose 00.0% in q0  0000:\tnet = $0,000; done"


def test_keeps_non_ascii_text_and_punctuation_inside_tokens() -> None:
    text = "Ärztliche Überweisung · «Dosis» 5 mg, café"
    assert normalise_for_classifier(text, None) == "ärztliche überweisung · «dosis» 0 mg, café"


def test_cuts_the_head_before_normalising() -> None:
    text = "A" * 10 + "\n" + "B" * 10
    assert normalise_for_classifier(text, 5) == "aaaaa"
    assert normalise_for_classifier(text, None) == "a" * 10 + " " + "b" * 10


def test_lone_surrogates_do_not_raise() -> None:
    assert normalise_for_classifier("x\ud800y 7", None) == "x\ud800y 0"


@given(st.text(max_size=300), st.one_of(st.none(), st.integers(min_value=1, max_value=200)))
def test_output_is_one_line_of_the_lowercased_head(text: str, head: int | None) -> None:
    out = normalise_for_classifier(text, head)
    head_text = text if head is None else text[:head]
    assert "\n" not in out and "\r" not in out and "\x00" not in out
    assert not re.search(r"[1-9]", out)
    # byte-for-byte folding never changes the length of the lower-cased head
    assert len(out) == len(head_text.lower())
