"""What `analyzer train` and `analyzer evaluate` do, as library functions the CLI wraps.

`train_supervised` runs the recipe of `analyzer.training.train` (grid search, head length,
quantisation, calibration, card) and writes the dev predictions the share correction needs;
`write_card_section` records an evaluation in a model card.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from analyzer.config import REPO_ROOT
from analyzer.errors import InputError
from analyzer.lexicon import DomainLexicon
from analyzer.line_markers import LineMarkers
from analyzer.training.card import evaluation_tables
from analyzer.training.dev_predictions import write_dev_predictions
from analyzer.training.evaluate import Evaluation
from analyzer.training.source_shift_rows import write_after_training
from analyzer.training.train import (
    DEFAULT_GRID,
    DEFAULT_VIEWS,
    SHIPPED_HEAD_CHARS,
    SHIPPED_PARAMS,
    FastTextParams,
    TextView,
    TrainReport,
    build_classifier,
    shipped_markers,
)

GRIDS: dict[str, tuple[tuple[FastTextParams, ...], tuple[TextView, ...]]] = {
    "full": (DEFAULT_GRID, DEFAULT_VIEWS),
    "shipped": ((SHIPPED_PARAMS,), (TextView(SHIPPED_HEAD_CHARS),)),
}
"""`--grid full` reruns the whole search (minutes); `shipped` trains domain-v1's configuration only
(the views read with the markers the run asks for)."""

LOSSES = ("softmax", "ova")
"""Losses `analyzer train --loss` offers: softmax (shipped), or one-vs-all (independent sigmoids)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> None:
    """Raise InputError unless `name` is a plain file stem (it names every output file)."""
    if not _NAME.match(name):
        raise InputError(f"--name {name!r} must be letters, digits, '.', '_' or '-' (it names the files)")


def read_markers_option(lexicon_path: Path | None, no_lexicon: bool, no_symbol_marker: bool) -> LineMarkers:
    """The markers `--lexicon PATH` / `--no-lexicon` / `--no-symbol-marker` ask for (by default the
    shipped lexicon and the symbol-density marker)."""
    shipped = shipped_markers()
    if no_lexicon:
        if lexicon_path is not None:
            raise InputError("--lexicon and --no-lexicon contradict each other; pass one")
        lexicon = None
    else:
        lexicon = shipped.lexicon if lexicon_path is None else DomainLexicon.load(lexicon_path)
    return LineMarkers(lexicon, () if no_symbol_marker else shipped.symbol_bins)


def check_out_dir(out_dir: Path) -> None:
    """Create `out_dir` or raise InputError naming it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"--out-dir {out_dir} is not writable ({exc.strerror or exc}); choose another"
        ) from exc


def train_supervised(
    train_path: Path,
    dev_path: Path,
    out_dir: Path,
    name: str,
    *,
    grid: str = "full",
    seed: int = 0,
    workers: int = 2,
    holdout_sources: bool = True,
    markers: LineMarkers | None = None,
    loss: str | None = None,
    command: str = "analyzer train",
    log: Callable[[str], None] = print,
) -> tuple[TrainReport, Path]:
    """Run the recipe on labeled train/dev files; return the report and the dev-predictions path.

    Every line carries `markers` (None: the shipped ones). `loss` ("softmax" or "ova") replaces the
    loss of every grid point (None: the grid's own); a one-vs-all model's independent sigmoids
    decide the multi-label `domains` of a run.
    """
    for flag, path in (("--train", train_path), ("--dev", dev_path)):
        if not path.is_file():
            raise InputError(f"{flag} {path} does not exist; pass a labeled jsonl(.gz) or parquet file")
    if grid not in GRIDS:
        raise InputError(f"--grid must be one of {', '.join(GRIDS)}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if loss not in (None, *LOSSES):
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}")
    check_name(name)
    check_out_dir(out_dir)
    params, views = GRIDS[grid]
    if loss is not None:  # the grid's points with this loss, each once
        params = tuple(dict.fromkeys(replace(point, loss=loss) for point in params))
    report = build_classifier(
        train_path,
        dev_path,
        out_dir,
        name,
        grid=params,
        views=views,
        seed=seed,
        workers=workers,
        holdout_sources=holdout_sources,
        markers=markers,
        command=command,
        repo_root=REPO_ROOT,
        log=log,
    )
    dev_predictions = write_dev_predictions(Path(report.model_path), dev_path)
    write_after_training(report.source_holdout, train_path, dev_path, Path(report.model_path))
    return report, dev_predictions


def card_section(evaluation: Evaluation, data_name: str, model_name: str) -> str:
    """Return the markdown section `analyzer evaluate --card` writes for one labeled file."""
    speed = (
        "" if evaluation.mb_per_second is None else f" Speed {evaluation.mb_per_second:.1f} MB/s, one core."
    )
    return (
        f"## Evaluation on `{data_name}`\n\n"
        f"Model `{model_name}` (version `{evaluation.model_version}`), {evaluation.n_docs} documents, "
        f"written by `analyzer evaluate`.\n\n"
        f"{evaluation_tables(evaluation)}\n\n"
        f"Top-label ECE {evaluation.ece:.4f} (15 bins), NLL {evaluation.nll:.4f}.{speed}\n"
    )


def write_card_section(card: Path, data_name: str, section: str) -> None:
    """Put `section` into the card between markers keyed by `data_name`, replacing an older one.

    The card is created if missing; everything outside the markers is kept as it is.
    """
    start, end = f"<!-- evaluate:{data_name} -->", f"<!-- /evaluate:{data_name} -->"
    block = f"{start}\n{section}{end}\n"
    try:
        text = card.read_text(encoding="utf-8") if card.is_file() else ""
        if start in text and end in text:
            before, rest = text.split(start, 1)
            after = rest.split(end, 1)[1].lstrip("\n")
            text = before + block + after
        else:
            text = text.rstrip("\n") + ("\n\n" if text else "") + block
        card.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--card {card} cannot be written ({exc.strerror or exc})") from exc
