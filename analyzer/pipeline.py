"""`analyzer run` end to end: shards → executor (read → tag → write) → DuckDB store."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import duckdb
from rich.console import Console

from analyzer import __version__
from analyzer.config import RunConfig
from analyzer.errors import InputError
from analyzer.estimates.corpus_shares import EstimateSettings, check_estimate_inputs
from analyzer.estimates.dev_predictions import dev_predictions_path_for
from analyzer.estimates.source_shift import source_shift_path_for
from analyzer.executors import Executor
from analyzer.executors.local import LocalExecutor
from analyzer.progress import RunProgress
from analyzer.readers.hf_stream import hf_stream_shard
from analyzer.shard_output import ShardAccounting
from analyzer.shard_task import ShardProcessor
from analyzer.shards import Shard, resolve_shards
from analyzer.store import DedupSettings, RunRecord, build_database, now
from analyzer.taggers.domain import DomainTagger
from analyzer.taggers.tokens import TokenCounter


@dataclass
class RunSummary:
    """What the CLI prints after a run; every figure comes from the accounting or the store."""

    accountings: list[ShardAccounting]
    domain_shares: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    model_confidence: dict[str, object] | None = None
    """The 'all' row of the store's `model_confidence` table (None when nothing was tagged)."""

    @property
    def failed(self) -> list[ShardAccounting]:
        return [a for a in self.accountings if a.status == "failed"]

    @property
    def docs_read(self) -> int:
        return sum(a.docs_read for a in self.accountings)

    @property
    def docs_tagged(self) -> int:
        return sum(a.docs_tagged for a in self.accountings)

    @property
    def docs_skipped(self) -> int:
        return sum(a.docs_skipped for a in self.accountings)

    @property
    def census_docs(self) -> int:
        """Skipped documents that `--classify-all` classified (the census)."""
        return sum(int(cell["docs"]) for a in self.accountings for cell in a.census)

    @property
    def text_megabytes(self) -> float:
        return sum(a.text_bytes for a in self.accountings) / 1e6

    @property
    def processed_megabytes(self) -> float:
        """Text tagged by this run (shards reused from an earlier run excluded)."""
        return sum(a.text_bytes for a in self.accountings if a.status == "done") / 1e6

    @property
    def megabytes_per_second_per_core(self) -> float:
        if self.seconds <= 0:
            return 0.0
        return self.processed_megabytes / self.seconds / max(1, min(self.workers, len(self.accountings)))


def input_shards(config: RunConfig) -> list[Shard]:
    """The run's shards: the resolved input paths, or the one `datasets` stream."""
    if config.hf_dataset:
        return [hf_stream_shard(config.hf_dataset, config.hf_config, config.hf_split)]
    return resolve_shards(config.inputs)


def prepare_output(config: RunConfig) -> None:
    """Create OUT/tags and prove it is writable before any work starts."""
    if "?" in str(config.out_dir.resolve()):
        # DuckDB reads '?' in a database path as the start of connection options
        raise InputError(f"{config.out_dir}: DuckDB cannot use a path containing '?'; choose another --out")
    try:
        config.tags_dir.mkdir(parents=True, exist_ok=True)
        probe = config.tags_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"{config.out_dir}: output directory is not writable ({exc.strerror or exc}); "
            "choose another --out"
        ) from exc


def run_analysis(
    config: RunConfig, executor: Executor | None = None, console: Console | None = None
) -> RunSummary:
    """Tag every shard (reusing finished ones) and build OUT/analysis.duckdb from the results."""
    console = console or Console(stderr=True)
    started_at = now()
    shards = input_shards(config)
    prepare_output(config)
    # Loading the taggers here first turns a bad model or tokenizer into one clear error
    # before any worker starts, and gives the single-worker path its processor.
    processor = ShardProcessor(config)
    domain_tagger = next(t for t in processor.taggers if isinstance(t, DomainTagger))
    token_counter = next(t for t in processor.taggers if isinstance(t, TokenCounter))
    model_name, model_version = domain_tagger.model.name, domain_tagger.model.version
    tokenizer_name = token_counter.tokenizer_name
    tags_schema = processor.tags_schema()
    # the estimators' files beside the model too: a broken one fails now, not after the tagging
    estimates = estimate_settings(config)
    check_estimate_inputs(estimates)
    in_process = config.workers == 1 or len(shards) <= 1
    executor = executor or LocalExecutor(config.workers, processor if in_process else None)
    # pool workers load their own model; the parent's copy would only hold memory (~400 MB)
    del processor, domain_tagger, token_counter
    clock = time.perf_counter()
    accountings: list[ShardAccounting] = []
    with RunProgress(shards, console, enabled=config.show_progress) as progress:
        for accounting in executor.run(shards, config, progress.on_tick):
            accountings.append(accounting)
            progress.on_shard_finished(accounting)
    seconds = time.perf_counter() - clock
    record = RunRecord(
        started_at=started_at,
        finished_at=now(),
        inputs=[s.url for s in shards],
        options=config.as_record(),
        model_name=model_name,
        model_version=model_version,
        tokenizer=tokenizer_name,
        analyzer_version=__version__,
    )
    accountings.sort(key=lambda a: a.shard)
    build_database(
        config.database_path,
        config.tags_dir,
        accountings,
        record,
        DedupSettings(
            config.dedup_mode,
            config.verify_jaccard,
            config.verify_containment,
            config.containment_min_jaccard,
            boilerplate_clusters=config.boilerplate_clusters,
            memory_limit=config.dedup_memory_limit,
        ),
        estimates,
        tags_schema,
    )
    return RunSummary(
        accountings, read_domain_shares(config), seconds, config.workers, read_model_confidence(config)
    )


def estimate_settings(config: RunConfig) -> EstimateSettings:
    """Corrected estimators use the model's dev predictions when it ships them (ours do)."""
    dev_predictions = dev_predictions_path_for(config.model_path)
    source_shift = source_shift_path_for(config.model_path)
    return EstimateSettings(
        dev_predictions=dev_predictions if dev_predictions.is_file() else None,
        source_shift=source_shift if source_shift.is_file() else None,
        estimator=config.estimator,
        block_size=config.bootstrap_block,
        replicates=config.bootstrap_replicates,
        confidence=config.confidence,
    )


def read_model_confidence(config: RunConfig) -> dict[str, object] | None:
    """The whole input's row of `model_confidence` (sql/13), read back from the finished store."""
    rows = read_rows(config, "SELECT * FROM model_confidence WHERE predicted = 'all'")
    return rows[0] if rows else None


def read_domain_shares(config: RunConfig) -> list[dict[str, object]]:
    """The `domain_shares` table as rows, read back from the finished store."""
    return read_rows(config, "SELECT * FROM domain_shares")


def read_rows(config: RunConfig, query: str) -> list[dict[str, object]]:
    """The rows of `query` on the finished store, each a dict by column name."""
    with duckdb.connect(str(config.database_path), read_only=True) as connection:
        relation = connection.sql(query)
        names = relation.columns
        return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
