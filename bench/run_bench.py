"""Throughput benchmark: every stage alone and the whole `analyzer run`, side by side in one process.

The machine this runs on is shared and noisy, so absolute MB/s drift between runs; the ratios
between figures taken in the same run (stage vs stage, ours vs datasketch, 1 vs 2 workers) are
what to compare. Each measurement is repeated and the fastest repeat is kept, because noise only
ever makes a run slower.

Throughput is MB (10**6 bytes) of UTF-8 document text per second. Stages run single-threaded in
this process, so their MB/s is already per core; `cpu/wall` is printed so a stage that secretly
uses more threads shows up.

    .venv/bin/python bench/run_bench.py --out bench/results/bench.json            # ~2-3 minutes
    .venv/bin/python bench/run_bench.py --quick --out /tmp/bench-quick.json       # < 60 s
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.classifier_model import DomainModel
from analyzer.config import DEFAULT_MODEL_PATH, MinHashOptions, ReaderOptions
from analyzer.readers import read_shard
from analyzer.shards import Shard, resolve_shards
from analyzer.taggers.domain import DomainTagger
from analyzer.taggers.minhash import MinHashTagger
from analyzer.taggers.minhash_kernels import permutation_parameters, shingle_hashes, signature, word_hashes
from analyzer.taggers.tokens import TokenCounter
from analyzer.taggers.url import UrlAndSizeTagger

try:
    import psutil  # samples the RSS of the spawned worker processes, which getrusage cannot
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("bench/run_bench.py needs psutil: .venv/bin/pip install psutil")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus"
MODEL_CANDIDATES = (
    DEFAULT_MODEL_PATH,  # what `analyzer run` uses without --model
    REPO_ROOT / "classifiers" / "domain-v1.ftz",
    REPO_ROOT / "classifiers" / "domain-v1.bin",
    Path("/tmp/quick/quick.ftz"),  # a throwaway model, so the benchmark runs before training
)
TOKENIZER = "cl100k_base"

QUICK_DOCS = 1200
"""Documents the stage measurements use with --quick (about 3.5 MB of the shared corpus)."""
RUN_COPIES = 4
"""`analyzer run` reads every shard this many times (`shard_copies`): two workers need enough to do."""

PACKAGES = (
    "domain-share-analyzer",
    "numpy",
    "pyarrow",
    "duckdb",
    "fasttext-community",
    "bpe-openai",
    "datasketch",
    "rensa",
    "xxhash",
    "psutil",
)

# Our MinHash words: maximal runs of ASCII letters/digits or non-ASCII characters of the
# lower-cased text (minhash_kernels.word_hashes). The reference libraries get the same words,
# joined into the same 5-word shingles, so all three hash the same sets.
_WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")


# ---------------------------------------------------------------- measurement helpers


@dataclass
class StageResult:
    """One stage measured on `megabytes` of text: best wall time over the repeats."""

    stage: str
    group: str
    megabytes: float
    docs: int
    repeats_seconds: list[float]
    cpu_seconds: float
    note: str = ""

    @property
    def seconds(self) -> float:
        return min(self.repeats_seconds)

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(
            seconds=self.seconds,
            mb_per_s_per_core=self.mb_per_s,
            cpu_per_wall=self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0,
            mb_per_cpu_second=self.megabytes / self.cpu_seconds if self.cpu_seconds > 0 else 0.0,
        )
        return record


def time_best(work: Callable[[], object], repeats: int) -> tuple[list[float], float]:
    """Wall seconds of each repeat, and the process CPU seconds of the fastest one."""
    walls: list[float] = []
    best_cpu = 0.0
    for _ in range(repeats):
        cpu_started = time.process_time()
        started = time.perf_counter()
        work()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if not walls or wall < min(walls):
            best_cpu = cpu
        walls.append(wall)
    return walls, best_cpu


def text_megabytes(batches: Sequence[pa.RecordBatch]) -> float:
    total = sum(int(pc.sum(pc.binary_length(b.column("text"))).as_py() or 0) for b in batches if b.num_rows)
    return total / 1e6


# ---------------------------------------------------------------- the texts


def read_all(shards: Sequence[Shard], options: ReaderOptions) -> list[pa.RecordBatch]:
    return [batch.documents for shard in shards for batch in read_shard(shard, options)]


def limit_documents(batches: list[pa.RecordBatch], max_docs: int | None) -> list[pa.RecordBatch]:
    """The first `max_docs` documents, still in the pipeline's batches (so taggers see real batch sizes)."""
    if max_docs is None:
        return batches
    kept: list[pa.RecordBatch] = []
    remaining = max_docs
    for batch in batches:
        if remaining <= 0:
            break
        kept.append(batch.slice(0, remaining))
        remaining -= min(batch.num_rows, remaining)
    return kept


def interleave_formats(parquet: list[pa.RecordBatch], jsonl: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """Alternate FineWeb and Dolma batches so a --quick prefix still holds both corpora."""
    mixed: list[pa.RecordBatch] = []
    for index in range(max(len(parquet), len(jsonl))):
        mixed.extend(source[index] for source in (parquet, jsonl) if index < len(source))
    return mixed


def word_shingles(text: str, ngram: int) -> list[bytes]:
    """Word n-gram shingles as bytes, with the word rule and short-text rule of our kernels."""
    words = _WORD.findall(text.lower())
    if not words:
        return []
    width = min(ngram, len(words))
    return [" ".join(words[i : i + width]).encode("utf-8") for i in range(len(words) - width + 1)]


# ---------------------------------------------------------------- stages


def bench_readers(
    corpus: Path, repeats: int, quick: bool
) -> tuple[list[StageResult], dict[str, list[Shard]]]:
    """Each reader over its own format's shards: text MB decoded into arrow batches per second."""
    shards_by_format = {
        "parquet": resolve_shards([str(corpus / "fineweb")]),
        "jsonl.gz": resolve_shards([str(corpus / "dolma")]),
    }
    if quick:
        shards_by_format = {name: shards[:1] for name, shards in shards_by_format.items()}
    results: list[StageResult] = []
    options = ReaderOptions()
    for name, shards in shards_by_format.items():
        batches = read_all(shards, options)  # also warms the page cache: we time decoding, not the disk
        walls, cpu = time_best(functools.partial(read_all, shards, options), repeats)
        results.append(
            StageResult(
                stage=f"read {name}",
                group="read",
                megabytes=text_megabytes(batches),
                docs=sum(b.num_rows for b in batches),
                repeats_seconds=walls,
                cpu_seconds=cpu,
                note=f"{len(shards)} shard(s), file cache warm",
            )
        )
    return results, shards_by_format


def bench_taggers(batches: list[pa.RecordBatch], model_path: Path, repeats: int) -> list[StageResult]:
    """Every tagger alone over the same batches, plus the domain model's normalisation alone."""
    megabytes = text_megabytes(batches)
    docs = sum(b.num_rows for b in batches)
    domain_tagger = DomainTagger(model_path)
    model: DomainModel = domain_tagger.model
    library_tagger = DomainTagger(model_path, engine="fasttext")

    def domain_cold() -> object:
        model.forget_unknown_words()  # every timed pass starts as a fresh worker would
        return [domain_tagger.tag(batch) for batch in batches]

    minhash_tagger = MinHashTagger(MinHashOptions())
    stages: list[tuple[str, str, Callable[[], object], str]] = [
        ("url+size", "tag", lambda: [UrlAndSizeTagger().tag(b) for b in batches], "host + n_chars/n_bytes"),
        ("tokens cl100k_base", "tag", _tagger_over(TokenCounter(TOKENIZER).tag, batches), "bpe-openai"),
        ("domain (DomainTagger)", "tag", domain_cold, f"{model_path.name}, vectorised, cold word cache"),
        (
            "  domain: warm word cache",
            "tag-part",
            _tagger_over(domain_tagger.tag, batches),
            "vectorised, every unknown word seen before",
        ),
        (
            "domain (fastText predict)",
            "tag-ref",
            _tagger_over(library_tagger.tag, batches),
            "--classifier-engine fasttext",
        ),
        (
            "  domain: normalise only",
            "tag-part",
            lambda: [model.unannotated_lines(b.column("text").to_pylist()) for b in batches],
            f"head_chars={model.head_chars}, the vectorised engine's input",
        ),
        (
            "  domain: normalise + lexicon markers",
            "tag-part",
            lambda: [model.normalise(b.column("text").to_pylist()) for b in batches],
            "fastText predict's input (the vectorised engine folds the markers per token)",
        ),
        (
            "minhash (MinHashTagger)",
            "tag",
            _tagger_over(minhash_tagger.tag, batches),
            "incl. band keys + xxh3",
        ),
    ]
    results: list[StageResult] = []
    for name, group, work, note in stages:
        work()  # warm-up: first calls pay for lazy imports and allocator growth
        walls, cpu = time_best(work, repeats)
        results.append(StageResult(name, group, megabytes, docs, walls, cpu, note))
    return results


def compare_engines(batches: list[pa.RecordBatch], model_path: Path) -> dict[str, float | int]:
    """How far the vectorised engine's probabilities fall from fastText's own on these documents."""
    texts = [text for batch in batches for text in batch.column("text").to_pylist()]
    vectorised = DomainModel.load(model_path, engine="vectorised").predict_proba(texts)
    library = DomainModel.load(model_path, engine="fasttext").predict_proba(texts)
    return {
        "docs": len(texts),
        "max_abs_probability_difference": float(np.abs(vectorised - library).max()) if texts else 0.0,
        "same_top_domain": int((vectorised.argmax(axis=1) == library.argmax(axis=1)).sum()),
    }


def _tagger_over(
    tag: Callable[[pa.RecordBatch], object], batches: list[pa.RecordBatch]
) -> Callable[[], object]:
    return lambda: [tag(batch) for batch in batches]


def bench_minhash_references(batches: list[pa.RecordBatch], repeats: int) -> list[StageResult]:
    """Our kernels vs datasketch and rensa on the same word 5-gram shingle sets, same num_perm.

    The references take shingles as bytes, which we build in Python; that shingling is timed on
    its own and added to the references' "text→signature" figures so they compare with ours,
    which starts from the text.
    """
    import datasketch

    try:
        import rensa
    except ImportError:
        rensa = None  # optional reference: its rows and ratios are left out

    options = MinHashOptions()
    megabytes = text_megabytes(batches)
    texts = [text for b in batches for text in b.column("text").to_pylist()]
    multipliers, offsets = permutation_parameters(options.num_perm, options.seed)

    def ours_kernels() -> None:
        for text in texts:
            signature(shingle_hashes(word_hashes(text), options.ngram), multipliers, offsets)

    shingle_hash_arrays = [shingle_hashes(word_hashes(text), options.ngram) for text in texts]

    def ours_signature_only() -> None:
        for hashes in shingle_hash_arrays:
            signature(hashes, multipliers, offsets)

    def ours_shingles_rensa_signature() -> None:
        # What swapping only `signature()` for rensa would cost: our word and shingle hashes,
        # one flat uint64 buffer, rensa's permutations (a different signature family).
        arrays = [shingle_hashes(word_hashes(text), options.ngram) for text in texts]
        offsets_of_rows = np.zeros(len(arrays) + 1, dtype=np.uint64)
        np.cumsum([a.size for a in arrays], out=offsets_of_rows[1:])
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)
        rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            flat, offsets_of_rows, options.num_perm, options.seed
        )

    def shingle_all() -> list[list[bytes]]:
        return [word_shingles(text, options.ngram) for text in texts]

    shingle_sets = shingle_all()

    def datasketch_bulk() -> None:
        datasketch.MinHash.bulk(shingle_sets, num_perm=options.num_perm, seed=options.seed)

    def rensa_per_document() -> None:
        for shingles in shingle_sets:
            minhash = rensa.RMinHash(num_perm=options.num_perm, seed=options.seed)
            minhash.update(shingles)
            minhash.digest()

    def rensa_matrix() -> None:
        rensa.RMinHash.digest_matrix_from_token_sets(shingle_sets, options.num_perm, options.seed)

    scheme = getattr(datasketch.MinHash(num_perm=8), "scheme", "?")
    measured: list[tuple[str, Callable[[], object], str]] = [
        ("ours: kernels only (words→sig)", ours_kernels, "numpy, no band keys"),
        ("ours: signature only", ours_signature_only, "shingle hashes given"),
        ("python word 5-gram shingling", shingle_all, "input for the references"),
        ("datasketch MinHash.bulk", datasketch_bulk, f"shingles given; scheme={scheme}"),
    ]
    if rensa is not None:
        measured += [
            ("rensa RMinHash per doc", rensa_per_document, "shingles given"),
            ("rensa digest_matrix", rensa_matrix, "shingles given, batch API"),
            ("ours shingle hashes + rensa signature", ours_shingles_rensa_signature, "text→signature"),
        ]
    else:
        print("rensa is not installed: its reference rows are skipped", flush=True)
    docs = len(texts)
    results: list[StageResult] = []
    for name, work, note in measured:
        work()
        walls, cpu = time_best(work, repeats)
        results.append(StageResult(name, "minhash-ref", megabytes, docs, walls, cpu, note))
    shingling = results[2]
    references = [
        r for r in results if r.stage.startswith(("datasketch", "rensa")) and "shingles given" in r.note
    ]
    for reference in references:
        # text→signature for a reference = its own time + the shingling it needs first.
        results.append(
            StageResult(
                f"{reference.stage} + shingling",
                "minhash-ref",
                megabytes,
                docs,
                [reference.seconds + shingling.seconds],
                reference.cpu_seconds + shingling.cpu_seconds,
                "text→signature",
            )
        )
    return results


# ---------------------------------------------------------------- end to end


@dataclass
class RunMeasurement:
    """One `analyzer run` subprocess: wall time, CPU of the whole process tree, peak memory."""

    workers: int
    wall_seconds: float
    cpu_seconds: float
    megabytes: float
    docs: int
    shards: int
    shard_seconds_sum: float
    tagging_seconds: float
    peak_rss_total_mb: float
    peak_rss_single_mb: float
    exit_code: int
    repeat: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def busy_cores(self) -> int:
        return max(1, min(self.workers, self.shards))

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        wall = self.wall_seconds if self.ok and self.wall_seconds > 0 else float("inf")
        record.update(
            mb_per_s_total=self.megabytes / wall,
            mb_per_s_per_core=self.megabytes / wall / self.busy_cores,
            mb_per_cpu_second=self.megabytes / self.cpu_seconds if self.ok and self.cpu_seconds > 0 else 0.0,
        )
        return record


def analyzer_command() -> list[str]:
    """The installed console script next to this interpreter, as a user would run it."""
    script = Path(sys.executable).parent / "analyzer"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from analyzer.cli import main; main()"]


def run_analyzer(
    inputs: Sequence[str],
    workers: int,
    model_path: Path,
    repeat: int,
    corpus_megabytes: float,
    options: Sequence[str] = (),
) -> RunMeasurement:
    """Run `analyzer run` into a fresh directory and sample the process tree's RSS every 20 ms.

    A failed run is returned with its exit code and error, not raised: the stage figures already
    taken stay worth writing out, and `main` turns the failure into the script's exit status.
    """
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-w{workers}-"))
    command = [
        *analyzer_command(),
        "run",
        *inputs,
        "--out",
        str(out_dir),
        "--workers",
        str(workers),
        "--model",
        str(model_path),
        "--tokenizer",
        TOKENIZER,
        "--no-progress",
        *options,
    ]
    load_before = os.getloadavg()[0]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tree = _sample_process_tree(process)
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        waited_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # both undercount (polling misses each process's last moments, getrusage the pool's
        # workers), so the larger is the better figure for the whole tree
        cpu = max(waited_cpu, tree.cpu_seconds)
        extra: dict[str, Any] = {"load_average_1min_before": load_before, "options": list(options)}
        megabytes, docs, shards, shard_seconds = 0.0, 0, len(inputs), 0.0
        if process.returncode != 0:
            lines = (stderr.strip() or stdout.strip() or "no output").splitlines()
            extra["error"] = lines[-1]
        else:
            megabytes, docs, shards, shard_seconds = _shard_totals(out_dir, corpus_megabytes, len(inputs))
        return RunMeasurement(
            workers=workers,
            wall_seconds=wall,
            cpu_seconds=cpu,
            megabytes=megabytes,
            docs=docs,
            shards=shards,
            shard_seconds_sum=shard_seconds,
            tagging_seconds=_reported_tagging_seconds(stdout),
            peak_rss_total_mb=tree.peak_total_bytes / 1e6,
            peak_rss_single_mb=tree.peak_single_bytes / 1e6,
            exit_code=process.returncode,
            repeat=repeat,
            extra=extra,
        )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _shard_totals(out_dir: Path, corpus_megabytes: float, shard_count: int) -> tuple[float, int, int, float]:
    """(text MB, documents, shards, summed shard seconds) from the run's own `shards` table.

    Falls back to the MB the reader stage measured if the table's shape has changed, so a schema
    edit elsewhere does not stop the benchmark.
    """
    try:
        with duckdb.connect(str(out_dir / "analysis.duckdb"), read_only=True) as connection:
            megabytes, docs, shards, seconds = connection.execute(
                "SELECT sum(text_bytes) / 1e6, sum(docs_tagged), count(*), sum(seconds) FROM shards"
            ).fetchall()[0]
        return float(megabytes or 0.0), int(docs or 0), int(shards or 0), float(seconds or 0.0)
    except duckdb.Error:
        return corpus_megabytes, 0, shard_count, 0.0


@dataclass
class TreeSample:
    """What polling a process tree saw: peak summed RSS, peak RSS of one process, CPU seconds."""

    peak_total_bytes: int = 0
    peak_single_bytes: int = 0
    cpu_seconds_by_pid: dict[int, float] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_seconds_by_pid.values())


def _sample_process_tree(process: subprocess.Popen[str]) -> TreeSample:
    """Poll the process and all its descendants (the pool's workers) every 20 ms until it exits.

    Peak summed RSS and peak of one process: getrusage cannot give these, because its children's
    ru_maxrss is a maximum over single processes, kept for this script's lifetime. CPU seconds per
    process, as last seen: getrusage's children times miss the pool's workers, which are the fork
    server's children and never waited for by the analyzer. Polled, so a spike shorter than the
    interval and each process's last <20 ms of CPU can be missed.
    """
    root = psutil.Process(process.pid)
    sample = TreeSample()
    while process.poll() is None:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        sizes = []
        for member in members:
            try:
                with member.oneshot():
                    sizes.append(member.memory_info().rss)
                    times = member.cpu_times()
                sample.cpu_seconds_by_pid[member.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
        if sizes:
            sample.peak_total_bytes = max(sample.peak_total_bytes, sum(sizes))
            sample.peak_single_bytes = max(sample.peak_single_bytes, max(sizes))
        time.sleep(0.02)
    return sample


def _reported_tagging_seconds(stdout: str) -> float:
    """The CLI's own 'tagged in N s' (executor time, no start-up or database build); 0 if absent."""
    match = re.search(r"tagged in ([\d,.]+) s", " ".join(stdout.split()))
    return float(match.group(1).replace(",", "")) if match else 0.0


def shard_copies(urls: Sequence[str], copies: int, directory: str) -> list[str]:
    """`copies` links to every local shard, each under its own name in `directory` (one copy: the
    shards themselves).

    The sample corpus is six shards; split over two workers, each worker's start (imports, model,
    tokenizer, the vectorised engine's tables) weighs about as much as its share of the tagging,
    which would hide how the pool scales on a real input. Copies are exact duplicates, which the
    dedup stage then finds, as it would in a corpus that holds them.
    """
    if copies == 1:
        return list(urls)
    linked = []
    for copy in range(copies):
        for url in urls:
            source = Path(url)
            target = Path(directory) / f"copy{copy}-{source.parent.name}-{source.name}"
            target.symlink_to(source.resolve())
            linked.append(str(target))
    return linked


def bench_end_to_end(
    inputs: Sequence[str],
    worker_counts: Sequence[int],
    model_path: Path,
    repeats: int,
    corpus_megabytes: float,
) -> list[RunMeasurement]:
    """Alternate worker counts within each repeat so slow spells of the machine hit both alike."""
    runs: list[RunMeasurement] = []
    for repeat in range(repeats):
        for workers in worker_counts:
            runs.append(run_analyzer(inputs, workers, model_path, repeat, corpus_megabytes))
    return runs


SAMPLED_RUNS = {
    "full": (),
    "sample 0.2, classify all (default)": ("--sample-rate", "0.2"),
    "sample 0.2, --no-classify-all": ("--sample-rate", "0.2", "--no-classify-all"),
}
"""One-worker runs compared side by side: what a 20 % sample saves, with and without its census."""


def bench_sampled_runs(
    inputs: Sequence[str], model_path: Path, repeats: int, corpus_megabytes: float
) -> dict[str, Any]:
    """Each option set of SAMPLED_RUNS once per repeat, alternating; best wall time and its ratio to
    the full run's (the whole process: reading, tagging, database build)."""
    runs: dict[str, list[RunMeasurement]] = {name: [] for name in SAMPLED_RUNS}
    for repeat in range(repeats):
        for name, options in SAMPLED_RUNS.items():
            runs[name].append(run_analyzer(inputs, 1, model_path, repeat, corpus_megabytes, options))
    best = {
        name: min((run for run in measured if run.ok), key=lambda run: run.wall_seconds, default=None)
        for name, measured in runs.items()
    }
    full = best["full"]
    report: dict[str, Any] = {}
    for name, run in best.items():
        if run is None:
            report[name] = {"error": [r.extra.get("error") for r in runs[name]]}
            continue
        report[name] = {
            "wall_seconds": run.wall_seconds,
            "tagging_seconds": run.tagging_seconds,
            "cpu_seconds": run.cpu_seconds,
            "wall_fraction_of_full": None if full is None else run.wall_seconds / full.wall_seconds,
            "tagging_fraction_of_full": None
            if full is None or not full.tagging_seconds
            else run.tagging_seconds / full.tagging_seconds,
        }
    return report


def best_runs(runs: Sequence[RunMeasurement]) -> dict[int, RunMeasurement]:
    best: dict[int, RunMeasurement] = {}
    for run in runs:
        if not run.ok:
            continue
        if run.workers not in best or run.wall_seconds < best[run.workers].wall_seconds:
            best[run.workers] = run
    return best


# ---------------------------------------------------------------- machine and report


def machine_info(model_path: Path) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_total_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": _git(["rev-parse", "HEAD"]),
        "git_dirty": bool(_git(["status", "--porcelain", "--untracked-files=no"])),
        "model": str(model_path),
        "tokenizer": TOKENIZER,
        "minhash": asdict(MinHashOptions()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(arguments: list[str]) -> str:
    try:
        done = subprocess.run(["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def ratios(stages: dict[str, StageResult], runs: dict[int, RunMeasurement]) -> dict[str, float]:
    """Speed ratios (>1: the first is faster); these survive a noisy machine better than MB/s."""

    pairs = {
        "domain vectorised (cold) / fastText predict": ("domain (DomainTagger)", "domain (fastText predict)"),
        "ours_tagger / datasketch (text→signature)": (
            "minhash (MinHashTagger)",
            "datasketch MinHash.bulk + shingling",
        ),
        "ours_kernels / datasketch (text→signature)": (
            "ours: kernels only (words→sig)",
            "datasketch MinHash.bulk + shingling",
        ),
        "ours_tagger / rensa per doc (text→signature)": (
            "minhash (MinHashTagger)",
            "rensa RMinHash per doc + shingling",
        ),
        "ours signature / datasketch bulk (shingles given)": (
            "ours: signature only",
            "datasketch MinHash.bulk",
        ),
        "ours signature / rensa per doc (shingles given)": ("ours: signature only", "rensa RMinHash per doc"),
        "ours shingle hashes + rensa signature / ours kernels": (
            "ours shingle hashes + rensa signature",
            "ours: kernels only (words→sig)",
        ),
    }
    # A pair is skipped when an optional reference (rensa) was not installed.
    found: dict[str, float] = {
        name: stages[first].mb_per_s / stages[second].mb_per_s
        for name, (first, second) in pairs.items()
        if first in stages and second in stages
    }
    # All taggers back to back in one process: what one core could do if reading, writing and
    # the database cost nothing. The gap to the measured run is the pipeline's own overhead.
    tag_seconds_per_mb = sum(1 / s.mb_per_s for s in stages.values() if s.group == "tag")
    found["taggers combined MB/s per core (predicted)"] = 1 / tag_seconds_per_mb
    if 1 in runs:
        measured = runs[1].as_json()["mb_per_s_per_core"]
        found["analyzer run w1 / taggers combined"] = measured * tag_seconds_per_mb
    if 1 in runs and 2 in runs:
        found["speed-up w2 / w1 (wall)"] = runs[1].wall_seconds / runs[2].wall_seconds
        found["per-core efficiency w2 vs w1"] = (
            runs[2].as_json()["mb_per_s_per_core"] / runs[1].as_json()["mb_per_s_per_core"]
        )
        # CPU seconds are not inflated by other processes holding a core, unlike wall time.
        found["MB per cpu-second w2 / w1"] = (
            runs[2].as_json()["mb_per_cpu_second"] / runs[1].as_json()["mb_per_cpu_second"]
        )
    return found


def print_report(
    stage_results: list[StageResult],
    runs: list[RunMeasurement],
    found_ratios: dict[str, float],
    info: dict[str, Any],
) -> None:
    print()
    print(
        f"machine: {info['cpu_model']} · {info['cpus_usable']} usable cpus · python {info['python']} · "
        f"load {', '.join(f'{x:.2f}' for x in info['load_average_at_start'])} · "
        f"model {Path(info['model']).name}"
    )
    print()
    header = (
        f"{'stage (single core)':<40} {'MB':>7} {'docs':>6} {'best s':>8} {'MB/s/core':>10} "
        f"{'MB/cpu-s':>8} {'cpu/wall':>8}  note"
    )
    print(header)
    print("-" * len(header))
    for result in stage_results:
        row = result.as_json()
        print(
            f"{result.stage:<40} {result.megabytes:>7.2f} {result.docs:>6} {result.seconds:>8.3f} "
            f"{result.mb_per_s:>10.2f} {row['mb_per_cpu_second']:>8.2f} {row['cpu_per_wall']:>8.2f}  "
            f"{result.note}"
        )
    print()
    header = (
        f"{'analyzer run':<14} {'rep':>3} {'MB':>7} {'wall s':>7} {'tag s':>6} {'MB/s':>6} {'MB/s/core':>9} "
        f"{'MB/cpu-s':>8} {'peak RSS MB (tree / 1 proc)':>28} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        row = run.as_json()
        if not run.ok:
            print(
                f"{'workers ' + str(run.workers):<14} {run.repeat:>3} "
                f"FAILED ({run.exit_code}): {run.extra['error']}"
            )
            continue
        print(
            f"{'workers ' + str(run.workers):<14} {run.repeat:>3} {run.megabytes:>7.2f} "
            f"{run.wall_seconds:>7.2f} "
            f"{run.tagging_seconds:>6.1f} {row['mb_per_s_total']:>6.2f} {row['mb_per_s_per_core']:>9.2f} "
            f"{row['mb_per_cpu_second']:>8.2f} {run.peak_rss_total_mb:>18.0f} / "
            f"{run.peak_rss_single_mb:<7.0f} "
            f"{run.extra['load_average_1min_before']:>5.2f}"
        )
    busy = max(run.extra["load_average_1min_before"] for run in runs) if runs else 0.0
    if busy > 0.5:
        # Other processes held a core: wall-clock MB/s (above all with 2 workers on a 2-cpu box)
        # understate; MB/cpu-s and the single-core stage ratios are the figures to trust.
        print(f"note: 1-min load average reached {busy:.2f} before a run; the machine was shared")
    print()
    print("ratios (>1 means the first is faster)")
    for name, value in found_ratios.items():
        print(f"  {name:<56} {value:>8.2f}")


# ---------------------------------------------------------------- main


def default_model() -> Path:
    return next((path for path in MODEL_CANDIDATES if path.is_file()), MODEL_CANDIDATES[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "bench.json")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="has fineweb/ and dolma/")
    parser.add_argument("--model", type=Path, default=None, help="default: the analyzer's default model")
    parser.add_argument("--repeats", type=int, default=None, help="per stage (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="small subset, one repeat: under a minute")
    parser.add_argument(
        "--run-copies",
        type=int,
        default=RUN_COPIES,
        help=f"`analyzer run` reads this many copies of every shard (default {RUN_COPIES}, --quick 1)",
    )
    args = parser.parse_args(argv)

    model_path: Path = args.model or default_model()
    repeats: int = args.repeats or (1 if args.quick else 3)
    run_repeats = 1 if args.quick else 2
    started = time.perf_counter()
    info = machine_info(model_path)

    print(f"reading shards under {args.corpus} ...", flush=True)
    reader_results, shards_by_format = bench_readers(args.corpus, repeats, args.quick)
    options = ReaderOptions()
    batches = interleave_formats(
        read_all(shards_by_format["parquet"], options), read_all(shards_by_format["jsonl.gz"], options)
    )
    batches = limit_documents(batches, QUICK_DOCS if args.quick else None)
    print(f"taggers on {text_megabytes(batches):.1f} MB ...", flush=True)
    tagger_results = bench_taggers(batches, model_path, repeats)
    engine_agreement = compare_engines(batches, model_path)
    print(
        f"engines: max |p vectorised - p fastText| {engine_agreement['max_abs_probability_difference']:.1e}, "
        f"same top domain on {engine_agreement['same_top_domain']}/{engine_agreement['docs']} documents",
        flush=True,
    )
    print("minhash references ...", flush=True)
    reference_results = bench_minhash_references(batches, repeats)
    stage_results = reader_results + tagger_results + reference_results

    copies = 1 if args.quick else max(1, args.run_copies)
    corpus_megabytes = copies * sum(result.megabytes for result in reader_results)
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as shard_dir:
        inputs = shard_copies(
            [s.url for shards in shards_by_format.values() for s in shards], copies, shard_dir
        )
        print(
            f"analyzer run over {len(inputs)} shards ({copies} copies of each), workers 1 and 2, "
            f"{run_repeats} repeat(s) ...",
            flush=True,
        )
        runs = bench_end_to_end(inputs, (1, 2), model_path, run_repeats, corpus_megabytes)
        print("sampled runs (1 worker): full, 20 % with and without the census ...", flush=True)
        sampled = bench_sampled_runs(inputs, model_path, run_repeats, corpus_megabytes)
    best = best_runs(runs)

    stages_by_name = {result.stage: result for result in stage_results}
    found_ratios = ratios(stages_by_name, best)
    print_report(stage_results, runs, found_ratios, info)
    for name, figures in sampled.items():
        if "error" in figures:
            print(f"{name:<40} failed: {figures['error']}")
            continue
        wall, tagging = (figures[f"{kind}_fraction_of_full"] for kind in ("wall", "tagging"))
        print(
            f"{name:<40} wall {figures['wall_seconds']:6.1f} s ({wall or float('nan'):.2f} of full), "
            f"tagging {figures['tagging_seconds']:6.1f} s ({tagging or float('nan'):.2f} of full)"
        )
    elapsed = time.perf_counter() - started
    print(f"\nbenchmark took {elapsed:.0f} s; results in {args.out}")

    report = {
        "mode": "quick" if args.quick else "full",
        "units": "MB = 1e6 bytes of UTF-8 document text; best (minimum) wall time over repeats",
        "machine": info,
        "stages": [result.as_json() for result in stage_results],
        "classifier_engines": engine_agreement,
        "analyzer_runs": [run.as_json() for run in runs],
        "analyzer_runs_best": {str(workers): run.as_json() for workers, run in best.items()},
        "ratios": found_ratios,
        "sampled_runs": sampled,
        "benchmark_seconds": elapsed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if len(best) < 2:
        print("error: every `analyzer run` of some worker count failed (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
