"""Taggers: one module per tag, each a batch of documents in and columns out."""

from __future__ import annotations

from analyzer.config import RunConfig
from analyzer.taggers.base import Tagger
from analyzer.taggers.domain import DomainTagger
from analyzer.taggers.minhash import MinHashTagger
from analyzer.taggers.tokens import TokenCounter
from analyzer.taggers.url import UrlAndSizeTagger

__all__ = ["Tagger", "build_taggers"]


def build_taggers(config: RunConfig) -> list[Tagger]:
    """The taggers of a run, in the order their columns appear in the tags files."""
    return [
        UrlAndSizeTagger(),
        TokenCounter(config.tokenizer),
        DomainTagger(
            config.model_path, config.label_map_path, config.multi_label_threshold, config.classifier_engine
        ),
        MinHashTagger(config.minhash, signatures=config.dedup_mode == "near"),
    ]
