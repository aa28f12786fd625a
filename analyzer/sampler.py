"""Which documents of a shard get tagged when a run samples (`--sample-rate`, `--max-docs-per-shard`).

Documents left out are recorded as skipped with reason `not_sampled`, so documents read =
tagged + skipped still holds. Every tagged document carries its inclusion probability
(`inclusion_probability` in the tags, 1 when the run does not sample), and the store weights it by
the inverse (Horvitz-Thompson), calibrated to the shard's document count (sql/04_documents.sql), or,
with `--classify-all` (`ShardSampler.partition` also returns the left-out documents, for the domain model,
analyzer/shard_task.py), to the census of every predicted domain's bytes.

Two designs, both a Poisson sample decided per document from its own id hash and its own length, so
each document's inclusion is independent of every other and the same on every machine and rerun:
- `bernoulli` (default): pi = F for every document, so F is the fraction of documents tagged and,
  on average, of the bytes: what a user asking for a 20 % sample expects to pay.
- `pps`: pi = min(1, F * max(1, bytes / L0)). Documents up to L0 UTF-8 bytes are kept at
  rate F, longer ones in proportion to their length, and those of at least L0 / F bytes always.
  Token shares are ratios of token totals and a few long documents carry much of the variance of a
  plain sample of documents; here a document's weight shrinks as its length grows. The cost: long
  documents are tagged more often, so the fraction of bytes tagged exceeds F by far (69 % at
  F = 0.2 on the shared corpus); per byte tagged it is the better design (README, measured), which
  is why it is offered, and why it is not the default: it changes what F costs.
Both keep a document iff its xxh3_64 id hash < floor(pi * 2**64): nested across rates (a document
kept at rate F is kept at every larger rate), and `pps` keeps a superset of `bernoulli` at one seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from analyzer.config import RunConfig
from analyzer.estimates.sampling import sample_mask
from analyzer.readers.base import SkippedRow, document_ids

NOT_SAMPLED = "not_sampled"
INCLUSION_COLUMN = "inclusion_probability"
SAMPLE_DESIGNS = ("pps", "bernoulli")
DEFAULT_SAMPLE_DESIGN = RunConfig.sample_design
DEFAULT_SIZE_UNIT = RunConfig.sample_size_unit
"""L0 of the `pps` design in UTF-8 bytes (chosen by bench/estimate_accuracy.py; README)."""

_HASH_SPACE = 2**64


def inclusion_probabilities(
    lengths: npt.ArrayLike, rate: float, design: str = DEFAULT_SAMPLE_DESIGN, unit: int = DEFAULT_SIZE_UNIT
) -> np.ndarray:
    """Each document's probability of being tagged, from its own length in bytes (no other document's)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate!r}")
    if design not in SAMPLE_DESIGNS:
        raise ValueError(f"unknown sample design {design!r}; choose one of {SAMPLE_DESIGNS}")
    size = np.asarray(lengths, dtype=np.float64)
    if design == "bernoulli":
        return np.full(size.shape, rate)
    if unit < 1:
        raise ValueError(f"the pps size unit must be at least 1 byte, got {unit}")
    probabilities: np.ndarray = np.minimum(1.0, rate * np.maximum(1.0, size / unit))
    return probabilities


def inclusion_mask(doc_ids: Sequence[str], probabilities: np.ndarray, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Keep document i iff xxh3_64(utf-8 id, seed) < floor(pi_i * 2**64) (as `sample_mask` for one rate)."""
    pi = np.asarray(probabilities, dtype=np.float64)
    if pi.shape != (len(doc_ids),):
        raise ValueError("one inclusion probability per document id, please")
    hashes = np.fromiter(
        (xxhash.xxh3_64_intdigest(doc_id.encode("utf-8"), seed=seed) for doc_id in doc_ids),
        dtype=np.uint64,
        count=len(doc_ids),
    )
    certain = pi >= 1.0
    # pi * 2**64 is exact in float64 up to rounding of pi itself, and below 2**64 when pi < 1
    thresholds = np.where(certain, 0.0, np.floor(pi * _HASH_SPACE)).astype(np.uint64)
    keep: npt.NDArray[np.bool_] = certain | (hashes < thresholds)
    return keep


def design_sampling_fraction(
    amount: npt.ArrayLike, sample_weight: npt.ArrayLike, domain_index: npt.ArrayLike, n_classes: int = 5
) -> float:
    """The f of the input-level interval's finite-population factor sqrt(1 - f), from the design.

    The cluster bootstrap treats the tagged documents as drawn with replacement: for the share R_d of
    domain d its variance is about sum_i e_i^2 with e_i = w_i y_i (1[domain_i = d] - R_d) (w_i the
    sample weight, y_i the document's amount). A Poisson sample with inclusion probabilities
    pi_i = 1 / w_i has variance sum_i (1 - pi_i) e_i^2 about its input (Horvitz-Thompson), so the
    factor is 1 - f_d with f_d = sum pi_i e_i^2 / sum e_i^2, the inclusion probability averaged with
    each document's weight in the bootstrap. With one rate F for every document (Bernoulli,
    --max-docs-per-shard) f_d = F, as the tagged fraction was before. Under `pps` a document tagged
    with certainty (pi = 1) adds no sampling error about the input, and how much of a domain's
    bootstrap variance such documents carry differs by domain (long documents are mostly of some
    domains), so f is the smallest f_d: one conservative factor for every domain. pi is capped at 1
    (a calibrated weight just below 1). For a store, sql/11_share_blocks.sql sums the same per group
    and analyzer/estimates/corpus_shares.py `_design_sampling_fractions` finishes it.
    Nothing weighted: f = 1.
    """
    a = np.asarray(amount, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    d = np.asarray(domain_index, dtype=np.int64)
    wy = w * a
    if wy.sum() <= 0:
        return 1.0
    share = np.bincount(d, weights=wy, minlength=n_classes) / wy.sum()
    pi = np.minimum(1.0, 1.0 / np.maximum(w, 1e-300))
    residual = wy[:, None] * ((d[:, None] == np.arange(n_classes)[None]) - share[None])
    square = residual**2
    total = square.sum(axis=0)
    live = total > 0
    if not live.any():
        return 1.0
    return float(((pi[:, None] * square).sum(axis=0)[live] / total[live]).min())


class ShardSampler:
    """Splits each batch into documents to tag and documents sampled out; one instance per shard."""

    def __init__(
        self,
        shard_name: str,
        rate: float | None,
        max_docs: int | None,
        seed: int = 0,
        design: str = DEFAULT_SAMPLE_DESIGN,
        unit: int = DEFAULT_SIZE_UNIT,
    ) -> None:
        self.shard_name = shard_name
        self.rate = rate
        self.max_docs = max_docs
        self.seed = seed
        self.design = design
        self.unit = unit
        self.kept = 0

    @property
    def sampling(self) -> bool:
        return self.rate is not None and self.rate < 1.0

    @property
    def active(self) -> bool:
        return self.sampling or self.max_docs is not None

    def partition(
        self, documents: pa.RecordBatch, keep_left_out: bool = True
    ) -> tuple[pa.RecordBatch, list[SkippedRow], pa.RecordBatch]:
        """(documents to tag with their `inclusion_probability`, rows sampled out, the sampled-out
        documents themselves for `--classify-all`'s census, empty unless `keep_left_out`);
        deterministic."""
        n = documents.num_rows
        pi = np.ones(n, dtype=np.float64)
        keep = np.ones(n, dtype=bool)
        if self.sampling and n:
            assert self.rate is not None
            ids = document_ids(self.shard_name, documents)
            if self.design == "bernoulli":
                # the historical mask, bit for bit (same documents as before `pps` existed)
                pi[:] = self.rate
                keep = sample_mask(ids, self.rate, self.seed)
            else:
                lengths = pc.binary_length(documents.column("text")).to_numpy(zero_copy_only=False)
                pi = inclusion_probabilities(lengths, self.rate, self.design, self.unit)
                keep = inclusion_mask(ids, pi, self.seed)
        if self.max_docs is not None:
            room = max(self.max_docs - self.kept, 0)
            keep &= np.cumsum(keep) <= room
        self.kept += int(keep.sum())
        rows = documents.column("row_index").to_numpy()
        skipped = [SkippedRow(int(row), NOT_SAMPLED) for row in rows[~keep]]
        chosen = documents.filter(pa.array(keep)) if self.active else documents
        left_out = (
            documents.filter(pa.array(~keep)) if self.active and keep_left_out else documents.slice(0, 0)
        )
        column = pa.array(pi[keep] if self.active else pi, type=pa.float64())
        return chosen.append_column(INCLUSION_COLUMN, column), skipped, left_out
