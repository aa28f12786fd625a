"""`python -m analyzer.training`: the full recipe that builds `classifiers/domain-v1.*`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.config import DEFAULT_LABELED_DIR, REPO_ROOT
from analyzer.errors import AnalyzerError
from analyzer.training.dev_predictions import write_dev_predictions
from analyzer.training.source_shift_rows import write_after_training
from analyzer.training.train import build_classifier


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse command-line options; every default reproduces the shipped model."""
    parser = argparse.ArgumentParser(prog="python -m analyzer.training", description=__doc__)
    parser.add_argument("--train", type=Path, default=DEFAULT_LABELED_DIR / "train.jsonl.gz")
    parser.add_argument("--dev", type=Path, default=DEFAULT_LABELED_DIR / "dev.jsonl.gz")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "classifiers")
    parser.add_argument("--name", default="domain-v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="grid points trained in parallel")
    parser.add_argument(
        "--no-source-holdout",
        dest="source_holdout",
        action="store_false",
        help="skip the leave-one-source-out scores of the card (one training per source)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and document the domain classifier; return the process exit code."""
    args = parse_args(argv)
    command = "python -m analyzer.training" + (" " + " ".join(argv) if argv else "")
    try:
        report = build_classifier(
            args.train,
            args.dev,
            args.out_dir,
            args.name,
            seed=args.seed,
            workers=args.workers,
            holdout_sources=args.source_holdout,
            command=command,
            repo_root=REPO_ROOT,
        )
        # the share correction (adjusted classify-and-count) needs the model's dev-set errors
        dev_predictions = write_dev_predictions(Path(report.model_path), Path(args.dev))
        # the intervals' source-shift term reads the leave-one-source-out misreadings
        write_after_training(report.source_holdout, args.train, args.dev, Path(report.model_path))
    except AnalyzerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    dev = report.dev
    assert dev is not None
    print(
        f"wrote {report.model_path} (dev macro-F1 {dev.macro_f1:.4f}, {dev.mb_per_second:.1f} MB/s) "
        f"in {report.seconds:.0f}s; dev predictions in {dev_predictions}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
