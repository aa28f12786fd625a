"""Token counts: the Rust tokenizer loaded directly agrees with bpe-openai's tiktoken-style API."""

from __future__ import annotations

import bpe_openai
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.taggers import tokens
from analyzer.taggers.tokens import TokenCounter

SAMPLES = ["<|endoftext|> x", "def f(x):\n\treturn x**2  # ünï", "  \n\n "]


@pytest.mark.parametrize("encoding", tokens.OPENAI_ENCODINGS)
def test_the_direct_rust_tokenizer_loads(encoding: str) -> None:
    assert tokens._rust_tokenizer(encoding) is not None


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400) | st.sampled_from(SAMPLES))
def test_direct_counts_equal_encode_ordinary(text: str) -> None:
    rust = tokens._rust_tokenizer("cl100k_base")
    assert rust is not None
    assert rust.count(text) == len(bpe_openai.get_encoding("cl100k_base").encode_ordinary(text))


def test_counts_agree_with_and_without_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["Revenue rose 12% in the third quarter.", 'fn main() { println!("hi"); }', ""]
    batch = pa.RecordBatch.from_pydict({"text": texts})
    direct = TokenCounter("cl100k_base").tag(batch)["n_tokens"].to_pylist()
    monkeypatch.setattr(tokens, "_rust_tokenizer", lambda name: None)
    fallback = TokenCounter("cl100k_base").tag(batch)["n_tokens"].to_pylist()
    assert direct == fallback and direct[0] > 5 and direct[2] == 0


def test_a_text_past_the_package_limit_is_counted() -> None:
    text = "word " * 260_000  # 1.3 M characters: encode_ordinary refuses inputs this long
    counts = TokenCounter("cl100k_base").tag(pa.RecordBatch.from_pydict({"text": [text]}))["n_tokens"]
    assert 250_000 <= counts[0].as_py() <= 270_000
