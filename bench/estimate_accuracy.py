"""How accurate are the corrected shares and their intervals, judged by models that never saw the text?

Most documents of ../shared/data/corpus are also in the labeled train split, so the shipped model is
judged on text it trained on. This script cross-fits instead: the corpus is split in two folds by the
root original of each document (copies go with their original); for each fold, a model with the
shipped hyper-parameters is trained on train minus that fold's texts and calibrated like the shipped
one (a temperature fitted on dev), its dev-set predictions are kept, and the fold's documents are
classified by it. Every estimator (cc, acc, pcc, pacc, emq)
with the run's intervals (analyzer.estimates.intervals.estimate_shares) is compared with the
true token shares of truth.parquet:
- `full`: each half read whole (sampling fraction 1: the input-level interval is the classifier's
  own error only);
- `pooled`: the whole corpus, each document classified by the model that never saw it (the dev
  predictions and training prior of fold 0 stand for both fold models);
- `sample_<design>_seed<s>`: `--sample-rate 0.2` under each sampling design of DESIGNS (the plain
  Bernoulli sample of documents, the size-aware `pps` one of analyzer/sampler.py at two size units,
  a take-all stratum of long documents; plus Bernoulli at 0.7, which tags about the bytes the default
  pps does, for a comparison at equal cost), seeds 0..SEEDS-1, of each half and of the whole corpus,
  weighted like a sampled run (1/pi calibrated to each shard's documents, sql/04_documents.sql) and
  judged against the truth of the whole input it estimates, with the sampled documents' own weighted
  truth also reported (`truth_sampled`: what a perfect classifier would estimate from them), the
  design's f (`sampling_fraction`) and the fractions of the input's tokens and bytes tagged;
- `sampling_only`: the design alone, over SIM_SEEDS seeds: how far the weighted true token shares of
  the sampled documents fall from the input's (rms and max, points), no classifier involved.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import xxhash

from analyzer import DOMAINS
from analyzer.classifier_model import (
    DomainModel,
    Sidecar,
)
from analyzer.config import ReaderOptions, shipped_model_path
from analyzer.estimates.dev_predictions import DevPredictions, load_dev_predictions
from analyzer.estimates.intervals import ESTIMATORS, estimate_shares
from analyzer.estimates.quantification import expectation_maximisation_shares
from analyzer.estimates.sampling import sample_mask
from analyzer.estimates.source_shift import (
    SourceShift,
    load_source_shift,
    source_shift_path_for,
    unsure_share_and_error,
)
from analyzer.readers import read_shard
from analyzer.sampler import (
    DEFAULT_SIZE_UNIT,
    design_sampling_fraction,
    inclusion_mask,
    inclusion_probabilities,
)
from analyzer.shards import resolve_shards
from analyzer.training.data import LabeledData, read_labeled, write_training_file
from analyzer.training.dev_predictions import write_dev_predictions
from analyzer.training.train import (
    ModelRecipe,
    fit_temperature,
    recipe_of,
    train_fasttext,
    view_training_set,
    write_sidecar,
)

REPO = Path(__file__).resolve().parents[1]

BLOCK = 256
REPLICATES = 1000
SEEDS = 5
SIM_SEEDS = 200
RATE = 0.2
TAKE_ALL_BYTES = 4000
CLASSIFY_ALL = "classifyall"
"""`--classify-all` over the Bernoulli sample: weights calibrated to the predicted domains' bytes."""


def design_probabilities(label: str, n_bytes: np.ndarray) -> np.ndarray:
    """pi per document of each design compared; `takeall` (bench only): F below a cutoff, 1 above."""
    if label.startswith("takeall"):
        return np.where(n_bytes > TAKE_ALL_BYTES, 1.0, RATE)
    if label.startswith(("bernoulli", CLASSIFY_ALL)):
        return inclusion_probabilities(n_bytes, float(label.split("_")[1]), "bernoulli")
    unit = int(label.split("_")[0].removeprefix("pps"))
    return inclusion_probabilities(n_bytes, RATE, "pps", unit)


# at --sample-rate 0.2: Bernoulli (the design before pps), pps with L0 = 1000 (default) and 2000 bytes,
# a take-all stratum above 4000 bytes; and Bernoulli at 0.7, which tags about the bytes pps1000 does
DESIGNS = (
    "bernoulli_0.2",
    f"pps{DEFAULT_SIZE_UNIT}_0.2",
    "pps2000_0.2",
    f"takeall{TAKE_ALL_BYTES}_0.2",
    "bernoulli_0.7",
    f"{CLASSIFY_ALL}_0.2",
)


def design_sample(
    label: str,
    doc_ids: list[str],
    n_bytes: np.ndarray,
    shard: np.ndarray,
    scope: np.ndarray,
    seed: int,
    predicted: np.ndarray,
    group: np.ndarray,
    calibration_size: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, sample weight) of the documents in `scope`, as a sampled run keeps and weights them.

    Kept as analyzer/sampler.py keeps; weight 1/pi times each shard's calibration (documents read /
    sum of 1/pi over the tagged), as sql/04_documents.sql weights; under `classifyall` 1/pi times
    X_c / sum(x / pi) over the tagged documents of cell c = (`group`, `predicted`: the dump or
    source, the judging model's top label), x the `calibration_size` and X_c its sum over the
    scope's cell, the bytes of a cell no tagged document holds spread over its domain's other cells
    and those of a domain none holds over all (sql/04_documents.sql with a census).
    """
    pi = design_probabilities(label, n_bytes)
    if label.startswith(("bernoulli", CLASSIFY_ALL)):
        kept = scope & sample_mask(doc_ids, float(pi[0]), seed=seed)
    else:
        kept = scope & inclusion_mask(doc_ids, pi, seed=seed)
    weight = np.ones(len(doc_ids))
    if label.startswith(CLASSIFY_ALL):
        covered_domains = 0.0
        for d in np.unique(predicted[scope]):
            domain_bytes, carried = n_bytes[scope & (predicted == d)].sum(), 0.0
            for g in np.unique(group[scope & (predicted == d)]):
                cell = scope & (predicted == d) & (group == g)
                tagged = kept & cell
                if tagged.any():
                    census = calibration_size[cell].sum()
                    weight[tagged] = census / (calibration_size[tagged] / pi[tagged]).sum() / pi[tagged]
                    carried += n_bytes[cell].sum()
            if carried > 0:
                weight[kept & (predicted == d)] *= domain_bytes / carried
                covered_domains += domain_bytes
        weight[kept] *= n_bytes[scope].sum() / covered_domains
        return kept, weight
    for code in np.unique(shard[scope]):
        members = scope & (shard == code)
        tagged = kept & members
        if tagged.any():
            weight[tagged] = members.sum() / (1.0 / pi[tagged]).sum() / pi[tagged]
    return kept, weight


def sampling_only(
    label: str,
    doc_ids: list[str],
    n_bytes: np.ndarray,
    shard: np.ndarray,
    truth: np.ndarray,
    tokens: np.ndarray,
    scope: np.ndarray,
    predicted: np.ndarray,
    group: np.ndarray,
    calibration_size: np.ndarray,
) -> dict[str, float]:
    """The design's own error: weighted true token shares of the sample vs the input's, SIM_SEEDS seeds
    (`predicted`, `group` and `calibration_size` only set `classifyall`'s weights)."""
    target = shares(truth[scope], tokens[scope])
    errors, tagged_bytes = [], []
    for seed in range(SIM_SEEDS):
        kept, weight = design_sample(
            label, doc_ids, n_bytes, shard, scope, seed, predicted, group, calibration_size
        )
        errors.append(100 * (shares(truth[kept], tokens[kept] * weight[kept]) - target))
        tagged_bytes.append(n_bytes[kept].sum() / n_bytes[scope].sum())
    e = np.array(errors)
    return {
        "rms_error_max_domain": float(np.sqrt((e**2).mean(axis=0)).max()),
        "max_abs_error": float(np.abs(e).max()),
        "max_abs_mean_error": float(np.abs(e.mean(axis=0)).max()),
        "bytes_tagged": float(np.mean(tagged_bytes)),
    }


def group_sampling(
    label: str,
    doc_ids: list[str],
    n_bytes: np.ndarray,
    shard: np.ndarray,
    tokens: np.ndarray,
    predicted: np.ndarray,
    group: np.ndarray,
    calibration_size: np.ndarray,
    probabilities: np.ndarray,
    prior: np.ndarray,
) -> dict[str, Any]:
    """What sampling adds to each dump's or source's token shares (the cross-fitted labels and
    posteriors), by cc and by mid (the midpoint of cc and EMQ, EMQ from `prior`): the sample's,
    weighted as the run weights them, against every document of the group tagged, over SIM_SEEDS
    seeds of the whole corpus; points, rms over seeds and domains per group (cc's figures unprefixed)."""
    everything = np.ones(len(doc_ids), dtype=bool)
    groups = np.unique(group)

    def group_shares(members: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        cc = shares(predicted[members], weights)
        emq, _ = expectation_maximisation_shares(probabilities[members], weights, prior)
        return {"cc": cc, "mid": (cc + emq) / 2}

    full = {g: group_shares(group == g, tokens[group == g]) for g in groups}
    squares = {name: np.zeros((len(groups), len(DOMAINS))) for name in ("cc", "mid")}
    for seed in range(SIM_SEEDS):
        kept, weight = design_sample(
            label, doc_ids, n_bytes, shard, everything, seed, predicted, group, calibration_size
        )
        for index, g in enumerate(groups):
            members = kept & (group == g)
            sampled = group_shares(members, tokens[members] * weight[members]) if members.any() else None
            for name, total in squares.items():
                # no document of the group drawn: the run reports no share for it
                reading = np.zeros(len(DOMAINS)) if sampled is None else sampled[name]
                total[index] += (100 * (reading - full[g][name])) ** 2
    out: dict[str, Any] = {}
    for name, total in squares.items():
        prefix = "" if name == "cc" else f"{name}_"
        per_group = np.sqrt(total.mean(axis=1) / SIM_SEEDS)
        out[f"{prefix}rms_difference_from_full_per_group"] = per_group.tolist()
        out[f"{prefix}rms_difference_from_full"] = float(np.sqrt((total / SIM_SEEDS).mean()))
        out[f"{prefix}worst_group_rms"] = float(per_group.max())
    return out


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
    train: LabeledData, keep: list[int], shipped: ModelRecipe, dev_path: Path, work: Path
) -> tuple[Path, float]:
    """A model with the shipped settings and training-set recipe, trained on `keep` only and
    calibrated as `make classifier` calibrates the shipped one (a temperature fitted on dev);
    returns its path and temperature."""
    params, recipe, view = shipped.params, shipped.training_set, shipped.view
    head = view.head
    train_file = work / "train.txt"
    write_training_file(*view_training_set(train, keep, view, recipe), train_file)
    # train_fasttext runs one thread: fastText is then deterministic, so reruns give the same folds
    model = train_fasttext(train_file, params, seed=0)
    path = work / "fold.bin"
    model.save_model(str(path))
    # the one sidecar writer, so the fold model is prepared exactly as the shipped one
    write_sidecar(path, Sidecar("fold", DOMAINS, 1.0, head, {}), params, 0, recipe, view.markers)
    uncalibrated = load_dev_predictions(
        write_dev_predictions(path, dev_path, work / "dev-uncalibrated.parquet")
    )
    temperature = fit_temperature(uncalibrated.probabilities, uncalibrated.true_index)
    write_sidecar(path, Sidecar("fold", DOMAINS, temperature, head, {}), params, 0, recipe, view.markers)
    return path, temperature


def estimate_all(
    tokens: np.ndarray,
    probabilities: np.ndarray,
    blocks: np.ndarray,
    dev: DevPredictions,
    prior: np.ndarray,
    sample_weight: np.ndarray | None = None,
    duplicate_sets: np.ndarray | None = None,
    stratum_weights: np.ndarray | None = None,
    source_shift: SourceShift | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Every estimator's point, input-level and corpus-level bounds for one set of documents
    (`duplicate_sets`: the run's near-duplicate cluster of each, for the label-noise term), and how
    unfamiliar the documents read to the model (the source-shift term's lambda, 0 without rows)."""
    _, dense = np.unique(blocks, return_inverse=True)
    weights = tokens if sample_weight is None else tokens * sample_weight
    fraction = (
        1.0
        if sample_weight is None
        else design_sampling_fraction(tokens, sample_weight, probabilities.argmax(axis=1))
    )
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
            duplicate_sets=duplicate_sets,
            stratum_weights=stratum_weights,
            sample_weights=sample_weight,
            source_shift=source_shift,
            replicates=REPLICATES,
        )
        result[name], result[f"{name}_lo"], result[f"{name}_hi"] = e.point, e.input_lo, e.input_hi
        result[f"{name}_corpus_lo"], result[f"{name}_corpus_hi"] = e.corpus_lo, e.corpus_hi
    return result, e.unfamiliar_fraction


def shares(labels: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.bincount(labels, weights=tokens, minlength=len(DOMAINS)) / tokens.sum()
    return out


def cross_fit(data: Path, rows: list[tuple[Any, ...]], fold: np.ndarray) -> dict[str, Any]:
    """Probabilities of every document from the fold model that never saw it, with dev and prior."""
    texts = corpus_texts(data)
    doc_ids = [r[0] for r in rows]
    train = read_labeled(data / "labeled" / "train.jsonl.gz")
    shipped = recipe_of(shipped_model_path())
    probabilities = np.zeros((len(rows), len(DOMAINS)), dtype=np.float64)
    out: dict[str, Any] = {}
    for k in (0, 1):
        fold_keys = {text_key(texts[doc_ids[i]]) for i in np.flatnonzero(fold == k)}
        keep = [i for i, text in enumerate(train.texts) if text_key(text) not in fold_keys]
        labels = [train.labels[i] for i in keep]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            dev_file = data / "labeled" / "dev.jsonl.gz"
            model_path, temperature = train_fold_model(train, keep, shipped, dev_file, work)
            dev_path = write_dev_predictions(model_path, dev_file, work / "dev.parquet")
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
        out[f"temperature{k}"] = np.array(temperature)
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
            SELECT d.doc_id, d.shard, d.row_index, d.n_tokens, t.label, coalesce(t.dup_of, t.id) AS root,
                d.n_bytes, d.cluster_id, coalesce(d.dump, '') || '|' || coalesce(d.source, '') AS dump_source,
                d.calibration_size
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
    n_bytes = np.array([r[6] for r in rows], dtype=np.float64)
    duplicate_sets = np.array([r[7] for r in rows], dtype=np.int64)
    # the groups a run reports (a dump or a Dolma source) and calibrates a census to
    group_names, group = np.unique(np.array([r[8] for r in rows]), return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    # what a census calibrates each document on (the run's choice: FineWeb's own token count, else bytes)
    calibration_size = np.array([r[9] for r in rows], dtype=np.float64)

    if args.cache is not None and args.cache.is_file():
        fit = dict(np.load(args.cache))
        if "temperature0" not in fit:
            sys.exit(
                f"{args.cache} holds uncalibrated fold models' probabilities (an older bench): delete it"
            )
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

    predicted = probabilities.argmax(axis=1)
    # the shipped model's leave-one-source-out rows, against each fold model's own dev confidence:
    # the corpus's sources are all in the training data, so lambda should read 0 (familiar)
    shipped_shift = load_source_shift(source_shift_path_for(shipped_model_path()))

    def fold_shift(dev: DevPredictions) -> SourceShift:
        share, error = unsure_share_and_error(dev.probabilities, dev.weights)
        return replace(shipped_shift, familiar_unsure_share=share, familiar_unsure_error=error)

    shifts = {k: fold_shift(dev) for k, dev in devs.items()}

    def judge(
        mask: np.ndarray,
        k: int,
        truth_share: np.ndarray,
        weight: np.ndarray | None = None,
        scope_all: np.ndarray | None = None,
        census: bool = False,
    ) -> dict[str, Any]:
        chosen = np.flatnonzero(mask)
        sw = None if weight is None else weight[chosen]
        result, unfamiliar = estimate_all(
            tokens[chosen],
            probabilities[chosen],
            blocks[chosen],
            devs[k],
            fit[f"prior{k}"],
            sw,
            duplicate_sets[chosen],
            # a census run's replicates are re-calibrated to its predicted domains' calibration sizes
            calibration_size[chosen] * sw if census and sw is not None else None,
            shifts[k],
        )
        # what a perfect classifier would estimate from these documents, weighted as the run weights them
        sampled_truth = shares(truth[chosen], tokens[chosen] * (1.0 if sw is None else sw))
        scope = np.flatnonzero(fold == k) if scope_all is None else scope_all
        return {
            "docs": int(chosen.size),
            "sampling_fraction": 1.0
            if sw is None
            else design_sampling_fraction(tokens[chosen], sw, probabilities[chosen].argmax(axis=1)),
            "tokens_tagged": float(tokens[chosen].sum() / tokens[scope].sum()),
            "bytes_tagged": float(n_bytes[chosen].sum() / n_bytes[scope].sum()),
            "unfamiliar_fraction": unfamiliar,
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
        "sample_designs": list(DESIGNS),
        "take_all_bytes": TAKE_ALL_BYTES,
        "sim_seeds": SIM_SEEDS,
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
            "temperature": float(fit[f"temperature{k}"]),
            "full": judge(in_fold, k, full_truth),
        }
        for label in DESIGNS:
            for seed in range(SEEDS):
                sampled, weight = design_sample(
                    label, doc_ids, n_bytes, shard, in_fold, seed, predicted, group, calibration_size
                )
                fold_report[f"sample_{label}_seed{seed}"] = judge(
                    sampled, k, full_truth, weight, census=label.startswith(CLASSIFY_ALL)
                )
        report["folds"][str(k)] = fold_report
    everything = np.ones(len(rows), dtype=bool)
    all_truth = shares(truth, tokens)
    every_index = np.arange(len(rows))
    report["pooled"] = {"full": judge(everything, 0, all_truth, scope_all=every_index)}
    for label in DESIGNS:
        for seed in range(SEEDS):
            sampled, weight = design_sample(
                label, doc_ids, n_bytes, shard, everything, seed, predicted, group, calibration_size
            )
            report["pooled"][f"sample_{label}_seed{seed}"] = judge(
                sampled, 0, all_truth, weight, scope_all=every_index, census=label.startswith(CLASSIFY_ALL)
            )
    report["sampling_only"] = {
        label: {
            scope_name: sampling_only(
                label, doc_ids, n_bytes, shard, truth, tokens, scope, predicted, group, calibration_size
            )
            for scope_name, scope in (("pooled", everything), ("half 0", fold == 0), ("half 1", fold == 1))
        }
        for label in DESIGNS
    }
    report["groups"] = {
        "names": [str(name) for name in group_names],
        "docs": np.bincount(group).tolist(),
        "designs": {
            label: group_sampling(
                label,
                doc_ids,
                n_bytes,
                shard,
                tokens,
                predicted,
                group,
                calibration_size,
                probabilities,
                fit["prior0"],
            )
            for label in DESIGNS
        },
    }
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
    full_runs = {k: value["domains"] for k, design, value in designs(report) if design == "full"}
    for name in report["estimators"]:
        per_kind: dict[str, Any] = {}
        kinds = ["full", *(f"sample_{label}_" for label in report["sample_designs"])]
        for scope, kind in [(scope, kind) for scope in ("halves", "pooled") for kind in kinds]:
            errors, sampled_errors, covered, corpus_covered, half, off_full = [], [], [], [], [], []
            tagged_bytes, fractions, unfamiliar = [], [], []
            for k, design, value in designs(report):
                if not design.startswith(kind) or (k == "pooled") != (scope == "pooled"):
                    continue
                tagged_bytes.append(value["bytes_tagged"])
                fractions.append(value["sampling_fraction"])
                unfamiliar.append(value["unfamiliar_fraction"])
                for label, v in value["domains"].items():
                    errors.append(100 * (v[name] - v["truth"]))
                    # what sampling adds: the same estimator with every document of the scope tagged
                    off_full.append(100 * (v[name] - full_runs[k][label][name]))
                    sampled_errors.append(100 * (v[name] - v["truth_sampled"]))
                    covered.append(v[f"{name}_lo"] <= v["truth"] <= v[f"{name}_hi"])
                    corpus_covered.append(v[f"{name}_corpus_lo"] <= v["truth"] <= v[f"{name}_corpus_hi"])
                    half.append(50 * (v[f"{name}_hi"] - v[f"{name}_lo"]))
            per_kind[f"{scope} {kind.removeprefix('sample_').rstrip('_')}"] = {
                "max_abs_error": float(np.max(np.abs(errors))),
                "mean_abs_error": float(np.mean(np.abs(errors))),
                "max_abs_error_vs_sampled_truth": float(np.max(np.abs(sampled_errors))),
                "rms_difference_from_full": float(np.sqrt(np.mean(np.square(off_full)))),
                "max_abs_difference_from_full": float(np.max(np.abs(off_full))),
                "within_0.5": float(np.mean(np.abs(errors) <= 0.5)),
                "within_1": float(np.mean(np.abs(errors) <= 1.0)),
                "coverage": float(np.mean(covered)),
                "corpus_interval_coverage": float(np.mean(corpus_covered)),
                "max_half_width": float(np.max(half)),
                "mean_half_width": float(np.mean(half)),
                "mean_bytes_tagged": float(np.mean(tagged_bytes)),
                "mean_sampling_fraction": float(np.mean(fractions)),
                "max_unfamiliar_fraction": float(np.max(unfamiliar)),
            }
        summary[name] = per_kind
    return summary


def print_report(report: dict[str, Any]) -> None:
    methods = report["estimators"]
    print(
        f"{'fold':<7}{'design':<30}{'domain':<9}{'truth':>7}"
        + "".join(f"{m + ' err':>10}{'±':>6}" for m in methods)
    )
    for k, design, value in designs(report):
        for label, v in value["domains"].items():
            cells = ""
            for m in methods:
                covered = "" if v[f"{m}_lo"] <= v["truth"] <= v[f"{m}_hi"] else "!"
                half_width = 50 * (v[f"{m}_hi"] - v[f"{m}_lo"])
                cells += f"{100 * (v[m] - v['truth']):+9.2f}{covered:1}{half_width:6.2f}"
            print(f"{k:<7}{design:<30}{label:<9}{v['truth']:7.4f}{cells}")
    print("err = estimate - truth (of the whole input) in points; ± = half-width of the 95% input-level")
    print("interval; ! = interval misses truth")
    print(
        f"{'estimator':<10}{'kind':<28}{'max|err|':>9}{'mean|err|':>10}{'≤0.5':>6}{'≤1':>6}{'cover':>7}{'cover(c)':>9}"
        f"{'max±':>6}{'bytes':>7}{'f':>7}"
    )
    for name, kinds in report["summary"].items():
        for kind, s in kinds.items():
            print(
                f"{name:<10}{kind:<28}{s['max_abs_error']:9.2f}{s['mean_abs_error']:10.2f}{s['within_0.5']:6.2f}"
                f"{s['within_1']:6.2f}{s['coverage']:7.2f}{s['corpus_interval_coverage']:9.2f}"
                f"{s['max_half_width']:6.2f}{s['mean_bytes_tagged']:7.2f}{s['mean_sampling_fraction']:7.2f}"
            )
    print("the design alone (weighted true shares of the sample vs the input's), points")
    for label, scopes in report["sampling_only"].items():
        cells = "  ".join(
            f"{scope}: rms {v['rms_error_max_domain']:.2f} max {v['max_abs_error']:.2f} "
            f"bias {v['max_abs_mean_error']:.2f} bytes {v['bytes_tagged']:.2f}"
            for scope, v in scopes.items()
        )
        print(f"{label:<18}{cells}")
    groups = report.get("groups")
    if groups:
        print(f"each of the {len(groups['names'])} dumps and sources: token shares of the sample vs")
        print("every document of the group tagged (cross-fitted labels), rms over seeds and domains, points")
        for label, figures in groups["designs"].items():
            print(
                f"{label:<18}cc: all groups {figures['rms_difference_from_full']:.2f}  "
                f"worst group {figures['worst_group_rms']:.2f}; mid: all groups "
                f"{figures['mid_rms_difference_from_full']:.2f}  "
                f"worst group {figures['mid_worst_group_rms']:.2f}"
            )


if __name__ == "__main__":
    sys.exit(main())
