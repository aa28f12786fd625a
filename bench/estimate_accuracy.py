"""How accurate are the corrected shares and their intervals, judged by models that never saw the text?

Most documents of ../shared/data/corpus are also in the labeled train split, so the shipped model is
judged on text it trained on. This script cross-fits instead: the corpus is split in two folds by the
root original of each document (copies go with their original); for each fold, a model with the
shipped hyper-parameters is trained on train minus that fold's texts, its dev-set confusion is
measured, and the fold's documents are classified by it. Per fold (and pooled), it compares plain
classify-and-count and adjusted classify-and-count, with the run's cluster-bootstrap interval, to
the true token shares of truth.parquet, in full and with a 20% sample.

Usage: .venv/bin/python bench/estimate_accuracy.py [--data DIR] [--out JSON]   (make bench-estimates)
Needs a finished demo run for token counts (make demo). Takes a few minutes (two trainings).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq
import xxhash

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel
from analyzer.config import ReaderOptions, shipped_model_path
from analyzer.estimates.bootstrap import (
    acc_estimator,
    cc_estimator,
    cluster_bootstrap,
    cluster_totals,
    pacc_estimator,
    pcc_estimator,
    probability_cluster_totals,
    resample_confusion,
    resample_probabilistic_confusion,
)
from analyzer.estimates.corpus_shares import load_dev_predictions
from analyzer.estimates.quantification import probabilistic_confusion_totals, rates_from_counts
from analyzer.estimates.sampling import sample_mask
from analyzer.readers import read_shard
from analyzer.shards import resolve_shards
from analyzer.text_normalise import normalise_for_classifier
from analyzer.training.dev_predictions import write_dev_predictions
from analyzer.training.train import read_labeled

REPO = Path(__file__).resolve().parents[1]

BLOCK = 256
REPLICATES = 1000


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


def corpus_texts(data: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for shard in resolve_shards([str(data / "corpus" / "fineweb"), str(data / "corpus" / "dolma")]):
        for batch in read_shard(shard, ReaderOptions()):
            for row in batch.documents.select(["doc_id", "text"]).to_pylist():
                texts[row["doc_id"]] = row["text"]
    return texts


def train_fold_model(
    train_texts: list[str], train_labels: list[str], sidecar: dict[str, Any], work: Path
) -> Path:
    import fasttext

    params = sidecar["fasttext_params"]
    head = sidecar.get("head_chars")
    train_file = work / "train.txt"
    with train_file.open("w", encoding="utf-8") as handle:
        for text, label in zip(train_texts, train_labels, strict=True):
            handle.write(f"__label__{label} {normalise_for_classifier(text, head)}\n")
    model = fasttext.train_supervised(
        input=str(train_file),
        epoch=params["epoch"],
        lr=params["lr"],
        dim=params["dim"],
        wordNgrams=params["word_ngrams"],
        minn=params["minn"],
        maxn=params["maxn"],
        loss=params["loss"],
        bucket=params["bucket"],
        minCount=params["min_count"],
        thread=2,
        seed=0,
        verbose=0,
    )
    path = work / "fold.bin"
    model.save_model(str(path))
    (work / "fold.json").write_text(
        json.dumps({"name": "fold", "labels": list(DOMAINS), "temperature": 1.0, "head_chars": head})
    )
    return path


def estimate(
    tokens: np.ndarray, probabilities: np.ndarray, blocks: np.ndarray, dev_path: Path, seed: int = 0
) -> dict[str, np.ndarray]:
    """CC, ACC, PCC and PACC point estimates and cluster-bootstrap intervals for one set of documents."""
    _, dense = np.unique(blocks, return_inverse=True)
    n_clusters = int(dense.max()) + 1
    predicted = probabilities.argmax(axis=1)
    totals = cluster_totals(dense, predicted, tokens, n_clusters, len(DOMAINS))
    probability_totals = probability_cluster_totals(dense, probabilities, tokens, n_clusters)
    dev = load_dev_predictions(dev_path)
    dev_probabilities = pq.read_table(dev_path).select([f"p_{d}" for d in DOMAINS]).to_pandas().to_numpy()
    pacc_matrix = rates_from_counts(
        probabilistic_confusion_totals(dev.true_index, dev_probabilities, dev.weights)
    )
    runs = {
        "cc": cluster_bootstrap(totals, cc_estimator, n_replicates=REPLICATES, seed=seed),
        "acc": cluster_bootstrap(
            totals,
            acc_estimator(dev.confusion()),
            confusions=resample_confusion(dev.true_index, dev.predicted_index, dev.weights, REPLICATES, seed),
            n_replicates=REPLICATES,
            seed=seed,
        ),
        "pcc": cluster_bootstrap(
            totals, pcc_estimator, probability_totals=probability_totals, n_replicates=REPLICATES, seed=seed
        ),
        "pacc": cluster_bootstrap(
            totals,
            pacc_estimator(pacc_matrix),
            probability_totals=probability_totals,
            confusions=resample_probabilistic_confusion(
                dev.true_index, dev_probabilities, dev.weights, REPLICATES, seed
            ),
            n_replicates=REPLICATES,
            seed=seed,
        ),
    }
    result: dict[str, np.ndarray] = {}
    for name, interval in runs.items():
        result[name], result[f"{name}_lo"], result[f"{name}_hi"] = interval.point, interval.lo, interval.hi
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "demo" / "analysis.duckdb")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "estimate_accuracy.json")
    args = parser.parse_args()
    started = time.perf_counter()
    with duckdb.connect(str(args.run), read_only=True) as db:
        rows = db.execute(
            """
            SELECT d.doc_id, d.shard, d.row_index, d.n_tokens, t.label, coalesce(t.dup_of, t.id) AS root
            FROM documents d JOIN read_parquet($truth) t ON t.id = d.doc_id
            ORDER BY d.doc_seq
            """,
            {"truth": str(args.data / "corpus" / "truth.parquet")},
        ).fetchall()
    texts = corpus_texts(args.data)
    doc_ids = [r[0] for r in rows]
    shard_codes = {name: i for i, name in enumerate(sorted({r[1] for r in rows}))}
    blocks = np.array([shard_codes[r[1]] * 100_000 + r[2] // BLOCK for r in rows], dtype=np.int64)
    tokens = np.array([r[3] for r in rows], dtype=np.float64)
    truth = np.array([DOMAINS.index(r[4]) for r in rows], dtype=np.int64)
    fold = np.array([xxhash.xxh3_64_intdigest(r[5].encode()) % 2 for r in rows], dtype=np.int64)
    sampled = sample_mask(doc_ids, 0.2, seed=0)

    train = read_labeled(args.data / "labeled" / "train.jsonl.gz")
    sidecar = json.loads(shipped_model_path().with_suffix(".json").read_text())
    probabilities = np.zeros((len(rows), len(DOMAINS)), dtype=np.float64)
    report: dict[str, Any] = {"block_size": BLOCK, "replicates": REPLICATES, "folds": {}}
    for k in (0, 1):
        fold_keys = {text_key(texts[doc_ids[i]]) for i in np.flatnonzero(fold == k)}
        keep = [i for i, text in enumerate(train.texts) if text_key(text) not in fold_keys]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model_path = train_fold_model(
                [train.texts[i] for i in keep], [train.labels[i] for i in keep], sidecar, work
            )
            dev_path = write_dev_predictions(
                model_path, args.data / "labeled" / "dev.jsonl.gz", work / "dev.parquet"
            )
            members = np.flatnonzero(fold == k)
            probabilities[members] = DomainModel.load(model_path).predict_proba(
                [texts[doc_ids[i]] for i in members]
            )
            fold_report: dict[str, Any] = {
                "train_docs_used": len(keep),
                "train_docs_excluded": len(train.texts) - len(keep),
            }
            for design, mask in (("full", fold == k), ("sample_0.2", (fold == k) & sampled)):
                chosen = np.flatnonzero(mask)
                true_share = (
                    np.bincount(truth[chosen], weights=tokens[chosen], minlength=5) / tokens[chosen].sum()
                )
                result = estimate(tokens[chosen], probabilities[chosen], blocks[chosen], dev_path)
                fold_report[design] = {
                    "docs": int(chosen.size),
                    "domains": {
                        label: {
                            "truth": float(true_share[j]),
                            **{name: float(values[j]) for name, values in result.items()},
                        }
                        for j, label in enumerate(DOMAINS)
                    },
                }
            report["folds"][str(k)] = fold_report
    report["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    methods = ("cc", "acc", "pcc", "pacc")
    print(
        f"{'fold':<5}{'design':<12}{'domain':<9}{'truth':>7}"
        + "".join(f"{m + ' err':>10}{'±':>6}" for m in methods)
    )
    for k, fold_report in report["folds"].items():
        for design in ("full", "sample_0.2"):
            for label, v in fold_report[design]["domains"].items():
                cells = ""
                for m in methods:
                    covered = "" if v[f"{m}_lo"] <= v["truth"] <= v[f"{m}_hi"] else "!"
                    half_width = 50 * (v[f"{m}_hi"] - v[f"{m}_lo"])
                    cells += f"{100 * (v[m] - v['truth']):+9.2f}{covered:1}{half_width:6.2f}"
                print(f"{k:<5}{design:<12}{label:<9}{v['truth']:7.4f}{cells}")
    print("err = estimate - truth in points; ± = half-width of the 95% interval; ! = interval misses truth")


if __name__ == "__main__":
    sys.exit(main())
