"""How accurate are the corrected shares and their intervals, judged by models that never saw the text?

Most documents of ../shared/data/corpus are also in the labeled train split, so the shipped model is
judged on text it trained on. This script cross-fits instead: the corpus is split in two folds by the
root original of each document (copies go with their original); for each fold, a model with the
shipped hyper-parameters is trained on train minus that fold's texts, its dev-set confusion is
measured, and the fold's documents are classified by it. Every estimator (cc, acc, pcc, pacc, emq)
with the run's intervals (analyzer.estimates.corpus_shares.estimate_shares) is compared with the
true token shares of truth.parquet:
- `full`: each half read whole (sampling fraction 1: the input-level interval is the classifier's
  own error only);
- `pooled`: the whole corpus, each document classified by the model that never saw it (the dev
  predictions and training prior of fold 0 stand for both fold models);
- `sample_0.2`: a 20% hash sample of each half, seeds 0..SEEDS-1, weighted like a sampled run and
  judged against the truth of the whole half (the input it estimates), with the sampled documents'
  own truth also reported (`truth_sampled`: the classifier-only part of the error).

Usage: .venv/bin/python bench/estimate_accuracy.py [--data DIR] [--out JSON] [--cache NPZ]
(make bench-estimates). Needs a finished demo run for token counts (make demo). Takes a few minutes
(two trainings); --cache keeps the cross-fitted probabilities so a rerun skips the training.
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
import xxhash

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel
from analyzer.config import ReaderOptions, shipped_model_path
from analyzer.estimates.corpus_shares import (
    ESTIMATORS,
    DevPredictions,
    estimate_shares,
    load_dev_predictions,
)
from analyzer.estimates.sampling import sample_mask
from analyzer.readers import read_shard
from analyzer.shards import resolve_shards
from analyzer.text_normalise import normalise_for_classifier
from analyzer.training.dev_predictions import write_dev_predictions
from analyzer.training.train import read_labeled

REPO = Path(__file__).resolve().parents[1]

BLOCK = 256
REPLICATES = 1000
SEEDS = 5
RATE = 0.2


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


def estimate_all(
    tokens: np.ndarray,
    probabilities: np.ndarray,
    blocks: np.ndarray,
    dev: DevPredictions,
    prior: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every estimator's point, input-level and corpus-level bounds for one set of documents."""
    _, dense = np.unique(blocks, return_inverse=True)
    weights = tokens if sample_weight is None else tokens * sample_weight
    fraction = float(tokens.sum() / weights.sum())
    result: dict[str, np.ndarray] = {}
    for name in ESTIMATORS:
        e = estimate_shares(
            dense.reshape(-1),
            weights,
            probabilities,
            name,
            dev=dev,
            training_prior=prior,
            sampling_fraction=fraction,
            replicates=REPLICATES,
        )
        result[name], result[f"{name}_lo"], result[f"{name}_hi"] = e.point, e.input_lo, e.input_hi
        result[f"{name}_corpus_lo"], result[f"{name}_corpus_hi"] = e.corpus_lo, e.corpus_hi
    return result


def shares(labels: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.bincount(labels, weights=tokens, minlength=len(DOMAINS)) / tokens.sum()
    return out


def cross_fit(data: Path, rows: list[tuple[Any, ...]], fold: np.ndarray) -> dict[str, Any]:
    """Probabilities of every document from the fold model that never saw it, with dev and prior."""
    texts = corpus_texts(data)
    doc_ids = [r[0] for r in rows]
    train = read_labeled(data / "labeled" / "train.jsonl.gz")
    sidecar = json.loads(shipped_model_path().with_suffix(".json").read_text())
    probabilities = np.zeros((len(rows), len(DOMAINS)), dtype=np.float64)
    out: dict[str, Any] = {}
    for k in (0, 1):
        fold_keys = {text_key(texts[doc_ids[i]]) for i in np.flatnonzero(fold == k)}
        keep = [i for i, text in enumerate(train.texts) if text_key(text) not in fold_keys]
        labels = [train.labels[i] for i in keep]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model_path = train_fold_model([train.texts[i] for i in keep], labels, sidecar, work)
            dev_path = write_dev_predictions(
                model_path, data / "labeled" / "dev.jsonl.gz", work / "dev.parquet"
            )
            members = np.flatnonzero(fold == k)
            probabilities[members] = DomainModel.load(model_path).predict_proba(
                [texts[doc_ids[i]] for i in members]
            )
            dev = load_dev_predictions(dev_path)
        counts = np.array([labels.count(label) for label in DOMAINS], dtype=np.float64)
        out[f"dev{k}_true"], out[f"dev{k}_pred"] = dev.true_index, dev.predicted_index
        out[f"dev{k}_weights"], out[f"dev{k}_probs"] = dev.weights, dev.probabilities
        out[f"prior{k}"] = counts / counts.sum()
        out[f"train{k}"] = np.array([len(keep), len(train.texts) - len(keep)])
    out["probabilities"] = probabilities
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "demo" / "analysis.duckdb")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "estimate_accuracy.json")
    parser.add_argument("--cache", type=Path, help="npz of the cross-fitted probabilities (read or written)")
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
    doc_ids = [r[0] for r in rows]
    shard_codes = {name: i for i, name in enumerate(sorted({r[1] for r in rows}))}
    shard = np.array([shard_codes[r[1]] for r in rows], dtype=np.int64)
    blocks = np.array([shard_codes[r[1]] * 100_000 + r[2] // BLOCK for r in rows], dtype=np.int64)
    tokens = np.array([r[3] for r in rows], dtype=np.float64)
    truth = np.array([DOMAINS.index(r[4]) for r in rows], dtype=np.int64)
    fold = np.array([xxhash.xxh3_64_intdigest(r[5].encode()) % 2 for r in rows], dtype=np.int64)

    if args.cache is not None and args.cache.is_file():
        fit = dict(np.load(args.cache))
    else:
        fit = cross_fit(args.data, rows, fold)
        if args.cache is not None:
            np.savez(args.cache, **fit)
    probabilities = fit["probabilities"]
    devs = {
        k: DevPredictions(
            fit[f"dev{k}_true"], fit[f"dev{k}_pred"], fit[f"dev{k}_weights"], fit[f"dev{k}_probs"]
        )
        for k in (0, 1)
    }

    def judge(
        mask: np.ndarray, k: int, truth_share: np.ndarray, weight: np.ndarray | None = None
    ) -> dict[str, Any]:
        chosen = np.flatnonzero(mask)
        sw = None if weight is None else weight[chosen]
        result = estimate_all(
            tokens[chosen], probabilities[chosen], blocks[chosen], devs[k], fit[f"prior{k}"], sw
        )
        sampled_truth = shares(truth[chosen], tokens[chosen])
        return {
            "docs": int(chosen.size),
            "sampling_fraction": float(
                tokens[chosen].sum() / (tokens[chosen] * (1 if sw is None else sw)).sum()
            ),
            "domains": {
                label: {
                    "truth": float(truth_share[j]),
                    "truth_sampled": float(sampled_truth[j]),
                    **{name: float(values[j]) for name, values in result.items()},
                }
                for j, label in enumerate(DOMAINS)
            },
        }

    report: dict[str, Any] = {
        "block_size": BLOCK,
        "replicates": REPLICATES,
        "sample_rate": RATE,
        "estimators": list(ESTIMATORS),
        "folds": {},
    }
    for k in (0, 1):
        in_fold = fold == k
        full_truth = shares(truth[in_fold], tokens[in_fold])
        fold_report: dict[str, Any] = {
            "train_docs_used": int(fit[f"train{k}"][0]),
            "train_docs_excluded": int(fit[f"train{k}"][1]),
            "training_prior": [float(x) for x in fit[f"prior{k}"]],
            "full": judge(in_fold, k, full_truth),
        }
        for seed in range(SEEDS):
            sampled = in_fold & sample_mask(doc_ids, RATE, seed=seed)
            # a sampled run weights each tagged document by (tagged + sampled out) / tagged of its shard
            weight = np.ones(len(rows))
            for code in np.unique(shard[in_fold]):
                members = in_fold & (shard == code)
                weight[members] = members.sum() / max(int((sampled & members).sum()), 1)
            fold_report[f"sample_{RATE}_seed{seed}"] = judge(sampled, k, full_truth, weight)
        report["folds"][str(k)] = fold_report
    everything = np.ones(len(rows), dtype=bool)
    all_truth = shares(truth, tokens)
    report["pooled"] = {"full": judge(everything, 0, all_truth)}
    for seed in range(SEEDS):
        sampled = sample_mask(doc_ids, RATE, seed=seed)
        weight = np.ones(len(rows))
        for code in np.unique(shard):
            members = shard == code
            weight[members] = members.sum() / max(int((sampled & members).sum()), 1)
        report["pooled"][f"sample_{RATE}_seed{seed}"] = judge(sampled, 0, all_truth, weight)
    report["summary"] = summarise(report)
    report["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def designs(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = [("pooled", name, value) for name, value in report["pooled"].items()]
    for k, fold_report in report["folds"].items():
        out += [
            (k, name, value)
            for name, value in fold_report.items()
            if isinstance(value, dict) and "domains" in value
        ]
    return out


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Per estimator and kind of design: worst and mean |error|, coverage, widest half-width (points)."""
    summary: dict[str, Any] = {}
    for name in report["estimators"]:
        per_kind: dict[str, Any] = {}
        for scope, kind in (
            ("halves", "full"),
            ("halves", "sample"),
            ("pooled", "full"),
            ("pooled", "sample"),
        ):
            errors, sampled_errors, covered, corpus_covered, half = [], [], [], [], []
            for k, design, value in designs(report):
                if not design.startswith(kind) or (k == "pooled") != (scope == "pooled"):
                    continue
                for v in value["domains"].values():
                    errors.append(100 * (v[name] - v["truth"]))
                    sampled_errors.append(100 * (v[name] - v["truth_sampled"]))
                    covered.append(v[f"{name}_lo"] <= v["truth"] <= v[f"{name}_hi"])
                    corpus_covered.append(v[f"{name}_corpus_lo"] <= v["truth"] <= v[f"{name}_corpus_hi"])
                    half.append(50 * (v[f"{name}_hi"] - v[f"{name}_lo"]))
            per_kind[f"{scope} {kind}"] = {
                "max_abs_error": float(np.max(np.abs(errors))),
                "mean_abs_error": float(np.mean(np.abs(errors))),
                "max_abs_error_vs_sampled_truth": float(np.max(np.abs(sampled_errors))),
                "within_0.5": float(np.mean(np.abs(errors) <= 0.5)),
                "within_1": float(np.mean(np.abs(errors) <= 1.0)),
                "coverage": float(np.mean(covered)),
                "corpus_interval_coverage": float(np.mean(corpus_covered)),
                "max_half_width": float(np.max(half)),
                "mean_half_width": float(np.mean(half)),
            }
        summary[name] = per_kind
    return summary


def print_report(report: dict[str, Any]) -> None:
    methods = report["estimators"]
    print(
        f"{'fold':<7}{'design':<17}{'domain':<9}{'truth':>7}"
        + "".join(f"{m + ' err':>10}{'±':>6}" for m in methods)
    )
    for k, design, value in designs(report):
        for label, v in value["domains"].items():
            cells = ""
            for m in methods:
                covered = "" if v[f"{m}_lo"] <= v["truth"] <= v[f"{m}_hi"] else "!"
                half_width = 50 * (v[f"{m}_hi"] - v[f"{m}_lo"])
                cells += f"{100 * (v[m] - v['truth']):+9.2f}{covered:1}{half_width:6.2f}"
            print(f"{k:<7}{design:<17}{label:<9}{v['truth']:7.4f}{cells}")
    print("err = estimate - truth (of the whole input) in points; ± = half-width of the 95% input-level")
    print("interval; ! = interval misses truth")
    print(
        f"{'estimator':<10}{'kind':<15}{'max|err|':>9}{'mean|err|':>10}{'≤0.5':>6}{'≤1':>6}{'cover':>7}{'cover(c)':>9}{'max±':>6}"
    )
    for name, kinds in report["summary"].items():
        for kind, s in kinds.items():
            print(
                f"{name:<10}{kind:<15}{s['max_abs_error']:9.2f}{s['mean_abs_error']:10.2f}{s['within_0.5']:6.2f}"
                f"{s['within_1']:6.2f}{s['coverage']:7.2f}{s['corpus_interval_coverage']:9.2f}{s['max_half_width']:6.2f}"
            )


if __name__ == "__main__":
    sys.exit(main())
