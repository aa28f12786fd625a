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
DEFAULT_LABELED_DIR = REPO_ROOT.parent / "shared" / "data" / "labeled"
"""Where the training commands look for train/dev files by default: the shared data beside the checkout."""

FORMATS = ("auto", "fineweb", "dolma", "parquet", "jsonl")
ESTIMATORS = ("mid", "cc", "acc", "pcc", "pacc", "emq")
"""mid: the midpoint of cc and emq, the centre of the two readings cc's interval spans;
cc: classify and count; acc: adjusted with the dev confusion; pcc: probability average;
pacc: probability average adjusted with the dev mean-probability matrix; emq: EM prior re-estimation
(Saerens, Latinne & Decaestecker 2002) on the calibrated posteriors, token-weighted
(analyzer/estimates/intervals.py)."""
DEDUP_MODES = ("off", "exact", "near")
MINHASH_BACKENDS = ("auto", "rensa", "numpy")


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
    """MinHash/LSH parameters: word n-gram shingles, `bands` x `rows` permutations.

    48 bands of 4 rows (192 permutations) make every pair above Jaccard ~0.55 a candidate
    (P > 0.999 at 0.63, the lowest injected copy), and the verification in sql/03 decides on the
    estimated Jaccard, whose standard error at 0.7 is 0.033 with 192 permutations (0.043 with
    FineWeb's 112). See docs/dedup.md for the measurements behind this choice."""

    ngram: int = 5
    bands: int = 48
    rows: int = 4
    seed: int = 1
    backend: str = "auto"
    """Signature kernel: 'rensa' (Rust, ~2x faster), 'numpy', or 'auto' (rensa when installed).
    The two are different hash families: the tagger version records which one, so shards tagged
    by one are re-tagged, never mixed, when the other is used."""

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


CLASSIFIER_ENGINES = ("auto", "vectorised", "fasttext")
"""How domain probabilities are computed: `vectorised` (analyzer.fasttext_vectorised: fastText's
predict as array operations, equal to it within 2e-5 and faster), `fasttext` (the library's own
predict), or `auto` (vectorised where the model allows, else fasttext)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one `analyzer run` needs; recorded verbatim in the `runs` table."""

    inputs: tuple[str, ...]
    out_dir: Path
    workers: int = 1
    model_path: Path = DEFAULT_MODEL_PATH
    label_map_path: Path | None = None
    """YAML map folding a foreign model's labels into the domains (None: `<model>.labels.yaml` if any)."""
    multi_label_threshold: float | None = None
    """Also tag `domains`: every domain with probability >= this (None: column left null)."""
    classifier_engine: str = "auto"
    """How the domain model's probabilities are computed (see analyzer.classifier_model.ENGINES)."""
    tokenizer: str = "cl100k_base"
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    minhash: MinHashOptions = field(default_factory=MinHashOptions)
    dedup_mode: str = "near"
    """'near' (MinHash LSH + exact), 'exact' (content hash only) or 'off' (every document kept)."""
    verify_jaccard: float = 0.68
    """LSH candidate pairs whose estimated Jaccard is below this are not joined (0 keeps all)."""
    verify_containment: float = 0.95
    """... unless their estimated containment reaches this (0: no containment rescue)."""
    boilerplate_clusters: int = 4
    """Re-verify LSH edges without minima shared by this many distinct clusters (0: off; docs/dedup.md)."""
    containment_min_jaccard: float = 0.6
    """The containment rescue needs at least this estimated Jaccard."""
    dedup_memory_limit: str | None = None
    """DuckDB memory_limit of the database build (e.g. '2GB'; None: half of physical memory)."""
    sample_rate: float | None = None
    """Tag only this fraction of documents, chosen by a hash of the document id (None: all)."""
    max_docs_per_shard: int | None = None
    """Tag at most this many documents per shard, the first ones (not a probability sample)."""
    sample_seed: int = 0
    sample_design: str = "bernoulli"
    """How `sample_rate` F picks documents (analyzer/sampler.py): 'bernoulli', pi = F for every
    document (F of the documents and, on average, of the bytes); 'pps', pi = min(1, F * max(1,
    bytes / sample_size_unit)), so long documents weigh less (smaller variance of token shares per
    byte tagged, but many more bytes tagged at the same F). Recorded in `runs.options`."""
    sample_size_unit: int = 1000
    """L0 of the 'pps' design, in UTF-8 bytes: documents up to L0 are kept at rate F."""
    classify_all: bool = True
    """Two-phase sampling, when documents are sampled out: the domain model also reads every
    sampled-out document, whose bytes and shard token counts are kept per predicted domain, dump and
    source (the census, `ShardAccounting.census`), and the sample's weights are calibrated to it
    (sql/04_documents.sql). Tokens, MinHash and the stored tags stay the sample's. The classifier
    is the cheapest tagger and sampling error the largest at small rates (README, Sampling), hence
    the default."""
    estimator: str = "mid"
    """How shares are estimated: mid, cc, acc, pcc, pacc or emq (see analyzer/estimates/intervals.py)."""
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
        record["label_map_path"] = None if self.label_map_path is None else str(self.label_map_path)
        record["inputs"] = list(self.inputs)
        return record
