"""How far off are the share estimators on a corpus made of sources the classifier never saw?

`make bench-estimates` cross-fits on the shared corpus, but every source of that corpus is also in
the training data; a user's corpus is made of other sources. This bench reuses leave-one-source-out
(analyzer/training/source_holdout.py, the shipped model's settings and training recipe read from its
sidecar): every labeled document (train + dev) is read by a model trained on all other sources. Its
probabilities are calibrated with the shipped model's temperature (these models have no dev set of
their own) and re-expressed for one common training prior, the mean of theirs (Bayes:
p_k <- p_k prior_k / model_prior_k, renormalised), so that EMQ has one prior to correct from.

Simulated corpora: each of DRAWS draws keeps every held-out source with probability 1/2 (at least
one source per domain) and weighs each kept document by its bytes x (target share of its label /
its label's share of the kept bytes), so the corpus's label mix is the shared corpus's (truth.parquet,
by characters): a web corpus's mix, made only of text from sources its reader never saw. Per draw,
cc, pcc, emq and mid (the midpoint of cc and emq, the default) are compared with the truth (byte shares,
points), with the input-level intervals of analyzer.estimates.intervals.estimate_shares (clusters:
BLOCK consecutive documents of one source; every document read, f = 1); acc and pacc need a dev set
these models lack. mid and `cc+shift` (cc) carry the source-shift term
(analyzer/estimates/source_shift.py) as a run adds it, nested: its misreading rows and unseen
unsure share come only from the held-out sources outside the draw's corpus, its familiar unsure
share from the shipped model's dev set.
Writes per estimator and domain the mean error, rms, max |error|, the fraction
within +-0.5 and +-1 point, interval coverage and mean half-width.

Usage: .venv/bin/python bench/estimates_unseen_sources.py [--data DIR] [--out JSON] [--cache NPZ]
(make bench-estimates-unseen). The leave-one-source-out trainings take about 10 minutes on 2 cores;
--cache keeps their probabilities so a rerun only simulates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer import DOMAINS  # noqa: E402
from analyzer.classifier_model import apply_temperature, read_sidecar, sidecar_path_for  # noqa: E402
from analyzer.config import shipped_model_path  # noqa: E402
from analyzer.estimates.dev_predictions import dev_predictions_path_for, load_dev_predictions  # noqa: E402
from analyzer.estimates.intervals import estimate_shares  # noqa: E402
from analyzer.estimates.source_shift import source_shift_from_predictions, unsure_share_and_error  # noqa: E402
from analyzer.training.data import read_labeled  # noqa: E402
from analyzer.training.train import pooled_data, recipe_holdout, recipe_of  # noqa: E402

DRAWS = 200
BLOCK = 64
REPLICATES = 300
ESTIMATORS = ("cc", "pcc", "emq", "mid", "cc+shift")
SHIFTED = {"cc+shift": "cc", "mid": "mid"}
"""Estimators whose intervals add the source-shift term (analyzer/estimates/source_shift.py), built
per draw from the held-out sources outside the corpus only (nested: no corpus source sizes it)."""


def leave_one_source_out(data_dir: Path, workers: int) -> dict[str, np.ndarray]:
    """Probabilities of every labeled document from the model that never saw its source, with its
    label, source, bytes and the training prior of that model."""
    model_path = shipped_model_path()
    shipped = recipe_of(model_path)
    data = pooled_data(read_labeled(data_dir / "train.jsonl.gz"), read_labeled(data_dir / "dev.jsonl.gz"))
    holdout = recipe_holdout(
        data,
        shipped.params,
        shipped.view,
        shipped.training_set,
        workers=workers,
        log=lambda message: print(message, flush=True),
    )
    sources = np.array(data.sources)
    priors = np.full((len(sources), len(DOMAINS)), np.nan)
    for source, prior in holdout.training_priors.items():
        priors[sources == source] = prior
    return {
        "probabilities": holdout.probabilities,
        "model_priors": priors,
        "labels": np.array([DOMAINS.index(label) for label in data.labels]),
        "sources": sources,
        "n_bytes": np.array([len(text.encode("utf-8")) for text in data.texts], dtype=np.float64),
        "temperature": np.array(read_sidecar(sidecar_path_for(model_path), model_path).temperature),
    }


def target_mix(truth_path: Path) -> np.ndarray:
    """The shared corpus's label mix by characters (DOMAINS order)."""
    table = pq.read_table(truth_path, columns=["label", "n_chars"]).to_pydict()
    totals = np.zeros(len(DOMAINS))
    for label, chars in zip(table["label"], table["n_chars"], strict=True):
        totals[DOMAINS.index(label)] += chars
    mix: np.ndarray = totals / totals.sum()
    return mix


def common_prior_posteriors(
    probabilities: np.ndarray, model_priors: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """(posteriors for the common prior, that prior): calibrated, then moved from each document's
    model prior to the mean of the models' priors."""
    prior = model_priors.mean(axis=0)
    prior = prior / prior.sum()
    calibrated = apply_temperature(probabilities, temperature)
    moved = calibrated * prior[None] / model_priors
    return moved / moved.sum(axis=1, keepdims=True), prior


def draw_corpus(
    rng: np.random.Generator, sources: np.ndarray, labels: np.ndarray, n_bytes: np.ndarray, mix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the kept documents, their weights): half the sources, reweighted to `mix`."""
    names = np.unique(sources)
    while True:
        kept_sources = names[rng.random(names.size) < 0.5]
        kept = np.flatnonzero(np.isin(sources, kept_sources))
        label_bytes = np.bincount(labels[kept], weights=n_bytes[kept], minlength=len(DOMAINS))
        if np.all(label_bytes > 0):
            break
    weights = n_bytes[kept] * (mix / label_bytes)[labels[kept]]
    return kept, weights


def blocks_of(sources: np.ndarray) -> np.ndarray:
    """Dense cluster ids: BLOCK consecutive documents of one source."""
    keys = np.zeros(sources.size, dtype=np.int64)
    codes = np.unique(sources, return_inverse=True)[1].reshape(-1)
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        keys[rows] = code * 1_000_000 + np.arange(rows.size) // BLOCK
    dense: np.ndarray = np.unique(keys, return_inverse=True)[1].reshape(-1)
    return dense


def simulate(fit: dict[str, np.ndarray], mix: np.ndarray, draws: int) -> dict[str, Any]:
    held_out = ~np.isnan(fit["probabilities"]).any(axis=1)
    probabilities, model_priors = fit["probabilities"][held_out], fit["model_priors"][held_out]
    labels, sources, n_bytes = fit["labels"][held_out], fit["sources"][held_out], fit["n_bytes"][held_out]
    posteriors, prior = common_prior_posteriors(probabilities, model_priors, float(fit["temperature"]))
    dev = load_dev_predictions(dev_predictions_path_for(shipped_model_path()))
    familiar_unsure, familiar_error = unsure_share_and_error(dev.probabilities, dev.weights)
    rng = np.random.default_rng(0)
    unfamiliar: list[float] = []
    errors: dict[str, list[np.ndarray]] = {name: [] for name in ESTIMATORS}
    covered: dict[str, list[np.ndarray]] = {name: [] for name in ESTIMATORS}
    half_widths: dict[str, list[np.ndarray]] = {name: [] for name in covered}
    for draw in range(draws):
        kept, weights = draw_corpus(rng, sources, labels, n_bytes, mix)
        truth = np.bincount(labels[kept], weights=weights, minlength=len(DOMAINS)) / weights.sum()
        outside = np.flatnonzero(~np.isin(sources, np.unique(sources[kept])))
        shift = source_shift_from_predictions(
            labels[outside],
            sources[outside],
            n_bytes[outside],
            posteriors[outside],
            familiar_unsure,
            familiar_error,
        )
        points = {}
        for name in covered:
            estimate = estimate_shares(
                blocks_of(sources[kept]),
                weights,
                posteriors[kept],
                SHIFTED.get(name, name),
                training_prior=prior,
                source_shift=shift if name in SHIFTED else None,
                replicates=REPLICATES,
                seed=draw,
            )
            points[name] = estimate.point
            if name == "cc+shift":
                unfamiliar.append(estimate.unfamiliar_fraction)
            covered[name].append((estimate.input_lo <= truth) & (truth <= estimate.input_hi))
            half_widths[name].append((estimate.input_hi - estimate.input_lo) / 2)
        for name in ESTIMATORS:
            errors[name].append(100 * (points[name] - truth))
    summary: dict[str, Any] = {}
    for name in ESTIMATORS:
        error = np.array(errors[name])
        per_domain = {}
        for k, domain in enumerate(DOMAINS):
            cell = {
                "mean_error": float(error[:, k].mean()),
                "rms_error": float(np.sqrt((error[:, k] ** 2).mean())),
                "max_abs_error": float(np.abs(error[:, k]).max()),
                "within_0.5": float((np.abs(error[:, k]) <= 0.5).mean()),
                "within_1": float((np.abs(error[:, k]) <= 1.0).mean()),
            }
            if name in covered:
                cell["coverage"] = float(np.array(covered[name])[:, k].mean())
                cell["mean_half_width"] = float(100 * np.array(half_widths[name])[:, k].mean())
            per_domain[domain] = cell
        summary[name] = {
            "domains": per_domain,
            "rms_error_worst_domain": max(cell["rms_error"] for cell in per_domain.values()),
            "all_within_0.5": float((np.abs(error) <= 0.5).all(axis=1).mean()),
            "all_within_1": float((np.abs(error) <= 1.0).all(axis=1).mean()),
        }
        if name in covered:
            summary[name]["all_covered"] = float(np.array(covered[name]).all(axis=1).mean())
    return {
        "common_prior": prior.tolist(),
        "held_out_documents": int(held_out.sum()),
        "familiar_unsure_share": familiar_unsure,
        "unfamiliar_fraction": {
            "mean": float(np.mean(unfamiliar)),
            "min": float(np.min(unfamiliar)),
            "max": float(np.max(unfamiliar)),
        },
        "estimators": summary,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "estimates_unseen_sources.json"
    )
    parser.add_argument(
        "--cache", type=Path, help="npz of the leave-one-source-out probabilities (read or written)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=DRAWS)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.cache is not None and args.cache.is_file():
        fit = dict(np.load(args.cache))
    else:
        fit = leave_one_source_out(args.data / "labeled", args.workers)
        if args.cache is not None:
            np.savez(args.cache, **fit)
    mix = target_mix(args.data / "corpus" / "truth.parquet")
    report = {"draws": args.draws, "block": BLOCK, "replicates": REPLICATES, "target_mix": mix.tolist()}
    report.update(simulate(fit, mix, args.draws))
    report["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    columns = ("mean err", "rms", "max", "<=0.5", "<=1", "cover", "±")
    print(f"{'estimator':<9} {'domain':<8} " + " ".join(f"{column:>8}" for column in columns))
    for name, result in report["estimators"].items():
        for domain, cell in result["domains"].items():
            values = [
                cell[key] for key in ("mean_error", "rms_error", "max_abs_error", "within_0.5", "within_1")
            ]
            values += [cell[key] for key in ("coverage", "mean_half_width") if key in cell]
            print(f"{name:<9} {domain:<8} " + " ".join(f"{value:8.2f}" for value in values))
        totals = f"all within 0.5: {result['all_within_0.5']:.2f}, within 1: {result['all_within_1']:.2f}"
        if "all_covered" in result:
            totals += f", all covered: {result['all_covered']:.2f}"
        print(f"{name:<9} {totals}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
