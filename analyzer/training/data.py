"""Reading labeled data (jsonl(.gz) or parquet) and writing fastText's supervised training format."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import DOMAINS
from analyzer.classifier_model import LABEL_PREFIX
from analyzer.errors import InputError


@dataclass(frozen=True)
class LabeledData:
    """Texts and their labels, in file order."""

    texts: list[str]
    labels: list[str]
    sources: list[str] = field(default_factory=list)
    """Each row's `source` field when the file has one (used only to break errors down in the card)."""

    def counts(self) -> dict[str, int]:
        """Return documents per label in DOMAINS order."""
        counter = Counter(self.labels)
        return {label: counter[label] for label in DOMAINS}


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line of a .jsonl or .jsonl.gz file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{line_number} is not valid JSON ({exc.msg})") from exc


def read_records(path: Path) -> list[dict[str, Any]]:
    """Return the rows of a jsonl(.gz) or parquet file as dicts."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        wanted = [name for name in ("text", "label", "source") if name in pq.read_schema(path).names]
        table = pq.read_table(path, columns=wanted)
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows
    return list(iter_json_lines(path))


def read_labeled(path: str | Path) -> LabeledData:
    """Read `text` and `label` from a jsonl(.gz)/parquet file; only these two fields are used (never URLs)."""
    data_path = Path(path)
    if not data_path.is_file():
        raise InputError(f"labeled file {data_path} does not exist; pass a jsonl(.gz) or parquet file")
    texts, labels, sources = [], [], []
    for row_number, row in enumerate(read_records(data_path), 1):
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or label not in DOMAINS:
            raise InputError(f"{data_path} row {row_number} needs a text string and a label in {DOMAINS}")
        texts.append(text)
        labels.append(str(label))
        sources.append(str(row.get("source") or "unknown"))
    if not texts:
        raise InputError(f"labeled file {data_path} has no rows")
    return LabeledData(texts, labels, sources)


def strip_label_tokens(line: str) -> str:
    """Drop tokens that look like fastText labels; fastText ignores them at prediction time too."""
    if LABEL_PREFIX not in line:
        return line
    return " ".join(token for token in line.split(" ") if not token.startswith(LABEL_PREFIX))


def write_training_file(lines: Iterable[str], labels: Iterable[str], path: Path) -> None:
    """Write fastText's supervised format: `__label__<label> <normalised text>` per line."""
    with path.open("w", encoding="utf-8") as handle:
        for line, label in zip(lines, labels, strict=True):
            handle.write(f"{LABEL_PREFIX}{label} {strip_label_tokens(line)}\n")
