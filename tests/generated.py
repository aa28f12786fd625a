"""Small generated corpora for tests: made-up vocabularies per domain, never the shared data's text."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

VOCABULARY = {
    "finance": [
        "revenue",
        "dividend",
        "equity",
        "bond",
        "yield",
        "quarter",
        "earnings",
        "investor",
        "market",
        "shares",
        "profit",
        "inflation",
        "interest",
        "loan",
        "mortgage",
        "bank",
        "portfolio",
        "hedge",
        "fund",
        "liquidity",
        "credit",
    ],
    "law": [
        "court",
        "plaintiff",
        "defendant",
        "statute",
        "clause",
        "agreement",
        "hereby",
        "tribunal",
        "appeal",
        "judge",
        "contract",
        "liability",
        "jurisdiction",
        "counsel",
        "verdict",
        "breach",
        "indemnify",
        "lawful",
    ],
    "code": [
        "def",
        "return",
        "import",
        "class",
        "function",
        "variable",
        "loop",
        "compile",
        "python",
        "java",
        "struct",
        "pointer",
        "array",
        "lambda",
        "async",
        "await",
        "module",
        "package",
        "return",
        "void",
        "int",
    ],
    "medical": [
        "patient",
        "symptoms",
        "diagnosis",
        "treatment",
        "dose",
        "clinical",
        "therapy",
        "disease",
        "chronic",
        "infection",
        "vaccine",
        "tumor",
        "cardiac",
        "insulin",
        "blood",
        "pressure",
        "surgery",
        "nurse",
    ],
    "other": [
        "movie",
        "actor",
        "film",
        "story",
        "travel",
        "holiday",
        "football",
        "match",
        "recipe",
        "garden",
        "music",
        "album",
        "weather",
        "village",
        "festival",
        "painting",
        "novel",
        "character",
    ],
}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "this", "that"]


def make_text(label: str, rng: random.Random, words: int = 80) -> str:
    """A sentence-ish text drawn mostly from one label's vocabulary."""
    chosen = [
        rng.choice(VOCABULARY[label]) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(words)
    ]
    return " ".join(chosen).capitalize() + "."


def labeled_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    labels = list(VOCABULARY)
    return [
        {"text": make_text(labels[i % len(labels)], rng), "label": labels[i % len(labels)]}
        for i in range(count)
    ]


def train_tiny_model(directory: Path, loss: str = "softmax", epoch: int = 5, lr: float = 0.1) -> Path:
    """A fastText model on generated data, with the project's normalisation; trains in < 1 s."""
    import fasttext

    from analyzer.text_normalise import normalise_for_classifier

    train_file = directory / "tiny-train.txt"
    with train_file.open("w", encoding="utf-8") as handle:
        for row in labeled_rows(500):
            handle.write(f"__label__{row['label']} {normalise_for_classifier(row['text'])}\n")
    model = fasttext.train_supervised(
        str(train_file), epoch=epoch, lr=lr, dim=10, thread=1, seed=1, verbose=0, loss=loss
    )
    path = directory / ("tiny.bin" if loss == "softmax" else f"tiny-{loss}.bin")
    model.save_model(str(path))
    return path


def corpus_documents(count: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    """FineWeb-like records: id, text, dump, url, date, token_count."""
    rng = random.Random(seed)
    labels = list(VOCABULARY)
    records = []
    for index in range(count):
        label = labels[index % len(labels)]
        records.append(
            {
                "id": f"{prefix}-{index}",
                "text": make_text(label, rng, words=rng.randint(40, 160)),
                "dump": rng.choice(["CC-MAIN-2021-04", "CC-MAIN-2023-50"]),
                "url": f"https://www.{label}-site-{index % 7}.example.com/page/{index}",
                "date": "2021-01-20T10:00:00Z",
                "token_count": 100 + index,
            }
        )
    return records


def write_fineweb_parquet(path: Path, records: list[dict[str, Any]], row_group_size: int = 64) -> Path:
    table = pa.Table.from_pylist(records)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def dolma_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": record["id"],
            "text": record["text"],
            "source": "common-crawl",
            "added": "2024-06-01T00:00:00.000Z",
            "created": record["date"],
            "metadata": {"url": record["url"], "language": "en"},
        }
        for record in records
    ]


def write_jsonl_gz(path: Path, records: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def write_jsonl_lines(path: Path, lines: list[bytes], compress: str | None = None) -> Path:
    """Raw lines (bytes), so tests can plant broken JSON and bad UTF-8."""
    payload = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    if compress == "gzip":
        payload = gzip.compress(payload)
    elif compress == "zstd":
        import zstandard

        payload = zstandard.ZstdCompressor().compress(payload)
    path.write_bytes(payload)
    return path
