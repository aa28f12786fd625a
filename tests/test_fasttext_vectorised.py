"""The vectorised fastText predict against fastText's own, on generated text and hand-made models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from generated import corpus_documents, labeled_rows, write_fineweb_parquet
from harness import run_and_open

from analyzer import fasttext_vectorised
from analyzer.classifier_model import DomainModel, fasttext_probabilities, model_labels
from analyzer.config import shipped_model_path
from analyzer.errors import ModelError
from analyzer.fasttext_vectorised import (
    TokenTable,
    VectorisedFastText,
    decoded_segments,
    token_bounds,
    token_hashes,
)
from analyzer.text_normalise import normalise_for_classifier

TRICKY_LINES = [
    "",
    "   ",
    "\t\x0b\x0c",
    "plain ascii words and a dividend",
    "  leading and trailing spaces  ",
    "tabs\tand\x0bvertical\x0ctabs split words too",
    "non-breaking\u00a0space stays inside a token",
    "ärztliche überweisung · «dosis» café naïve",
    "中文 字符 日本語のテキスト 한국어",
    "emoji 🙂🚀 mixed with text🙂",
    "__label__code is dropped, __label__nonsense too, but label__ is a word",
    "x" * 700 + " a-very-long-token-" + "é" * 300,
    "a b c d e f g h",
    "</s> eos as text",
]


def train(directory: Path, name: str, **params: Any) -> Any:
    import fasttext

    rng = random.Random(7)
    extra = ["café", "naïve", "überweisung", "日本語", "🙂", "x0000", "$0.00", "</s>"]
    path = directory / f"{name}.txt"
    with path.open("w", encoding="utf-8") as handle:
        for row in labeled_rows(300, seed=3):
            words = row["text"].split() + rng.sample(extra, 2)
            rng.shuffle(words)
            handle.write(f"__label__{row['label']} {normalise_for_classifier(' '.join(words))}\n")
    return fasttext.train_supervised(str(path), thread=1, seed=1, verbose=0, epoch=3, bucket=5000, **params)


def generated_lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghij éüß中文🙂\t0"
    lines = [normalise_for_classifier(row["text"]) for row in labeled_rows(count, seed=seed)]
    for index in range(0, count, 3):  # words the model never saw, some of them non-ASCII
        made_up = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        lines[index] = f"{lines[index]} {made_up}"
    return lines + [normalise_for_classifier(line, None) for line in TRICKY_LINES]


@pytest.mark.parametrize(
    "params",
    [
        {"minn": 3, "maxn": 5, "dim": 8},
        {"minn": 2, "maxn": 4, "dim": 6, "loss": "ova"},
        {"minn": 1, "maxn": 2, "dim": 4},  # single characters, where fastText skips '<' and '>'
        {"minn": 0, "maxn": 0, "dim": 5},  # words only: unknown words add nothing
    ],
    ids=["softmax-3-5", "ova-2-4", "softmax-1-2", "no-subwords"],
)
def test_probabilities_equal_fasttext(tmp_path: Path, params: dict[str, Any]) -> None:
    model = train(tmp_path, "model", **params)
    lines = generated_lines(120, seed=1)
    labels = model_labels(model)
    expected = fasttext_probabilities(model, lines, labels)
    vectorised = VectorisedFastText.from_fasttext(model)
    got = vectorised.probabilities(lines)
    np.testing.assert_allclose(got, expected, atol=5e-5)
    # a second pass answers from the cache of unknown tokens, with the same result
    np.testing.assert_allclose(vectorised.probabilities(lines[::-1]), expected[::-1], atol=5e-5)


def test_shipped_model_equals_fasttext() -> None:
    import fasttext

    model = fasttext.load_model(str(shipped_model_path()))
    lines = generated_lines(60, seed=5)
    expected = fasttext_probabilities(model, lines, model_labels(model))
    np.testing.assert_allclose(
        VectorisedFastText.from_fasttext(model).probabilities(lines), expected, atol=5e-5
    )


def test_small_batches_and_cache_restarts_give_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = train(tmp_path, "model", minn=3, maxn=5, dim=8)
    rng = random.Random(9)
    made_up = ["".join(rng.choice("qxzvkj") for _ in range(rng.randint(3, 9))) for _ in range(40)]
    # unknown words that recur from batch to batch, so some are answered from the cache
    lines = [
        normalise_for_classifier(" ".join(rng.choice(made_up) for _ in range(rng.randint(1, 12))))
        for _ in range(150)
    ] + generated_lines(60, seed=2)
    expected = fasttext_probabilities(model, lines, model_labels(model))
    monkeypatch.setattr(fasttext_vectorised, "MAX_BATCH_BYTES", 120)
    monkeypatch.setattr(fasttext_vectorised, "MAX_CACHED_UNKNOWN_TOKENS", 12)
    vectorised = VectorisedFastText.from_fasttext(model)
    np.testing.assert_allclose(vectorised.probabilities(lines), expected, atol=5e-5)
    assert vectorised.table.count - len(vectorised.vocabulary_hashes) <= 12 + 120


def test_token_bounds_split_on_fasttext_delimiters() -> None:
    text = b" ab\tc\x0bd\x0ce\x00f\rg\nh\xc2\xa0i  "
    starts, ends = token_bounds(np.frombuffer(text, dtype=np.uint8))
    tokens = [text[s:e] for s, e in zip(starts, ends, strict=True)]
    assert tokens == [b"ab", b"c", b"d", b"e", b"f", b"g", b"h\xc2\xa0i"]


def test_decoded_segments_equal_decoding_each_token_alone() -> None:
    # multi-byte characters, a lone continuation byte, a truncated sequence before a delimiter
    raw = "h\u00e9llo w\u00f6rld \u20ac5 x".encode() + b" \xff\xfe ok \xe2\x82\tend \xc3"
    buffer = np.frombuffer(raw + b"\n", dtype=np.uint8)
    starts, ends = token_bounds(buffer)
    alone = [
        bytes(buffer[start:end]).decode("utf-8", "surrogateescape")
        for start, end in zip(starts, ends, strict=True)
    ]
    assert decoded_segments(buffer, starts, ends) == alone
    assert len(alone) == 9 and alone[4] == "\udcff\udcfe"
    assert decoded_segments(buffer, starts[:0], ends[:0]) == []


def test_token_hash_depends_on_bytes_not_position() -> None:
    text = b"alpha beta alpha alphab lpha gamma beta"
    buffer = np.frombuffer(text, dtype=np.uint8)
    starts, ends = token_bounds(buffer)
    hashes = token_hashes(buffer, starts, ends)
    tokens = [text[s:e] for s, e in zip(starts, ends, strict=True)]
    for i, first in enumerate(tokens):
        for j, second in enumerate(tokens):
            assert (hashes[i] == hashes[j]) == (first == second)
    assert (hashes != 0).all()


def test_token_table_matches_a_dict() -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(1, 2**63, 5000, dtype=np.uint64))
    # keys sharing their top bits land on the same slot and must probe past each other
    keys = np.unique(np.concatenate([keys, keys[:50] ^ np.uint64(1)]))
    values = rng.permutation(len(keys)).astype(np.int64)
    table = TokenTable(16)  # far too small: inserting grows it
    half = len(keys) // 2
    table.insert(keys[:half], values[:half])
    table.insert(keys[half:], values[half:])
    reference = dict(zip(keys.tolist(), values.tolist(), strict=True))
    probes = np.concatenate([keys, rng.integers(1, 2**63, 1000, dtype=np.uint64)])
    expected = [reference.get(key, -1) for key in probes.tolist()]
    assert table.lookup(probes).tolist() == expected
    assert len(table) == len(keys)


def test_domain_model_engines_agree(tiny_model: Path) -> None:
    texts = ["Revenue and dividend rose.", "The court heard the appeal.", "", "def main(): return 0"]
    vectorised = DomainModel.load(tiny_model, engine="vectorised").predict_proba(texts)
    library = DomainModel.load(tiny_model, engine="fasttext").predict_proba(texts)
    np.testing.assert_allclose(vectorised, library, atol=5e-5)


def test_quantized_model_falls_back_or_refuses(tmp_path: Path, tiny_model: Path) -> None:
    model = train(tmp_path, "model", minn=3, maxn=5, dim=8)
    model.quantize(qnorm=False, retrain=False, cutoff=0)
    quantized = tmp_path / "tiny.ftz"
    model.save_model(str(quantized))
    assert not VectorisedFastText.supports(model)
    texts = ["Revenue and dividend rose.", "The court heard the appeal."]
    auto = DomainModel.load(quantized)
    assert auto.predict_proba(texts).shape == (2, 5)
    assert auto.vectorised is None
    with pytest.raises(ModelError, match="vectorised engine"):
        DomainModel.load(quantized, engine="vectorised").predict_proba(texts)
    with pytest.raises(ModelError, match="unknown classifier engine"):
        DomainModel.load(tiny_model, engine="gpu")


def test_run_with_either_engine_tags_the_same(tmp_path: Path, tiny_model: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_fineweb_parquet(corpus / "000.parquet", corpus_documents(80, seed=4, prefix="e"))
    columns = "doc_id, domain, p_finance, p_law, p_code, p_medical, p_other"
    tagged = {}
    for engine in ("auto", "fasttext"):
        out = tmp_path / engine
        with run_and_open(corpus, out, tiny_model, "--classifier-engine", engine) as db:
            tagged[engine] = db.execute(f"SELECT {columns} FROM documents ORDER BY doc_seq").fetchall()
    assert len(tagged["auto"]) == 80
    for vectorised, library in zip(tagged["auto"], tagged["fasttext"], strict=True):
        assert vectorised[:2] == library[:2]
        np.testing.assert_allclose(vectorised[2:], library[2:], atol=5e-5)
