"""The command line: the only module that knows click. It parses, calls, prints."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from analyzer import __version__
from analyzer.config import (
    CLASSIFIER_ENGINES,
    DEDUP_MODES,
    DEFAULT_LABELED_DIR,
    DEFAULT_MODEL_PATH,
    ESTIMATORS,
    FORMATS,
    MINHASH_BACKENDS,
    REPO_ROOT,
    MinHashOptions,
    ReaderOptions,
    RunConfig,
    shipped_model_path,
)
from analyzer.errors import AnalyzerError, InputError

F = TypeVar("F", bound=Callable[..., Any])
console = Console(stderr=True)

INTERVAL_CAVEAT = (
    "Intervals carry the classifier's error as measured on sources like its training data's and, as "
    "far as the input reads unfamiliar (unfamiliar_fraction), its spread over sources it never saw "
    "(README: On sources the classifier never saw)."
)


def reports_errors(command: F) -> F:
    """Turn an AnalyzerError into one line on stderr and its exit code; never a traceback.

    Anything else is a bug: one line saying so (exit 1), with the traceback only under --debug.
    """

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AnalyzerError as error:
            click.echo(f"error: {error.message}", err=True)
            sys.exit(error.exit_code)
        except (KeyboardInterrupt, SystemExit, click.exceptions.Exit):
            raise
        except Exception as error:
            context = click.get_current_context(silent=True)
            if context is not None and (context.find_root().obj or {}).get("debug"):
                raise
            click.echo(
                f"error: internal error {error.__class__.__name__}: {error} "
                "(a bug: rerun with `analyzer --debug ...` and report the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(__version__, prog_name="analyzer")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def main(context: click.Context, debug: bool) -> None:
    """Measure how much finance, law, code and medical text a web corpus contains."""
    context.obj = {"debug": debug}


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_MODEL_PATH,
    show_default=True,
    help="fastText domain model (.ftz/.bin).",
)
@click.option(
    "--label-map",
    "label_map",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML map folding the model's own labels into the domains (default: <model>.labels.yaml if any).",
)
@click.option(
    "--multi-label-threshold",
    type=float,
    default=None,
    help="Also tag `domains`: every domain with probability >= T (multi-label documents).",
)
@click.option(
    "--classifier-engine",
    type=click.Choice(list(CLASSIFIER_ENGINES)),
    default="auto",
    show_default=True,
    help="vectorised: numpy re-implementation of fastText's predict (same probabilities, faster); "
    "fasttext: the library's own predict; auto: vectorised where the model allows.",
)
@click.option(
    "--tokenizer",
    default="cl100k_base",
    show_default=True,
    help="cl100k_base, o200k_base, a tokenizer.json path, or column:token_count.",
)
@click.option("--format", "input_format", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--text-column", default=None, help="Column/field holding the text (default: text).")
@click.option("--id-column", default=None, help="Column/field holding the document id (default: id).")
@click.option("--batch-size", type=int, default=512, show_default=True, help="Documents per tagging batch.")
@click.option("--hf-dataset", default=None, help="Read a Hugging Face `datasets` stream instead of files.")
@click.option("--hf-config", default=None, help="Dataset config (for json/parquet loaders: the data files).")
@click.option("--hf-split", default="train", show_default=True)
@click.option(
    "--dedup",
    "dedup_mode",
    type=click.Choice(DEDUP_MODES),
    default="near",
    show_default=True,
    help="near: MinHash LSH + exact; exact: content hash only; off: keep every document.",
)
@click.option("--minhash-bands", type=int, default=MinHashOptions.bands, show_default=True)
@click.option("--minhash-rows", type=int, default=MinHashOptions.rows, show_default=True)
@click.option(
    "--dedup-threshold",
    type=float,
    default=None,
    help="Choose bands x rows for this Jaccard threshold (overrides --minhash-bands/--minhash-rows).",
)
@click.option(
    "--verify-jaccard",
    type=float,
    default=RunConfig.verify_jaccard,
    show_default=True,
    help="Join an LSH candidate pair only if its estimated Jaccard reaches this (0: join all).",
)
@click.option(
    "--verify-containment",
    type=float,
    default=RunConfig.verify_containment,
    show_default=True,
    help="Also join a candidate whose estimated containment reaches this (and Jaccard >= 0.6); 0: off.",
)
@click.option(
    "--boilerplate-clusters",
    type=int,
    default=RunConfig.boilerplate_clusters,
    show_default=True,
    help="Re-check LSH pairs without MinHash minima shared by this many clusters (licence headers, "
    "templates); 0: off.",
)
@click.option("--minhash-backend", type=click.Choice(MINHASH_BACKENDS), default="auto", show_default=True)
@click.option(
    "--dedup-memory-limit",
    default=None,
    help="DuckDB memory_limit for the database build, e.g. 2GB (default: half of RAM); it spills beyond.",
)
@click.option("--shingle-words", type=int, default=MinHashOptions.ngram, show_default=True)
@click.option(
    "--sample-rate",
    type=float,
    default=None,
    help="Tag a probability sample: documents chosen by a hash of the id at rate F (long documents "
    "more often with --sample-design pps); estimates are weighted by 1/pi.",
)
@click.option(
    "--sample-design",
    type=click.Choice(["bernoulli", "pps"]),
    default=RunConfig.sample_design,
    show_default=True,
    help="pps: pi = min(1, F * max(1, bytes / --sample-size-unit)); bernoulli: pi = F for every document.",
)
@click.option(
    "--sample-size-unit",
    type=int,
    default=RunConfig.sample_size_unit,
    show_default=True,
    help="L0 of --sample-design pps, in UTF-8 bytes: documents up to L0 are kept at rate F.",
)
@click.option("--max-docs-per-shard", type=int, default=None, help="Tag at most N documents per shard.")
@click.option("--sample-seed", type=int, default=0, show_default=True)
@click.option(
    "--classify-all/--no-classify-all",
    default=RunConfig.classify_all,
    show_default=True,
    help="Two-phase sampling: the domain model also reads the documents sampled out, and the sample "
    "is calibrated to that census of bytes per predicted domain, dump and source (tokens and MinHash "
    "stay the sample's). --no-classify-all: a plain sample, the domain model reads only what is tagged.",
)
@click.option(
    "--bootstrap-block",
    type=int,
    default=256,
    show_default=True,
    help="Consecutive rows of a shard forming one bootstrap cluster for the intervals.",
)
@click.option(
    "--estimator",
    type=click.Choice(list(ESTIMATORS)),
    default="mid",
    show_default=True,
    help="Share estimator: midpoint of cc and emq, classify-and-count, adjusted (dev confusion), "
    "probabilistic, adjusted prob., EM prior re-estimation (SLD). README: How the shares are estimated.",
)
@click.option("--replicates", type=int, default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@reports_errors
def run(
    inputs: tuple[str, ...],
    out_dir: Path,
    workers: int | None,
    model_path: Path,
    label_map: Path | None,
    multi_label_threshold: float | None,
    classifier_engine: str,
    tokenizer: str,
    input_format: str,
    text_column: str | None,
    id_column: str | None,
    batch_size: int,
    hf_dataset: str | None,
    hf_config: str | None,
    hf_split: str,
    dedup_mode: str,
    minhash_bands: int,
    minhash_rows: int,
    dedup_threshold: float | None,
    verify_jaccard: float,
    verify_containment: float,
    boilerplate_clusters: int,
    minhash_backend: str,
    dedup_memory_limit: str | None,
    shingle_words: int,
    sample_rate: float | None,
    sample_design: str,
    sample_size_unit: int,
    max_docs_per_shard: int | None,
    sample_seed: int,
    classify_all: bool,
    bootstrap_block: int,
    estimator: str,
    replicates: int,
    confidence: float,
    progress: bool,
) -> None:
    """Tag every document of INPUTS (files, globs, directories, fsspec URLs) and build
    OUT/analysis.duckdb with documents, domain_shares, skipped and runs."""
    from analyzer.pipeline import run_analysis

    if not inputs and not hf_dataset:
        raise InputError("no inputs: pass shard paths/globs/URLs, or --hf-dataset NAME")
    if inputs and hf_dataset:
        raise InputError("pass either input paths or --hf-dataset, not both")
    if batch_size < 1 or (workers is not None and workers < 1):
        raise InputError("--batch-size and --workers must be at least 1")
    if minhash_bands < 1 or minhash_rows < 1 or shingle_words < 1:
        raise InputError("--minhash-bands, --minhash-rows and --shingle-words must be at least 1")
    if sample_rate is not None and not 0.0 < sample_rate <= 1.0:
        raise InputError("--sample-rate must be in (0, 1]")
    if sample_size_unit < 1:
        raise InputError("--sample-size-unit must be at least 1 (byte)")
    if max_docs_per_shard is not None and max_docs_per_shard < 1:
        raise InputError("--max-docs-per-shard must be at least 1")
    if bootstrap_block < 1 or replicates < 10 or not 0.5 <= confidence < 1.0:
        raise InputError("--bootstrap-block >= 1, --replicates >= 10 and --confidence in [0.5, 1) please")
    if not (0.0 <= verify_jaccard <= 1.0 and 0.0 <= verify_containment <= 1.0):
        raise InputError("--verify-jaccard and --verify-containment must be between 0 and 1")
    if boilerplate_clusters < 0:
        raise InputError("--boilerplate-clusters must be 0 (off) or a positive count")
    if multi_label_threshold is not None and not 0.0 < multi_label_threshold <= 1.0:
        raise InputError("--multi-label-threshold must be in (0, 1]")
    if dedup_threshold is not None:
        from analyzer.dedup.banding import banding_for_threshold

        if not 0.0 < dedup_threshold < 1.0:
            raise InputError("--dedup-threshold must be between 0 and 1 (exclusive)")
        minhash_bands, minhash_rows = banding_for_threshold(dedup_threshold, minhash_bands * minhash_rows)
    config = RunConfig(
        inputs=inputs,
        out_dir=out_dir,
        workers=workers or os.cpu_count() or 1,
        model_path=model_path,
        label_map_path=label_map,
        multi_label_threshold=multi_label_threshold,
        classifier_engine=classifier_engine,
        tokenizer=tokenizer,
        reader=ReaderOptions(
            format=input_format, text_column=text_column, id_column=id_column, batch_size=batch_size
        ),
        minhash=MinHashOptions(
            ngram=shingle_words, bands=minhash_bands, rows=minhash_rows, backend=minhash_backend
        ),
        dedup_mode=dedup_mode,
        verify_jaccard=verify_jaccard,
        verify_containment=verify_containment,
        boilerplate_clusters=boilerplate_clusters,
        dedup_memory_limit=dedup_memory_limit,
        sample_rate=sample_rate,
        sample_design=sample_design,
        sample_size_unit=sample_size_unit,
        max_docs_per_shard=max_docs_per_shard,
        sample_seed=sample_seed,
        classify_all=classify_all,
        bootstrap_block=bootstrap_block,
        estimator=estimator,
        bootstrap_replicates=replicates,
        confidence=confidence,
        hf_dataset=hf_dataset,
        hf_config=hf_config,
        hf_split=hf_split,
        show_progress=progress,
    )
    summary = run_analysis(config, console=console)
    _print_summary(summary, config)
    if summary.failed:
        kinds = {a.error_kind for a in summary.failed}
        sys.exit(2 if kinds == {"input"} else 1)


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--sql", "statement", required=True, help="A read-only SQL query against analysis.duckdb.")
@reports_errors
def query(out_dir: Path, statement: str) -> None:
    """Run a SQL query against OUT_DIR/analysis.duckdb, opened read-only, and print the result."""
    import duckdb

    database = out_dir / "analysis.duckdb" if out_dir.is_dir() else out_dir
    if "?" in str(database.resolve()):
        raise InputError(f"{database}: DuckDB cannot open a path containing '?'; move or rename it")
    if not database.is_file():
        raise InputError(f"{database}: no analysis database; run `analyzer run ... --out {out_dir}` first")
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            relation = connection.sql(statement)
            if relation is None:
                return
            # DuckDB's own renderer: familiar to its users and fits wide tables to the terminal
            click.echo(str(relation))
    except duckdb.Error as exc:
        raise InputError(f"query failed: {str(exc).splitlines()[0]}") from exc


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--corpus", required=True, help="A general corpus of reference_corpora, e.g. fineweb, dolma.")
@click.option("--dedup", is_flag=True, help="Use the deduplicated shares.")
@reports_errors
def estimate(out_dir: Path, corpus: str, dedup: bool) -> None:
    """Estimate tokens per domain in a full published corpus from the shares measured in OUT_DIR,
    with intervals and ratios to domain corpora (written back as table corpus_estimates)."""
    from analyzer.estimates.full_corpus import estimate_full_corpus

    database = out_dir / "analysis.duckdb"
    if not database.is_file():
        raise InputError(f"{database}: no analysis database; run `analyzer run ... --out {out_dir}` first")
    table = estimate_full_corpus(database, corpus, dedup)
    out = Console()
    result = Table(title=f"Estimated tokens per domain in {corpus} ({table.column('tokenizer')[0]} tokens)")
    for column in ("domain", "share", "tokens", "interval", "vs domain corpora"):
        result.add_column(column)
    for row in table.to_pylist():
        result.add_row(
            row["domain"],
            _percent(row["share"]),
            _tokens(row["tokens"]),
            f"{_tokens(row['tokens_lo'])} - {_tokens(row['tokens_hi'])}",
            row["domain_corpora"],
        )
    result.caption = (
        f"{table.column('unit_note')[0]}; size from {table.column('source')[0]}. {INTERVAL_CAVEAT}"
    )
    out.print(result)


@main.command()
@click.argument("more_unlabeled", nargs=-1, metavar="[UNLABELED]...")
@click.option(
    "--train",
    "train_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_LABELED_DIR / "train.jsonl.gz",
    show_default=True,
    help="Labeled training file (jsonl(.gz)/parquet with text and label).",
)
@click.option(
    "--dev",
    "dev_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_LABELED_DIR / "dev.jsonl.gz",
    show_default=True,
    help="Labeled dev file: model selection and calibration (with --seed-rules: evaluation only).",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path),
    default=REPO_ROOT / "classifiers",
    show_default=True,
    help="Where the model, sidecar, card, metrics and plot are written.",
)
@click.option(
    "--name",
    default=None,
    help="Model name, the stem of every output file [default: domain-v1; with --seed-rules: domain-weak].",
)
@click.option("--workers", type=int, default=2, show_default=True, help="Grid points trained in parallel.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--grid",
    type=click.Choice(("full", "shipped")),
    default="full",
    show_default=True,
    help="full: the whole grid search; shipped: domain-v1's configuration only (fast).",
)
@click.option(
    "--loss",
    type=click.Choice(("softmax", "ova")),
    default=None,
    help="fastText loss of every grid point [default: the grid's: softmax for --grid shipped]; ova "
    "(one-vs-all) gives each domain an independent probability, which --multi-label-threshold reads.",
)
@click.option(
    "--source-holdout/--no-source-holdout",
    default=True,
    show_default=True,
    help="Score the recipe leave-one-source-out for the card (one training per `source` of the data).",
)
@click.option(
    "--lexicon",
    type=click.Path(path_type=Path),
    default=None,
    help="Domain lexicon YAML whose marker tokens the model reads (default: the shipped "
    "classifiers/lexicons/domain-lexicon-v4.yaml); see --no-lexicon.",
)
@click.option(
    "--no-lexicon", is_flag=True, help="Train on the normalised text alone, without lexicon markers."
)
@click.option(
    "--no-symbol-marker",
    is_flag=True,
    help="Train without the symbol-density marker token (analyzer/symbol_density.py).",
)
@click.option(
    "--seed-rules",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Weak supervision: a directory (or file) of seed-rule YAML, repeatable; needs --unlabeled.",
)
@click.option(
    "--unlabeled",
    multiple=True,
    help="Weak supervision: corpus shards (paths, globs, dirs); more may follow as arguments.",
)
@click.option(
    "--rounds", type=int, default=2, show_default=True, help="Weak supervision: self-training rounds."
)
@click.option(
    "--confidence-threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="Weak supervision: lowest probability at which a prediction may join the training set.",
)
@click.option(
    "--growth",
    type=float,
    default=3.0,
    show_default=True,
    help="Weak supervision: per round, a domain's training set grows by at most this factor of its size.",
)
@click.option(
    "--other-ratio",
    type=float,
    default=1.0,
    show_default=True,
    help="Weak supervision: `other` documents per rule-labeled document (subsampled from the unmatched).",
)
@reports_errors
def train(
    more_unlabeled: tuple[str, ...],
    train_path: Path,
    dev_path: Path,
    out_dir: Path,
    name: str | None,
    workers: int,
    seed: int,
    grid: str,
    loss: str | None,
    source_holdout: bool,
    lexicon: Path | None,
    no_lexicon: bool,
    no_symbol_marker: bool,
    seed_rules: tuple[Path, ...],
    unlabeled: tuple[str, ...],
    rounds: int,
    confidence_threshold: float,
    growth: float,
    other_ratio: float,
) -> None:
    """Train a domain classifier with the project's recipe and write its card.

    Supervised (default): grid search on --train scored on --dev, head length, quantisation,
    temperature, card, metrics, reliability plot and dev predictions in --out-dir.

    Weakly supervised (--seed-rules DIR --unlabeled SHARDS...): seed rules on URLs (optionally text) label an
    unlabeled corpus, a model is trained on them and improved by self-training; --dev, if it
    exists, is only used to report how good the result is.
    """
    command = "analyzer train " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else "analyzer train"
    from analyzer.training.commands import read_markers_option

    markers = read_markers_option(lexicon, no_lexicon, no_symbol_marker)
    if seed_rules and loss is not None:
        raise InputError("--loss is for supervised training; weak supervision trains domain-v1's softmax")
    if not seed_rules:
        if unlabeled or more_unlabeled:
            raise InputError("--unlabeled and extra arguments need --seed-rules DIR (weak supervision)")
        from analyzer.training.commands import train_supervised

        report, dev_predictions = train_supervised(
            train_path,
            dev_path,
            out_dir,
            name or "domain-v1",
            grid=grid,
            seed=seed,
            workers=workers,
            holdout_sources=source_holdout,
            markers=markers,
            loss=loss,
            command=command,
            log=lambda message: console.print(message, highlight=False),
        )
        dev = report.dev
        assert dev is not None
        _print_evaluation(dev, f"{report.name} on {dev_path.name}")
        Console().print(
            f"wrote {report.model_path} (dev macro-F1 {dev.macro_f1:.4f}, "
            f"{dev.mb_per_second or 0:.1f} MB/s), "
            f"card {Path(report.model_path).with_suffix('.card.md')}, dev predictions {dev_predictions} "
            f"in {report.seconds:.0f}s",
            highlight=False,
        )
        return
    from analyzer.training.weak_supervision import WeakSupervisionOptions, train_weakly_supervised

    name = name or "domain-weak"
    inputs = (*unlabeled, *more_unlabeled)
    if not inputs:
        raise InputError("--seed-rules needs unlabeled corpus shards: --unlabeled PATH [PATH...]")
    if rounds < 0 or not 0.0 <= confidence_threshold < 1.0 or other_ratio <= 0 or growth < 0:
        raise InputError(
            "--rounds >= 0, --confidence-threshold in [0, 1), --growth >= 0 and --other-ratio > 0 please"
        )
    options = WeakSupervisionOptions(
        rounds=rounds,
        confidence_threshold=confidence_threshold,
        growth=growth,
        other_ratio=other_ratio,
        seed=seed,
        markers=markers,
    )
    result = train_weakly_supervised(
        seed_rules,
        inputs,
        out_dir,
        name,
        dev_path=dev_path if dev_path.is_file() else None,
        options=options,
        command=command,
        supervised_model=shipped_model_path(),
        log=lambda message: console.print(message, highlight=False),
    )
    if result.dev is not None:
        _print_evaluation(result.dev, f"{name} (weakly supervised) on {dev_path.name}")
        for subset, evaluation in (("all dev", result.dev), ("dev not in the corpus", result.dev_unseen)):
            supervised = result.supervised.get("all" if subset == "all dev" else "unseen")
            if evaluation is not None:
                compared = "" if supervised is None else f"; shipped supervised {supervised.macro_f1:.4f}"
                console.print(
                    f"{subset} ({evaluation.n_docs} documents): weakly supervised macro-F1 "
                    f"{evaluation.macro_f1:.4f}{compared}",
                    highlight=False,
                )
    Console().print(f"wrote {result.model_path} and {result.report_path}", highlight=False)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("data_path", metavar="DATA", type=click.Path(path_type=Path))
@click.option(
    "--label-map",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML map folding the model's own labels into the domains (default: <model>.labels.yaml if any).",
)
@click.option(
    "--card", type=click.Path(path_type=Path), default=None, help="Write/refresh this card's section."
)
@click.option(
    "--reliability", type=click.Path(path_type=Path), default=None, help="Write a reliability diagram (PNG)."
)
@click.option("--batch-size", type=int, default=512, show_default=True)
@reports_errors
def evaluate(
    model_path: Path,
    data_path: Path,
    label_map: Path | None,
    card: Path | None,
    reliability: Path | None,
    batch_size: int,
) -> None:
    """Score MODEL on a labeled DATA file (jsonl(.gz)/parquet with text and label): per-label
    precision/recall/F1, macro-F1, confusion matrix, calibration error (ECE) and speed."""
    from analyzer.training.commands import card_section, write_card_section
    from analyzer.training.evaluate import evaluate_model

    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    for flag, target in (("--reliability", reliability), ("--card", card)):
        if target is not None and not target.resolve().parent.is_dir():
            raise InputError(f"{flag} {target}: directory {target.parent} does not exist")
    evaluation = evaluate_model(
        model_path, data_path, reliability_png=reliability, batch_size=batch_size, label_map=label_map
    )
    _print_evaluation(evaluation, f"{evaluation.model_name} on {data_path.name}")
    if card is not None:
        section = card_section(evaluation, data_path.name, evaluation.model_name or model_path.stem)
        write_card_section(card, data_path.name, section)
        Console().print(f"wrote section `Evaluation on {data_path.name}` to {card}", highlight=False)


def _print_evaluation(evaluation: Any, title: str) -> None:
    """Per-label scores, summary line and confusion matrix as rich tables on stdout."""
    out = Console()
    scores = Table(title=title)
    for column in ("label", "precision", "recall", "F1", "support"):
        scores.add_column(column, justify="left" if column == "label" else "right")
    for label, score in evaluation.per_label.items():
        scores.add_row(
            label, f"{score.precision:.4f}", f"{score.recall:.4f}", f"{score.f1:.4f}", str(score.support)
        )
    speed = "" if evaluation.mb_per_second is None else f" · {evaluation.mb_per_second:.1f} MB/s (one core)"
    scores.caption = (
        f"macro-F1 {evaluation.macro_f1:.4f} · accuracy {evaluation.accuracy:.4f} · ECE {evaluation.ece:.4f}"
        f" · NLL {evaluation.nll:.4f} · {evaluation.n_docs} documents{speed}"
    )
    out.print(scores)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for label in evaluation.labels:
        confusion.add_column(label, justify="right")
    for label, row in zip(evaluation.labels, evaluation.confusion, strict=True):
        confusion.add_row(label, *(str(count) for count in row))
    out.print(confusion)


def _tokens(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if abs(value) >= scale:
            return f"{value / scale:,.2f}{unit}"
    return f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _print_summary(summary: Any, config: RunConfig) -> None:
    out = Console()
    table = Table(title=f"Domain shares ({config.tokenizer} tokens) — {config.database_path}")
    headers = ("domain", "docs", "tokens", "token share", "95% interval", "raw share", "dedup share")
    for column in headers:
        table.add_column(column, justify="right" if column != "domain" else "left")
    for row in summary.domain_shares:
        table.add_row(
            str(row["domain"]),
            f"{row['docs']:,}",
            f"{row['tokens']:,}",
            _percent(row["token_share"]),
            f"{_percent(row['token_share_lo'])} - {_percent(row['token_share_hi'])}",
            _percent(row["token_share_raw"]),
            _percent(row["dedup_token_share"]),
        )
    if summary.domain_shares:
        table.caption = f"estimator: {summary.domain_shares[0]['estimator']}. {INTERVAL_CAVEAT}"
    out.print(table)
    out.print(
        f"documents read {summary.docs_read:,} = tagged {summary.docs_tagged:,} + skipped "
        f"{summary.docs_skipped:,} · {len(summary.accountings)} shards "
        f"({sum(a.status == 'reused' for a in summary.accountings)} reused) · "
        f"{summary.processed_megabytes:,.1f} MB of text tagged in {summary.seconds:,.1f} s "
        f"with {summary.workers} worker(s) = {summary.megabytes_per_second_per_core:,.2f} MB/s per core"
    )
    census = summary.census_docs
    if census:
        out.print(
            f"classified but not tagged (--classify-all): {census:,} of the skipped documents; "
            "the sample is calibrated to their predicted domains"
        )
    if summary.model_confidence is not None:
        unfamiliar = summary.domain_shares[0].get("unfamiliar_fraction") if summary.domain_shares else None
        out.print(
            model_confidence_line(
                summary.model_confidence, unfamiliar if isinstance(unfamiliar, float) else None
            )
        )
    for failed in summary.failed:
        out.print(f"FAILED {failed.shard} (not counted; see the failed_shards table)")
        click.echo(f"error: {failed.error}", err=True)


UNFAMILIAR_RATIO = 1.5
"""An input with this many times dev's share of low-confidence documents is called unfamiliar:
dev has 12 %, the cross-fitted corpus of familiar sources 12 %, unseen sources 25 % (README)."""


def model_confidence_line(row: dict[str, object], unfamiliar_fraction: float | None = None) -> str:
    """One line on how confidently the model read the input, against its dev set, and what the
    intervals did about it (`unfamiliar_fraction`: the source-shift term's lambda; None when the
    model ships no source-shift rows)."""
    share, dev = row["low_confidence_doc_share"], row["dev_low_confidence_doc_share"]
    if not isinstance(share, float):
        return "model confidence: no documents tagged"
    line = f"model confidence: {share:.1%} of documents tagged with top probability < {row['threshold']}"
    if not isinstance(dev, float):
        return line + " (no dev predictions to compare with)"
    line += f" (its dev set: {dev:.1%})"
    if unfamiliar_fraction is not None:
        if unfamiliar_fraction > 0:
            line += (
                f"; unfamiliar text ({unfamiliar_fraction:.0%} of the way from its dev set to sources it "
                "never saw, by weight): the intervals carry that much of its error on such sources "
                "(README: On sources the classifier never saw)"
            )
        return line
    if dev > 0 and share >= UNFAMILIAR_RATIO * dev:
        line += (
            "; unfamiliar text: expect larger classifier errors than the intervals allow "
            "(README: On sources the classifier never saw)"
        )
    return line


if __name__ == "__main__":
    main()
