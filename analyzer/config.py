"""Run configuration: one frozen dataclass built by the CLI and passed down unchanged."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "domain-v1"


def shipped_model_path(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The shipped model file: the recipe writes `.ftz` when quantising is cheap, else `.bin`."""
    quantised = REPO_ROOT / "classifiers" / f"{name}.ftz"
    return quantised if quantised.is_file() else quantised.with_suffix(".bin")


DEFAULT_MODEL_PATH = shipped_model_path()
SQL_DIR = REPO_ROOT / "sql"

FORMATS = ("auto", "fineweb", "dolma", "parquet", "jsonl")
DEDUP_MODES = ("off", "exact", "near")


@dataclass(frozen=True)
class ReaderOptions:
    """How shards are read; `text_column`/`id_column` override the format's defaults."""

    format: str = "auto"
    text_column: str | None = None
    id_column: str | None = None
    batch_size: int = 512
    max_document_bytes: int = 64 * 1024 * 1024
    """A JSON line longer than this is skipped, which bounds memory on hostile input."""


@dataclass(frozen=True)
class MinHashOptions:
    """MinHash/LSH parameters: word n-gram shingles, `bands` x `rows` permutations."""

    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


@dataclass(frozen=True)
class RunConfig:
    """Everything one `analyzer run` needs; recorded verbatim in the `runs` table."""

    inputs: tuple[str, ...]
    out_dir: Path
    workers: int = 1
    model_path: Path = DEFAULT_MODEL_PATH
    tokenizer: str = "cl100k_base"
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    minhash: MinHashOptions = field(default_factory=MinHashOptions)
    dedup_mode: str = "near"
    """'near' (MinHash LSH + exact), 'exact' (content hash only) or 'off' (every document kept)."""
    verify_jaccard: float = 0.0
    """LSH candidate pairs whose estimated Jaccard is below this are not joined (0 keeps all)."""
    sample_rate: float | None = None
    """Tag only this fraction of documents, chosen by a hash of the document id (None: all)."""
    max_docs_per_shard: int | None = None
    """Tag at most this many documents per shard, the first ones (not a probability sample)."""
    sample_seed: int = 0
    bootstrap_block: int = 256
    """Consecutive rows of a shard that form one bootstrap cluster."""
    bootstrap_replicates: int = 1000
    confidence: float = 0.95
    hf_dataset: str | None = None
    hf_config: str | None = None
    hf_split: str = "train"
    show_progress: bool = True

    @property
    def tags_dir(self) -> Path:
        return self.out_dir / "tags"

    @property
    def database_path(self) -> Path:
        return self.out_dir / "analysis.duckdb"

    def as_record(self) -> dict[str, Any]:
        """A JSON-serialisable view for the `runs` table."""
        record = asdict(self)
        record["out_dir"] = str(self.out_dir)
        record["model_path"] = str(self.model_path)
        record["inputs"] = list(self.inputs)
        return record
