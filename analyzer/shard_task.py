"""One shard task: read → tag → write. The executor runs these and knows nothing else."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer import __version__
from analyzer.config import RunConfig
from analyzer.errors import AnalyzerError, InputError, RunError, one_line
from analyzer.readers import DOCUMENT_SCHEMA, SkippedRow, read_shard
from analyzer.readers.base import document_ids
from analyzer.sampler import INCLUSION_COLUMN, ShardSampler
from analyzer.shard_output import ShardAccounting, ShardPaths, ShardWriter, load_finished
from analyzer.shards import Shard
from analyzer.taggers import Tagger, build_taggers
from analyzer.taggers.domain import DomainTagger
from analyzer.taggers.minhash import content_hash

UNCLASSIFIED = "unclassified"
"""The census's domain for sampled-out documents the domain model failed on."""
CensusKey = tuple[str, str | None, str | None]
"""(predicted domain, dump, source) of a census cell."""

TAG_METADATA_COLUMNS = (
    "row_index",
    "doc_id",
    "dump",
    "url",
    "date",
    "source",
    "shard_token_count",
    "quality_score",
)


@dataclass(frozen=True)
class ProgressTick:
    """Sent after every batch so the console can show documents/s, MB/s and ETA."""

    shard_key: str
    docs: int
    text_bytes: int
    fraction_done: float


ProgressReporter = Callable[[ProgressTick], None]


class ShardProcessor:
    """Holds the taggers (a loaded model is expensive) and applies them to whole shards."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.taggers: list[Tagger] = build_taggers(config)

    def fingerprint(self, shard: Shard) -> dict[str, Any]:
        """Everything that changes a shard's tags; a finished shard is reused only if it matches."""
        return {
            "url": shard.url,
            "size_bytes": shard.size_bytes,
            "analyzer": __version__,
            "taggers": [tagger.version for tagger in self.taggers],
            "reader": asdict(self.config.reader),
            "sample": self._sample_fingerprint(),
        }

    def _sample_fingerprint(self) -> list[object]:
        """The sampling options that change which documents are tagged and what they weigh."""
        config = self.config
        sample: list[object] = [config.sample_rate, config.max_docs_per_shard, config.sample_seed]
        if config.sample_rate is not None and config.sample_rate < 1.0:
            sample += [config.sample_design, config.sample_size_unit]
        if config.classify_all and (config.sample_rate is not None or config.max_docs_per_shard is not None):
            sample.append("classify-all")
            if self._hashes_left_out:
                sample.append("left-out-hashes")
        return sample

    @property
    def _hashes_left_out(self) -> bool:
        """Whether the census also keeps the exact-duplicate hash of every sampled-out document
        (`SkippedRow.content_hash`): with it a tagged copy of an earlier sampled-out text is a
        duplicate of the whole input (sql/04_documents.sql), so a sample's dedup shares are not
        those of the sample's duplicates alone."""
        return self.config.classify_all and self.config.dedup_mode != "off"

    def process(self, shard: Shard, report: ProgressReporter | None = None) -> ShardAccounting:
        """Tag one shard and publish its outputs; a bad shard comes back with status 'failed'."""
        paths = ShardPaths(self.config.tags_dir, shard.key)
        fingerprint = self.fingerprint(shard)
        finished = load_finished(paths, fingerprint)
        if finished is not None:
            finished.status = "reused"
            if report is not None:
                report(ProgressTick(shard.key, finished.docs_read, finished.text_bytes, 1.0))
            return finished
        accounting = ShardAccounting(shard=shard.name, url=shard.url, key=shard.key, fingerprint=fingerprint)
        writer = ShardWriter(paths, shard.name)
        started = time.perf_counter()
        reasons: Counter[str] = Counter()
        census: dict[CensusKey, list[int]] = {}
        try:
            sampler = ShardSampler(
                shard.name,
                self.config.sample_rate,
                self.config.max_docs_per_shard,
                self.config.sample_seed,
                self.config.sample_design,
                self.config.sample_size_unit,
            )
            for batch in read_shard(shard, self.config.reader):
                documents, not_sampled, left_out = sampler.partition(
                    batch.documents, self.config.classify_all
                )
                if left_out.num_rows:
                    self._count_census(left_out, census)
                    if self._hashes_left_out:
                        not_sampled = _with_content_hashes(not_sampled, left_out)
                skipped = batch.skipped + not_sampled
                if documents.num_rows:
                    tags, documents, failed = self._tag_or_skip(shard, documents)
                    if tags is not None:
                        writer.write_tags(tags)
                    skipped = skipped + failed
                writer.add_skipped(skipped)
                reasons.update(row.reason for row in skipped)
                batch_bytes = _text_bytes(documents)
                accounting.docs_tagged += documents.num_rows
                accounting.docs_skipped += len(skipped)
                accounting.text_bytes += batch_bytes
                if report is not None:
                    report(
                        ProgressTick(
                            shard.key,
                            documents.num_rows + len(skipped),
                            batch_bytes,
                            batch.fraction_done,
                        )
                    )
        except InputError as exc:
            writer.abort()
            return _failed(accounting, exc.message, started, kind="input")
        except RunError:
            writer.abort()
            raise
        except Exception as exc:  # noqa: BLE001 - one shard's bug must not discard the other shards
            writer.abort()
            message = (
                f"{shard.url}: internal error {exc.__class__.__name__}: {one_line(exc)} (please report it)"
            )
            return _failed(accounting, message, started, kind="internal")
        except BaseException:
            writer.abort()
            raise
        accounting.docs_read = accounting.docs_tagged + accounting.docs_skipped
        accounting.skip_reasons = dict(reasons)
        accounting.census = [
            {
                "domain": domain,
                "dump": dump,
                "source": source,
                "docs": docs,
                "bytes": size,
                "shard_tokens": shard_tokens,
                "shard_token_docs": shard_token_docs,
            }
            for (domain, dump, source), (docs, size, shard_tokens, shard_token_docs) in sorted(
                census.items(), key=lambda item: repr(item[0])
            )
        ]
        accounting.seconds = time.perf_counter() - started
        writer.publish(accounting, self.tags_schema())
        return accounting

    def _count_census(self, documents: pa.RecordBatch, census: dict[CensusKey, list[int]]) -> None:
        """Add sampled-out documents to the census: [documents, bytes, the shard's own token count
        summed, documents carrying one] per (predicted domain, dump, source), the cells the store
        calibrates the sample to (sql/04_documents.sql).

        A document the model fails on is counted as 'unclassified' (it stays skipped as
        `not_sampled` either way, so the run's accounting does not depend on it).
        """
        sizes = pc.binary_length(documents.column("text")).to_numpy(zero_copy_only=False)
        try:
            labels: list[str] = self._domain_tagger.top_domains(documents)
        except AnalyzerError:
            raise
        except Exception:  # noqa: BLE001 - fall back to one document at a time, as _tag_or_skip
            labels = []
            for position in range(documents.num_rows):
                try:
                    labels += self._domain_tagger.top_domains(documents.slice(position, 1))
                except AnalyzerError:
                    raise
                except Exception:  # noqa: BLE001 - one document must not fail its shard
                    labels.append(UNCLASSIFIED)
        dumps = documents.column("dump").to_pylist()
        sources = documents.column("source").to_pylist()
        shard_tokens = documents.column("shard_token_count").to_pylist()
        rows = zip(labels, dumps, sources, sizes.tolist(), shard_tokens, strict=True)
        for label, dump, source, size, tokens in rows:
            cell = census.setdefault((label, dump, source), [0, 0, 0, 0])
            cell[0] += 1
            cell[1] += int(size)
            if tokens is not None:
                cell[2] += int(tokens)
                cell[3] += 1

    @property
    def _domain_tagger(self) -> DomainTagger:
        return next(tagger for tagger in self.taggers if isinstance(tagger, DomainTagger))

    def _tag_or_skip(
        self, shard: Shard, documents: pa.RecordBatch
    ) -> tuple[pa.Table | None, pa.RecordBatch, list[SkippedRow]]:
        """Tag a batch; if a tagger fails on it, tag document by document and skip the ones that fail.

        Returns (tags, the documents tagged, skips). A batch of several documents that all fail is
        a bug in a tagger, not in the documents, and is raised (the shard fails as 'internal').
        """
        try:
            return self._tag(shard, documents), documents, []
        except AnalyzerError:
            raise
        except Exception as batch_error:
            tables: list[pa.Table] = []
            kept: list[int] = []
            failed: list[SkippedRow] = []
            rows = documents.column("row_index").to_pylist()
            for position, row_index in enumerate(rows):
                single = documents.slice(position, 1)
                try:
                    tables.append(self._tag(shard, single))
                    kept.append(position)
                except AnalyzerError:
                    raise
                except Exception as error:  # noqa: BLE001 - one document must not fail its shard
                    failed.append(SkippedRow(row_index, self._failure_reason(single, error)))
            if not tables:
                if len(rows) > 1:
                    raise batch_error
                return None, documents.slice(0, 0), failed
            return pa.concat_tables(tables), documents.take(kept), failed

    def _failure_reason(self, single: pa.RecordBatch, error: Exception) -> str:
        """`tagger_error:<tagger>:<exception class>` for a document that a tagger cannot handle."""
        for tagger in self.taggers:
            try:
                tagger.tag(single)
            except Exception:  # noqa: BLE001 - only looking for which tagger fails
                return f"tagger_error:{tagger.name}:{error.__class__.__name__}"
        return f"tagger_error:{error.__class__.__name__}"

    def _tag(self, shard: Shard, documents: pa.RecordBatch) -> pa.Table:
        columns: dict[str, pa.Array] = {
            "shard": pa.array([shard.name] * documents.num_rows, type=pa.string())
        }
        for name in TAG_METADATA_COLUMNS:
            columns[name] = documents.column(name)
        columns["doc_id"] = pa.array(document_ids(shard.name, documents), type=pa.string())
        # the sampler's pi_i; 1 for a document tagged because every document is (sql/04_documents.sql)
        columns[INCLUSION_COLUMN] = (
            documents.column(INCLUSION_COLUMN)
            if INCLUSION_COLUMN in documents.schema.names
            else pa.array(np.ones(documents.num_rows), type=pa.float64())
        )
        for tagger in self.taggers:
            columns.update(tagger.tag(documents))
        return pa.table(columns)

    def tags_schema(self) -> pa.Schema:
        """The schema of an empty tags file (a shard whose rows were all skipped)."""
        empty = pa.RecordBatch.from_pylist([], schema=DOCUMENT_SCHEMA)
        return self._tag(Shard(url="", name="", size_bytes=0), empty).schema


def _text_bytes(documents: pa.RecordBatch) -> int:
    if documents.num_rows == 0:
        return 0
    return int(pc.sum(pc.binary_length(documents.column("text"))).as_py() or 0)


def _failed(accounting: ShardAccounting, message: str, started: float, kind: str) -> ShardAccounting:
    accounting.status = "failed"
    accounting.error = message
    accounting.error_kind = kind
    accounting.docs_read = accounting.docs_tagged = accounting.docs_skipped = 0
    accounting.text_bytes = 0
    accounting.seconds = time.perf_counter() - started
    return accounting


def _with_content_hashes(not_sampled: list[SkippedRow], left_out: pa.RecordBatch) -> list[SkippedRow]:
    """The sampled-out rows, each with its document's exact-duplicate hash."""
    texts = left_out.column("text").to_pylist()
    rows = left_out.column("row_index").to_pylist()
    hashes = {row: content_hash(text) for row, text in zip(rows, texts, strict=True)}
    return [replace(row, content_hash=hashes.get(row.row_index)) for row in not_sampled]
