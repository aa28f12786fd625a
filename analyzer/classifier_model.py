"""The fastText domain classifier: loading, guarding and calibrated batch prediction.

A model is a fastText `.bin`/`.ftz` file plus an optional sidecar `<stem>.json` written by
`analyzer.training`, which records the label set, the calibration temperature and how many
characters of each document the model was trained on (`head_chars`).

Any other fastText classifier can be used through a label map: a YAML file (passed explicitly, or
the sidecar `<stem>.labels.yaml`) that folds the model's own labels into DOMAINS. Probabilities of
labels mapped to the same domain are summed; unmapped labels go to `other`, or are an error when
the map says `strict: true`. See `classifiers/label-maps/` for the format.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analyzer import DOMAINS, text_normalise
from analyzer.config import CLASSIFIER_ENGINES as ENGINES
from analyzer.errors import ModelError
from analyzer.fasttext_vectorised import VectorisedFastText, fasttext_loss
from analyzer.lexicon import DomainLexicon
from analyzer.line_markers import LineMarkers
from analyzer.symbol_density import checked_bins

FASTTEXT_MAGIC = 793712314
"""int32 at the start of every fastText `.bin`/`.ftz` file."""

FASTTEXT_MIN_VERSION = 11
"""fastText refuses older model versions; we check first so it never reaches its own abort()."""

DICTIONARY_OFFSET = 8 + 12 * 4 + 8
"""Byte offset of the dictionary sizes: magic, version, 12 int32 args, the double `t`."""

HEADER_BYTES = DICTIONARY_OFFSET + 12

LABEL_PREFIX = "__label__"
LABEL_MAP_HINT = (
    "pass --label-map PATH (a YAML map of its labels onto finance/law/code/medical/other, "
    "see classifiers/label-maps/) or put one at {sidecar}"
)
PREPROCESSING = ("analyzer", "raw")
"""How texts are prepared for a model: our normalisation, or raw text on one line (for foreign models)."""
REBUILD_HINT = "run `make classifier` (or `python -m analyzer.training`) to build it"


@dataclass(frozen=True)
class Sidecar:
    """What `analyzer.training` records next to a model file."""

    name: str
    labels: tuple[str, ...]
    temperature: float
    head_chars: int | None
    extra: dict[str, Any]


def sidecar_path_for(model_path: Path) -> Path:
    """Return `<model path without suffix>.json`."""
    return model_path.with_suffix(".json")


def label_map_path_for(model_path: Path) -> Path:
    """Return the sidecar label map `<model path without suffix>.labels.yaml`."""
    return model_path.with_suffix(".labels.yaml")


@dataclass(frozen=True)
class LabelMap:
    """How a model's own labels fold into DOMAINS.

    `mapping` sends a model label (without `__label__`) to a domain; labels not in it go to `other`
    unless `strict`, in which case loading a model with an unmapped label fails. `preprocessing`
    says what the model was trained on ("analyzer": `normalise_for_classifier`; "raw": the text
    with newlines turned into spaces), `head_chars` how much of each document it reads (None: all).
    """

    mapping: dict[str, str]
    strict: bool = False
    preprocessing: str = "analyzer"
    head_chars: int | None = text_normalise.DEFAULT_HEAD_CHARS
    source: str = ""
    digest: str = ""

    def domain_of(self, label: str) -> str | None:
        """Return the domain a model label folds into (None: unmapped and the map is strict)."""
        if label in self.mapping:
            return self.mapping[label]
        return None if self.strict else "other"

    def fold_matrix(self, model_labels: Sequence[str], model_path: Path) -> np.ndarray:
        """Return the 0/1 matrix (model labels x DOMAINS) that sums label probabilities into domains."""
        unmapped = [label for label in model_labels if self.domain_of(label) is None]
        if unmapped:
            raise ModelError(
                f"label map {self.source} is strict but does not map the labels {unmapped} of model "
                f"{model_path}; map them or set `strict: false` to send them to other"
            )
        unknown = [label for label in self.mapping if label not in model_labels]
        if unknown and (self.strict or len(unknown) == len(self.mapping)):
            raise ModelError(
                f"label map {self.source} names labels {unknown[:10]} that model {model_path} does not "
                f"have (its labels: {list(model_labels)[:30]}); fix the map"
            )
        matrix = np.zeros((len(model_labels), len(DOMAINS)), dtype=np.float64)
        for row, label in enumerate(model_labels):
            matrix[row, DOMAINS.index(self.domain_of(label) or "other")] = 1.0
        return matrix


def read_label_map(path: str | Path) -> LabelMap:
    """Read and validate a YAML label map; raise ModelError with a one-line fix on any problem.

    Format::

        strict: false            # optional; true makes unmapped model labels an error
        preprocessing: analyzer  # optional; or `raw` for a model trained on untouched text
        head_chars: 4000         # optional; characters of each document the model reads (null: all)
        labels:                  # model label (with or without __label__) -> domain
          banking: finance
          python: code
    """
    import yaml  # imported late: only label-map users pay for it

    map_path = Path(path)
    if not map_path.is_file():
        raise ModelError(
            f"label map {map_path} does not exist; pass a YAML file (see classifiers/label-maps/)"
        )
    try:
        payload = map_path.read_bytes()
        raw = yaml.safe_load(payload.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"label map {map_path} is not readable YAML ({detail})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), dict) or not raw["labels"]:
        raise ModelError(f"label map {map_path} needs a non-empty `labels:` mapping of model label -> domain")
    mapping: dict[str, str] = {}
    for label, domain in raw["labels"].items():
        if domain not in DOMAINS:
            raise ModelError(
                f"label map {map_path} maps {label!r} to {domain!r}; domains are {', '.join(DOMAINS)}"
            )
        mapping[str(label).removeprefix(LABEL_PREFIX)] = str(domain)
    strict = raw.get("strict", False)
    preprocessing = raw.get("preprocessing", "analyzer")
    head_chars = raw.get("head_chars", text_normalise.DEFAULT_HEAD_CHARS)
    if not isinstance(strict, bool):
        raise ModelError(f"label map {map_path}: `strict` must be true or false")
    if preprocessing not in PREPROCESSING:
        raise ModelError(f"label map {map_path}: `preprocessing` must be one of {', '.join(PREPROCESSING)}")
    if head_chars is not None and (not isinstance(head_chars, int) or head_chars < 1):
        raise ModelError(f"label map {map_path}: `head_chars` must be a positive integer or null")
    unknown_keys = set(raw) - {"labels", "strict", "preprocessing", "head_chars", "name", "description"}
    if unknown_keys:
        raise ModelError(f"label map {map_path} has unknown keys {sorted(unknown_keys)}")
    return LabelMap(
        mapping=mapping,
        strict=strict,
        preprocessing=preprocessing,
        head_chars=head_chars,
        source=str(map_path),
        digest=hashlib.sha256(payload).hexdigest()[:8],
    )


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_fasttext_header(path: Path) -> None:
    """Raise ModelError unless `path` is a readable file starting with fastText's magic and version."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; {REBUILD_HINT}")
    try:
        with path.open("rb") as handle:
            header = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read ({exc.strerror}); {REBUILD_HINT}") from exc
    if len(header) < HEADER_BYTES:
        raise ModelError(f"model file {path} is not a fastText model (too short); {REBUILD_HINT}")
    magic, version = struct.unpack_from("<ii", header)
    if magic != FASTTEXT_MAGIC:
        raise ModelError(f"model file {path} is not a fastText model (bad magic number); {REBUILD_HINT}")
    if version < FASTTEXT_MIN_VERSION:
        raise ModelError(f"model file {path} has unsupported fastText version {version}; {REBUILD_HINT}")
    # Dictionary sizes follow the 12 int32 + 1 double training args; fastText trusts them blindly
    # and can allocate wildly or loop on a damaged file, so sanity-check them first.
    size, n_words, n_labels = struct.unpack_from("<iii", header, DICTIONARY_OFFSET)
    if n_labels <= 0 or n_words < 0 or size != n_words + n_labels or size * 11 > path.stat().st_size:
        raise ModelError(f"model file {path} is damaged (inconsistent dictionary header); {REBUILD_HINT}")


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Redirect file descriptor 2 to /dev/null; fastText's C++ code writes warnings straight to it."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_fasttext(path: Path) -> Any:
    """Load a fastText model after the header check; any failure becomes a one-line ModelError."""
    check_fasttext_header(path)
    import fasttext  # imported late: `analyzer --help` should not pay for it

    try:
        with silenced_stderr():
            return fasttext.load_model(str(path))
    except (ValueError, RuntimeError, MemoryError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"model file {path} could not be loaded ({message}); {REBUILD_HINT}") from exc


def read_sidecar(sidecar: Path, model_path: Path) -> Sidecar:
    """Read the sidecar JSON; a missing one yields defaults, a broken one raises ModelError."""
    if not sidecar.is_file():
        return Sidecar(model_path.stem, DOMAINS, 1.0, text_normalise.DEFAULT_HEAD_CHARS, {})
    try:
        raw = json.loads(sidecar.read_text(encoding="utf-8"))
        head_chars = raw.get("head_chars", text_normalise.DEFAULT_HEAD_CHARS)
        return Sidecar(
            name=str(raw.get("name", model_path.stem)),
            labels=tuple(str(label) for label in raw.get("labels", DOMAINS)),
            temperature=float(raw.get("temperature", 1.0)),
            head_chars=None if head_chars is None else int(head_chars),
            extra={k: v for k, v in raw.items() if k not in {"name", "labels", "temperature", "head_chars"}},
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"model sidecar {sidecar} is not valid JSON of the expected shape ({exc}); {REBUILD_HINT}"
        ) from exc


def markers_of(sidecar: Sidecar, model_path: Path) -> LineMarkers:
    """The line markers a model was trained with (stored in its sidecar; none when absent)."""
    return LineMarkers(_stored_lexicon(sidecar, model_path), _stored_symbol_bins(sidecar, model_path))


def _stored_lexicon(sidecar: Sidecar, model_path: Path) -> DomainLexicon | None:
    """The lexicon a model was trained with (stored in its sidecar), or None."""
    stored = sidecar.extra.get("lexicon")
    if stored is None:
        return None
    if not isinstance(stored, dict):
        raise ModelError(f"model sidecar of {model_path}: `lexicon` must be an object; {REBUILD_HINT}")
    return DomainLexicon.from_mapping(stored, f"in the sidecar of {model_path}")


def _stored_symbol_bins(sidecar: Sidecar, model_path: Path) -> tuple[float, ...]:
    """The symbol-density bands a model was trained with (stored in its sidecar), or () for none."""
    stored = sidecar.extra.get("symbol_density_bins")
    if stored is None:
        return ()
    return checked_bins(stored, f"model sidecar of {model_path}")


def companion_path_for(model_path: Path) -> Path:
    """Where a softmax model's one-vs-all companion lives: `<stem>.ova.bin` (analyzer.training.companion)."""
    return model_path.with_name(f"{model_path.stem}.ova.bin")


def model_labels(ft_model: Any) -> tuple[str, ...]:
    """Return the model's labels without fastText's `__label__` prefix."""
    return tuple(str(label).removeprefix(LABEL_PREFIX) for label in ft_model.get_labels())


def raw_line(text: str, head_chars: int | None) -> str:
    """Return `text` cut to `head_chars` on one line (fastText ends an example at a newline)."""
    if head_chars is not None:
        text = text[:head_chars]
    return " ".join(text.split())


def fasttext_probabilities(
    ft_model: Any, lines: Sequence[str], columns: Sequence[str] = DOMAINS, renormalise: bool = True
) -> np.ndarray:
    """Return fastText's probabilities for already-normalised lines, columns in `columns` order.

    Rows are renormalised to sum to 1: fastText adds 1e-5 inside its log, and `ova` loss gives
    independent sigmoids. With `renormalise` False, fastText's own outputs (those sigmoids).
    """
    column_of = {LABEL_PREFIX + label: index for index, label in enumerate(columns)}
    probs = np.zeros((len(lines), len(columns)), dtype=np.float64)
    if not lines:
        return probs
    all_labels, all_probs = ft_model.predict(list(lines), k=-1, threshold=0.0)
    for row, (labels, row_probs) in enumerate(zip(all_labels, all_probs, strict=True)):
        columns_here = [column_of[label] for label in labels]
        probs[row, columns_here] = row_probs
    # An empty line gets no prediction from fastText; treat it as uniform rather than dividing by 0.
    sums = probs.sum(axis=1, keepdims=True)
    probs[sums[:, 0] <= 0] = 1.0 / len(columns)
    if not renormalise:
        return probs
    normalised: np.ndarray = probs / probs.sum(axis=1, keepdims=True)
    return normalised


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Return softmax(log(probs) / temperature), i.e. temperature scaling of the log-probabilities."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    calibrated: np.ndarray = scaled / scaled.sum(axis=1, keepdims=True)
    return calibrated


class DomainModel:
    """A loaded domain classifier that turns raw texts into calibrated DOMAINS probabilities.

    `labels` are the model's own labels; with a label map their probabilities are folded into
    DOMAINS by `fold` (labels x domains, 0/1), otherwise `labels` is DOMAINS and `fold` is None.
    """

    def __init__(
        self,
        ft_model: Any,
        path: Path,
        sidecar: Sidecar,
        version: str,
        labels: tuple[str, ...] = DOMAINS,
        label_map: LabelMap | None = None,
        fold: np.ndarray | None = None,
        engine: str = "auto",
    ) -> None:
        self.ft_model = ft_model
        self.path = path
        self.name = sidecar.name
        self.version = version
        self.head_chars = sidecar.head_chars
        self.temperature = sidecar.temperature
        self.sidecar = sidecar
        self.labels = labels
        self.label_map = label_map
        self.fold = fold
        self.engine = engine
        self.vectorised: VectorisedFastText | None = None
        self.vectorised_columns: list[int] = []
        # one-vs-all loss: independent sigmoids per label, which multi-label tagging reads
        self.one_vs_all = fasttext_loss(ft_model) == "ova"
        # a softmax model of our own labels may have a one-vs-all companion beside it, loaded on use
        companion = companion_path_for(path)
        self.companion_path = (
            companion if fold is None and not self.one_vs_all and companion.is_file() else None
        )
        self.companion: DomainModel | None = None
        self.markers = markers_of(sidecar, path)
        if engine not in ENGINES:
            raise ModelError(f"unknown classifier engine {engine!r}; choose one of {', '.join(ENGINES)}")

    @classmethod
    def load(cls, path: str | Path, label_map: str | Path | None = None, engine: str = "auto") -> DomainModel:
        """Load a fastText model, its sidecar and label map; raise ModelError with a one-line fix.

        `label_map` is a YAML file; without one the sidecar `<stem>.labels.yaml` is used if it
        exists. A model whose labels are not exactly DOMAINS needs a label map. `engine` is one of
        ENGINES.
        """
        model_path = Path(path)
        ft_model = load_fasttext(model_path)
        sidecar_file = sidecar_path_for(model_path)
        sidecar = read_sidecar(sidecar_file, model_path)
        if not sidecar.temperature > 0:
            raise ModelError(f"model sidecar {sidecar_file} has temperature <= 0; {REBUILD_HINT}")
        if "normalisation" in sidecar.extra:  # trained by analyzer.training: same text preparation?
            trained_with = sidecar.extra.get("normalisation_version", 1)
            if trained_with != text_normalise.NORMALISATION_VERSION:
                raise ModelError(
                    f"model file {model_path} was trained on text normalisation v{trained_with}, this "
                    f"version prepares text with v{text_normalise.NORMALISATION_VERSION}; retrain it with "
                    "`analyzer train` (or use an analyzer release of its time)"
                )
        labels = model_labels(ft_model)
        version = file_sha256(model_path)[:12]
        map_path = Path(label_map) if label_map is not None else label_map_path_for(model_path)
        if label_map is not None or map_path.is_file():
            mapping = read_label_map(map_path)
            fold = mapping.fold_matrix(labels, model_path)
            if not sidecar_file.is_file():
                # a foreign model: what it reads and how is the map's to say
                sidecar = Sidecar(model_path.stem, labels, 1.0, mapping.head_chars, {})
            version = f"{version}+map-{mapping.digest}"
            return cls(ft_model, model_path, sidecar, version, labels, mapping, fold, engine)
        missing = [domain for domain in DOMAINS if domain not in labels]
        unknown = [label for label in labels if label not in DOMAINS]
        if missing or unknown:
            hint = LABEL_MAP_HINT.format(sidecar=label_map_path_for(model_path))
            raise ModelError(
                f"model file {model_path} has labels {list(labels)[:30]}, expected exactly {list(DOMAINS)}; "
                f"{hint}, or {REBUILD_HINT}"
            )
        return cls(ft_model, model_path, sidecar, version, engine=engine)

    def normalise(self, texts: Sequence[str]) -> list[str]:
        """Return the lines fastText sees for `texts` (the training-time preparation, density and
        lexicon markers included)."""
        lines = self.unannotated_lines(texts)
        return lines if self.markers.lexicon is None else [self.markers.annotate(line) for line in lines]

    def unannotated_lines(self, texts: Sequence[str]) -> list[str]:
        """`normalise` without the lexicon markers (what the vectorised engine reads)."""
        if self.label_map is not None and self.label_map.preprocessing == "raw":
            return [raw_line(text, self.head_chars) for text in texts]
        normalise, head = self.markers.unannotated_line, self.head_chars
        return [normalise(text, head) for text in texts]

    def predict_label_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Return calibrated probabilities over the model's own labels (columns in `labels` order)."""
        return self.predict_label_scores(texts)[0]

    def predict_label_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probabilities, fastText's own outputs) over the model's own labels: rows of
        the first sum to 1; the second are a softmax model's probabilities before calibration or a
        one-vs-all model's independent sigmoids."""
        vectorised = self.vectorised_engine()
        if vectorised is None:
            raw = fasttext_probabilities(self.ft_model, self.normalise(texts), self.labels, renormalise=False)
        else:
            # the engine adds the lexicon markers itself, per distinct token, so it reads the lines
            # before annotation (annotating in Python would cost more than the whole prediction)
            lines = self.unannotated_lines(texts)
            raw = vectorised.probabilities(lines, renormalise=False)[:, self.vectorised_columns]
        normalised = raw / raw.sum(axis=1, keepdims=True)
        return apply_temperature(normalised, self.temperature), raw

    def one_vs_all_companion(self) -> DomainModel | None:
        """A softmax model's one-vs-all companion (`companion_path_for`), loaded on first use, or None
        (none beside it, a one-vs-all model, or a model read through a label map)."""
        if self.companion is None and self.companion_path is not None:
            self.companion = DomainModel.load(self.companion_path, engine=self.engine)
            if self.companion.labels != DOMAINS or not self.companion.one_vs_all:
                raise ModelError(
                    f"{self.companion_path} is not a one-vs-all model over {list(DOMAINS)}; {REBUILD_HINT}"
                )
        return self.companion

    def predict_with_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(`predict_proba`, per-domain scores for multi-label tagging), both (len(texts), 5).

        The scores are a one-vs-all model's independent sigmoids, so a page can score high for
        two domains at once; a label map folds them by the maximum over a domain's labels (the
        domain is present if any of its labels is). A softmax model reads them from its one-vs-all
        companion when one lies beside it (`<stem>.ova.bin`), else they are its calibrated
        probabilities, which sum to 1.
        """
        probabilities, raw = self.predict_label_scores(texts)
        scores = raw if self.one_vs_all else probabilities
        companion = self.one_vs_all_companion()
        if companion is not None:
            scores = companion.predict_label_scores(texts)[1]
        if self.fold is None:
            return probabilities, scores
        folded_scores: np.ndarray = (scores[:, :, None] * self.fold[None]).max(axis=1)
        return probabilities @ self.fold, folded_scores

    def forget_unknown_words(self) -> None:
        """Empty the vectorised engine's cache of words outside the vocabulary (for fair timing)."""
        if self.vectorised is not None:
            self.vectorised.reset_cache()

    def vectorised_engine(self) -> VectorisedFastText | None:
        """The array implementation of this model's predict, built on first use (it takes ~1 s), or
        None when the engine is "fasttext" or the model is of a kind it does not reproduce."""
        if self.engine == "fasttext" or not VectorisedFastText.supports(self.ft_model):
            if self.engine == "vectorised":
                raise ModelError(
                    f"model file {self.path} is quantized, uses word n-grams or a hierarchical softmax, "
                    "which the vectorised engine does not reproduce; use --classifier-engine fasttext"
                )
            return None
        if self.vectorised is None:
            self.vectorised = VectorisedFastText.from_fasttext(self.ft_model, self.markers.lexicon)
            # the engine's columns come in the model's label order; `labels` may order them otherwise
            own_order = model_labels(self.ft_model)
            self.vectorised_columns = [own_order.index(label) for label in self.labels]
        return self.vectorised

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Return calibrated probabilities, shape (len(texts), 5), float64, columns in DOMAINS order."""
        probs = self.predict_label_proba(texts)
        if self.fold is None:
            return probs
        folded: np.ndarray = probs @ self.fold
        return folded
