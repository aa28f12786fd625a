"""Weak supervision: train a domain classifier for a corpus without labels.

1. Seed rules (YAML, see `classifiers/seeds/README.md`) label documents by their URL: known hosts
   decide alone, host/path patterns vote. Placeholder hosts (`.invalid`) are never matched.
   Optional text patterns (regexes with a minimum number of distinct hits) label documents whose
   URL says nothing, e.g. corpora without real URLs.
2. `other` is a subsample of documents the rules could read but matched nothing (without text
   rules, a placeholder or missing URL is no evidence either way, so those are never `other`).
3. fastText is trained on those with domain-v1's configuration, the four domain classes balanced
   by repetition (rules find very different numbers per domain).
4. Self-training, `rounds` times: every document not labeled by a rule is predicted; per domain,
   the most confident predictions (top probability >= `confidence_threshold`) join the training
   set, at most `growth` times the domain's current size per round (an `other` subsample
   document predicted as a domain moves to it), and the model is retrained.

Only texts go to the model; URLs are only read by the rules.
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from analyzer import DOMAINS, text_normalise
from analyzer.classifier_model import Sidecar, fasttext_probabilities
from analyzer.errors import InputError
from analyzer.line_markers import LineMarkers
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.training.data import LabeledData, read_labeled, write_training_file
from analyzer.training.evaluate import Evaluation, evaluate_probabilities
from analyzer.training.train import SHIPPED_PARAMS, FastTextParams, TextView, train_fasttext, write_sidecar

SEED_DOMAINS = tuple(domain for domain in DOMAINS if domain != "other")
PLACEHOLDER_SUFFIX = ".invalid"


TEXT_RULE_CHARS = 4000
"""Text patterns are searched in this many leading characters of a document, lower-cased."""
DEFAULT_TEXT_MIN_HITS = 3


@dataclass(frozen=True)
class SeedRules:
    """Rules for the four domains: exact hosts (with subdomains), URL regexes, optional text regexes."""

    hosts: dict[str, str]
    host_patterns: list[tuple[re.Pattern[str], str]]
    path_patterns: list[tuple[re.Pattern[str], str]]
    sources: list[str]
    text_patterns: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)
    text_min_hits: dict[str, int] = field(default_factory=dict)
    """Per domain: how many different text patterns must occur (default DEFAULT_TEXT_MIN_HITS)."""

    @property
    def reads_text(self) -> bool:
        """True when some rule looks at the text (then every document is seen by the rules)."""
        return any(self.text_patterns.values())

    def label(self, url: str | None, text: str | None = None) -> str | None:
        """Return the domain the rules give a document, or None (no rule or conflicting rules).

        URL rules come first; text patterns only decide when the URL gives nothing: a domain
        wins when at least its `text_min_hits` different patterns occur and no other domain's do.
        """
        by_url = self.label_url(url)
        if by_url is not None or text is None or not self.reads_text:
            return by_url
        head = text[:TEXT_RULE_CHARS].lower()
        winners = [
            domain
            for domain, patterns in self.text_patterns.items()
            if sum(1 for pattern in patterns if pattern.search(head))
            >= self.text_min_hits.get(domain, DEFAULT_TEXT_MIN_HITS)
        ]
        return winners[0] if len(winners) == 1 else None

    def label_url(self, url: str | None) -> str | None:
        """Return the domain the URL rules give `url`, or None (no rule, conflict, no usable host)."""
        parts = split_url(url)
        if parts is None:
            return None
        host, path = parts
        labels = host.split(".")
        for start in range(len(labels) - 1):
            domain = self.hosts.get(".".join(labels[start:]))
            if domain is not None:
                return domain
        votes = {domain for pattern, domain in self.host_patterns if pattern.search(host)}
        votes |= {domain for pattern, domain in self.path_patterns if pattern.search(path)}
        return votes.pop() if len(votes) == 1 else None


def split_url(url: str | None) -> tuple[str, str] | None:
    """Return (host without `www.`, path), lower-cased; None for no URL, no host or a placeholder host."""
    if not url:
        return None
    try:
        parsed = urlsplit(url.strip().lower())
        host = parsed.hostname or ""
    except ValueError:
        return None
    host = host.removeprefix("www.").rstrip(".")
    if "." not in host or host.endswith(PLACEHOLDER_SUFFIX):
        return None
    return host, parsed.path or "/"


def has_usable_url(url: str | None) -> bool:
    """True when the rules could read `url` (a real host, not a placeholder)."""
    return split_url(url) is not None


def seed_rule_files(paths: Sequence[str | Path]) -> list[Path]:
    """Return the YAML files of `paths` (directories: their `*.yaml`/`*.yml`, not recursive)."""
    files: list[Path] = []
    for path in paths:
        root = Path(path)
        found = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")) if root.is_dir() else [root]
        if not root.exists() or not found:
            raise InputError(
                f"--seed-rules {root}: no seed-rule YAML files there (see classifiers/seeds/README.md)"
            )
        files += found
    return files


def load_seed_rules(paths: str | Path | Sequence[str | Path]) -> SeedRules:
    """Read seed-rule YAML from directories or files; raise InputError with the fix on any problem."""
    import yaml

    sources = [paths] if isinstance(paths, str | Path) else list(paths)
    files = seed_rule_files(sources)
    hosts: dict[str, str] = {}
    host_patterns: list[tuple[re.Pattern[str], str]] = []
    path_patterns: list[tuple[re.Pattern[str], str]] = []
    text_patterns: dict[str, list[re.Pattern[str]]] = {}
    min_hits: dict[str, int] = {}
    for file in files:
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"seed rules {file} are not readable YAML ({detail})") from exc
        if not isinstance(raw, dict) or raw.get("domain") not in SEED_DOMAINS:
            raise InputError(f"seed rules {file} need `domain:` one of {', '.join(SEED_DOMAINS)}")
        domain = str(raw["domain"])
        for key in ("hosts", "host_patterns", "path_patterns", "text_patterns"):
            if not isinstance(raw.get(key, []), list):
                raise InputError(f"seed rules {file}: `{key}` must be a list")
        if "text_min_hits" in raw:
            if not isinstance(raw["text_min_hits"], int) or raw["text_min_hits"] < 1:
                raise InputError(f"seed rules {file}: `text_min_hits` must be a positive integer")
            min_hits[domain] = max(min_hits.get(domain, 1), raw["text_min_hits"])
        for host in raw.get("hosts", []):
            name = str(host).lower().removeprefix("www.")
            if name.endswith(PLACEHOLDER_SUFFIX):
                raise InputError(f"seed rules {file}: host {name} is a placeholder (.invalid) host")
            if hosts.get(name, domain) != domain:
                raise InputError(f"seed rules {file}: host {name} is already a {hosts[name]} host")
            hosts[name] = domain
        for key in ("host_patterns", "path_patterns", "text_patterns"):
            for pattern in raw.get(key, []):
                try:
                    compiled = re.compile(str(pattern))
                except re.error as exc:
                    raise InputError(f"seed rules {file}: {key} {pattern!r} is not a regex ({exc})") from exc
                if key == "text_patterns":
                    text_patterns.setdefault(domain, []).append(compiled)
                else:
                    (host_patterns if key == "host_patterns" else path_patterns).append((compiled, domain))
    return SeedRules(
        hosts,
        host_patterns,
        path_patterns,
        [file.name for file in files],
        text_patterns,
        min_hits,
    )


DENSITY_MARKER_ONLY = LineMarkers(symbol_bins=SYMBOL_DENSITY_BINS)
"""The library's default markers: no lexicon (`analyzer train --seed-rules` passes the shipped one too)."""


@dataclass(frozen=True)
class WeakSupervisionOptions:
    """Knobs of the weak-supervision loop (defaults are what `analyzer train --seed-rules` uses)."""

    rounds: int = 2
    confidence_threshold: float = 0.5
    """Lowest top probability at which a prediction may join the training set."""
    growth: float = 3.0
    """Each round a domain's training set may grow by this factor of its size (most confident first)."""
    other_ratio: float = 1.0
    """`other` documents drawn per rule-labeled document."""
    min_per_domain: int = 200
    """Domain classes are repeated up to the largest one, and to at least this many lines."""
    min_seeds: int = 1
    max_documents: int = 1_000_000
    seed: int = 0
    params: FastTextParams = SHIPPED_PARAMS
    """The settings domain-v1 ships with."""
    head_chars: int = text_normalise.DEFAULT_HEAD_CHARS
    markers: LineMarkers = DENSITY_MARKER_ONLY
    """Marker tokens the model reads (analyzer/line_markers.py)."""


@dataclass
class WeakSupervisionResult:
    """What the weak-supervision run did, per round, and where it wrote the model."""

    model_path: str
    report_path: str
    documents: int
    usable_urls: int
    rule_counts: dict[str, int]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    dev: Evaluation | None = None
    dev_unseen: Evaluation | None = None
    """Scores on the dev documents whose text is not in the unlabeled corpus (self-training saw the rest)."""
    supervised: dict[str, Evaluation] = field(default_factory=dict)
    """The shipped supervised model on the same dev documents ("all", "unseen"), for comparison."""
    seconds: float = 0.0


def read_corpus(inputs: Sequence[str], max_documents: int) -> tuple[list[str], list[str | None]]:
    """Return texts and URLs of the documents of `inputs` (shards, globs, dirs), up to `max_documents`."""
    from analyzer.config import ReaderOptions
    from analyzer.readers import read_shard
    from analyzer.shards import resolve_shards

    texts: list[str] = []
    urls: list[str | None] = []
    for shard in resolve_shards(list(inputs)):
        for batch in read_shard(shard, ReaderOptions()):
            documents = batch.documents
            texts.extend(documents.column("text").to_pylist())
            urls.extend(documents.column("url").to_pylist())
            if len(texts) >= max_documents:
                return texts[:max_documents], urls[:max_documents]
    return texts, urls


def training_lines(
    indices_by_label: dict[str, list[int]], lines: Sequence[str], min_per_domain: int, rng: random.Random
) -> tuple[list[str], list[str]]:
    """Return shuffled (lines, labels) with the four domains balanced.

    Seed rules find very different numbers of documents per domain (a corpus with many NIH pages
    and few filings), and fastText would learn those counts as a prior; so every domain class is
    repeated up to the largest one (at least `min_per_domain` lines). `other` is used as it is.
    """
    target = max([min_per_domain] + [len(v) for k, v in indices_by_label.items() if k != "other"])
    pairs: list[tuple[str, str]] = []
    for label, indices in indices_by_label.items():
        chosen = list(indices)
        if label != "other" and chosen and len(chosen) < target:
            chosen = (chosen * (target // len(chosen) + 1))[:target]
        pairs += [(lines[i], label) for i in chosen]
    rng.shuffle(pairs)
    return [line for line, _ in pairs], [label for _, label in pairs]


def train_round(
    indices_by_label: dict[str, list[int]],
    lines: Sequence[str],
    options: WeakSupervisionOptions,
    rng: random.Random,
    work: Path,
) -> Any:
    """Train one fastText model on the current labeled indices."""
    train_file = work / "weak-train.txt"
    train_lines, train_labels = training_lines(indices_by_label, lines, options.min_per_domain, rng)
    write_training_file(train_lines, train_labels, train_file)
    return train_fasttext(train_file, options.params, options.seed)


def train_weakly_supervised(
    seed_rules: str | Path | Sequence[str | Path],
    inputs: Sequence[str],
    out_dir: str | Path,
    name: str,
    *,
    dev_path: str | Path | None = None,
    options: WeakSupervisionOptions | None = None,
    command: str = "analyzer train --seed-rules",
    supervised_model: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> WeakSupervisionResult:
    """Label `inputs` with seed rules, train, self-train; write `<name>.bin/.json/.weak-supervision.json`.

    `dev_path` (labeled) is only used to report each round's dev scores, never to train or tune;
    scores are also given for the dev documents not in `inputs`, and for `supervised_model` (the
    shipped model, for comparison) on the same documents.
    """
    from analyzer.training.commands import check_name, check_out_dir

    options = options or WeakSupervisionOptions()
    started = time.perf_counter()
    check_name(name)
    out = Path(out_dir)
    check_out_dir(out)
    rules = load_seed_rules(seed_rules)
    dev = read_labeled(dev_path) if dev_path is not None else None
    texts, urls = read_corpus(inputs, options.max_documents)
    if not texts:
        raise InputError("the unlabeled corpus has no documents")
    view = TextView(options.head_chars, markers=options.markers)
    lines = [view.normalise(text) for text in texts]
    rule_labels = [rules.label(url, text) for url, text in zip(urls, texts, strict=True)]
    usable = [has_usable_url(url) for url in urls]
    # a document the rules could read: its URL, or with text rules every document
    seen = [True] * len(texts) if rules.reads_text else usable
    rule_counts = Counter(label for label in rule_labels if label is not None)
    log(
        f"read {len(texts)} documents, {sum(usable)} with a usable URL; seed rules labeled "
        + ", ".join(f"{domain} {rule_counts[domain]}" for domain in SEED_DOMAINS)
    )
    lacking = [domain for domain in SEED_DOMAINS if rule_counts[domain] < options.min_seeds]
    if lacking:
        raise InputError(
            f"seed rules matched no {', '.join(lacking)} document in the corpus; add hosts or patterns "
            "for them to the seed rules (a model needs examples of every domain)"
        )
    rng = random.Random(options.seed)
    seeds = {domain: [i for i, label in enumerate(rule_labels) if label == domain] for domain in SEED_DOMAINS}
    unmatched = [i for i, label in enumerate(rule_labels) if label is None and seen[i]]
    n_other = min(len(unmatched), max(1, round(options.other_ratio * sum(rule_counts.values()))))
    other_pool = sorted(rng.sample(unmatched, n_other))
    if not other_pool:
        raise InputError("every document the rules could read matched one; nothing can stand for `other`")
    labeled: dict[str, list[int]] = {**seeds, "other": other_pool}
    rounds: list[dict[str, Any]] = []
    dev_lines = [view.normalise(text) for text in dev.texts] if dev is not None else []
    # Dev documents that are also in the unlabeled corpus were read, and pseudo-labelled, by
    # self-training, so their scores flatter the method; the rest are the fair comparison.
    corpus_texts = set(texts)
    unseen = [i for i, text in enumerate(dev.texts) if text not in corpus_texts] if dev is not None else []
    with tempfile.TemporaryDirectory(prefix="analyzer-weak-") as tmp:
        work = Path(tmp)
        ft_model = train_round(labeled, lines, options, rng, work)
        for round_number in range(options.rounds + 1):
            summary: dict[str, Any] = {
                "round": round_number,
                "training_documents": {label: len(labeled[label]) for label in DOMAINS},
            }
            if dev is not None:
                evaluation = evaluate_probabilities(fasttext_probabilities(ft_model, dev_lines), dev.labels)
                summary["dev_macro_f1"] = evaluation.macro_f1
                summary["dev_accuracy"] = evaluation.accuracy
                summary["dev_f1"] = {label: s.f1 for label, s in evaluation.per_label.items()}
                unseen_f1 = _subset_macro_f1(ft_model, dev_lines, dev.labels, unseen)
                summary["dev_unseen_macro_f1"] = unseen_f1
                log(
                    f"round {round_number}: trained on "
                    + ", ".join(f"{k} {v}" for k, v in summary["training_documents"].items())
                    + f"; dev macro-F1 {evaluation.macro_f1:.4f}"
                    + ("" if unseen_f1 is None else f" ({unseen_f1:.4f} on {len(unseen)} not in the corpus)")
                )
            rounds.append(summary)
            if round_number == options.rounds:
                break
            labeled = self_training_labels(ft_model, lines, rule_labels, other_pool, labeled, options)
            ft_model = train_round(labeled, lines, options, rng, work)
        model_path = out / f"{name}.bin"
        ft_model.save_model(str(model_path))
    # files of an earlier model of this name would describe the wrong model: the `.ftz` would be
    # loaded instead of the new `.bin`, the dev predictions would drive the share correction
    for suffix in (".ftz", ".dev-predictions.parquet"):
        stale = out / f"{name}{suffix}"
        if stale.is_file():
            stale.unlink()
            log(f"removed {stale} (it belonged to an earlier model of this name)")
    sidecar = Sidecar(name, DOMAINS, 1.0, view.head, {})
    write_sidecar(model_path, sidecar, options.params, options.seed, None, view.markers)
    result = WeakSupervisionResult(
        model_path=str(model_path),
        report_path=str(out / f"{name}.weak-supervision.json"),
        documents=len(texts),
        usable_urls=sum(usable),
        rule_counts={domain: rule_counts[domain] for domain in SEED_DOMAINS},
        rounds=rounds,
    )
    if dev is not None:
        result.dev, result.dev_unseen = _evaluate_on_dev(model_path, dev, unseen)
        if supervised_model is not None and Path(supervised_model).is_file():
            supervised_all, supervised_unseen = _evaluate_on_dev(Path(supervised_model), dev, unseen)
            result.supervised["all"] = supervised_all
            if supervised_unseen is not None:
                result.supervised["unseen"] = supervised_unseen
    result.seconds = time.perf_counter() - started
    payload = {
        "command": command,
        "seed_rules": rules.sources,
        "options": {k: v for k, v in asdict(options).items() if k != "params"},
        "fasttext_params": asdict(options.params),
        "documents": result.documents,
        "usable_urls": result.usable_urls,
        "rule_counts": result.rule_counts,
        "rounds": rounds,
        "dev": None if result.dev is None else result.dev.to_dict(),
        "dev_unseen_documents": len(unseen),
        "dev_unseen": None if result.dev_unseen is None else result.dev_unseen.to_dict(),
        "supervised_model": str(supervised_model) if result.supervised else None,
        "supervised": {subset: evaluation.to_dict() for subset, evaluation in result.supervised.items()},
        "seconds": result.seconds,
    }
    Path(result.report_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return result


def _subset_macro_f1(
    ft_model: Any, lines: Sequence[str], labels: Sequence[str], rows: Sequence[int]
) -> float | None:
    if not rows:
        return None
    probs = fasttext_probabilities(ft_model, [lines[i] for i in rows])
    return evaluate_probabilities(probs, [labels[i] for i in rows]).macro_f1


def _evaluate_on_dev(
    model_path: Path, dev: LabeledData, unseen: Sequence[int]
) -> tuple[Evaluation, Evaluation | None]:
    """Return the model's dev evaluation (through DomainModel) on all dev documents and on `unseen`."""
    from analyzer.classifier_model import DomainModel

    model = DomainModel.load(model_path)
    probs = model.predict_proba(dev.texts)
    everything = evaluate_probabilities(probs, dev.labels)
    if not unseen:
        return everything, None
    rows = list(unseen)
    return everything, evaluate_probabilities(probs[rows], [dev.labels[i] for i in rows])


def self_training_labels(
    ft_model: Any,
    lines: Sequence[str],
    rule_labels: Sequence[str | None],
    other_pool: Sequence[int],
    current: dict[str, list[int]],
    options: WeakSupervisionOptions,
) -> dict[str, list[int]]:
    """Return the next round's labeled indices: rule seeds, plus the most confident predictions.

    Rule-labeled documents keep their rule label. Among the others, each domain takes the documents
    predicted as it with top probability >= `confidence_threshold`, most confident first, up to
    (1 + `growth`) times its current size, so a domain with few seeds grows step by step instead
    of being swamped by one round's guesses. `other` keeps its subsample minus the documents just
    moved to a domain.
    """
    probs = fasttext_probabilities(ft_model, lines)
    top = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    labeled: dict[str, list[int]] = {label: [] for label in DOMAINS}
    candidates: dict[str, list[int]] = {label: [] for label in SEED_DOMAINS}
    for index, rule_label in enumerate(rule_labels):
        predicted = DOMAINS[int(top[index])]
        if rule_label is not None:
            labeled[rule_label].append(index)
        elif predicted != "other" and confidence[index] >= options.confidence_threshold:
            candidates[predicted].append(index)
    moved: set[int] = set()
    for domain, indices in candidates.items():
        room = round((1 + options.growth) * len(current[domain])) - len(labeled[domain])
        ranked = sorted(indices, key=lambda i: -confidence[i])[: max(room, 0)]
        labeled[domain] += sorted(ranked)
        moved.update(ranked)
    labeled["other"] = [index for index in other_pool if index not in moved]
    return labeled
