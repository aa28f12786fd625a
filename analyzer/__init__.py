"""Measure how much finance, law, code and medical text general web corpora contain."""

__version__ = "0.1.0"

DOMAINS: tuple[str, ...] = ("finance", "law", "code", "medical", "other")
"""The label set every model output is folded into, in the column order of `documents`."""
