"""Bring your own model: a fastText model with labels of its own, folded into the domains by a
YAML label map (explicit or the `<model>.labels.yaml` sidecar). The models are trained here on
generated data with made-up labels; nothing reads ../shared."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from generated import (
    VOCABULARY,
    corpus_documents,
    labeled_rows,
    make_text,
    write_fineweb_parquet,
    write_jsonl_gz,
)

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel, label_map_path_for, read_label_map
from analyzer.cli import main
from analyzer.errors import ModelError
from analyzer.text_normalise import normalise_for_classifier

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MAP = REPO / "classifiers" / "label-maps" / "example-weborganizer-topics.yaml"

# made-up topic labels -> the generated vocabulary they are trained on; finance is split in two
# topics so the map must sum their probabilities
TOPIC_SOURCES = {
    "banking": "finance",
    "markets": "finance",
    "court": "law",
    "python": "code",
    "clinic": "medical",
    "sports": "other",
}
TOPIC_MAP = """\
labels:
  banking: finance
  __label__markets: finance
  court: law
  python: code
  clinic: medical
  sports: other
"""


def topic_texts(count: int, seed: int) -> list[tuple[str, str]]:
    """(topic, text) pairs; the two finance topics draw from the two halves of its vocabulary."""
    rng = random.Random(seed)
    pairs = []
    topics = list(TOPIC_SOURCES)
    for index in range(count):
        topic = topics[index % len(topics)]
        text = make_text(TOPIC_SOURCES[topic], rng)
        if topic in {"banking", "markets"}:
            half = VOCABULARY["finance"][:10] if topic == "banking" else VOCABULARY["finance"][10:]
            text = " ".join(rng.choice(half) for _ in range(60))
        pairs.append((topic, text))
    return pairs


@pytest.fixture(scope="module")
def topic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fastText model over six made-up topics (no sidecar JSON: a foreign model)."""
    import fasttext

    directory = tmp_path_factory.mktemp("topics")
    train_file = directory / "train.txt"
    with train_file.open("w", encoding="utf-8") as handle:
        for topic, text in topic_texts(600, seed=1):
            handle.write(f"__label__{topic} {normalise_for_classifier(text)}\n")
    model = fasttext.train_supervised(str(train_file), epoch=10, dim=10, thread=1, seed=1, verbose=0)
    path = directory / "topics.bin"
    model.save_model(str(path))
    return path


def write_map(directory: Path, text: str, name: str = "map.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_foreign_labels_without_a_map_name_the_way_out(topic_model: Path) -> None:
    with pytest.raises(ModelError, match=r"expected exactly.*--label-map"):
        DomainModel.load(topic_model)


def test_map_sums_topics_of_one_domain(topic_model: Path, tmp_path: Path) -> None:
    model = DomainModel.load(topic_model, write_map(tmp_path, TOPIC_MAP))
    texts = [text for _, text in topic_texts(60, seed=5)]
    folded = model.predict_proba(texts)
    by_topic = model.predict_label_proba(texts)
    column = {label: i for i, label in enumerate(model.labels)}
    assert folded.shape == (60, len(DOMAINS))
    np.testing.assert_allclose(folded.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(
        folded[:, DOMAINS.index("finance")], by_topic[:, column["banking"]] + by_topic[:, column["markets"]]
    )
    np.testing.assert_allclose(folded[:, DOMAINS.index("code")], by_topic[:, column["python"]])
    expected = [TOPIC_SOURCES[topic] for topic, _ in topic_texts(60, seed=5)]
    assert np.mean([DOMAINS[i] == e for i, e in zip(folded.argmax(axis=1), expected, strict=True)]) > 0.9
    assert "+map-" in model.version


def test_unmapped_labels_go_to_other_unless_strict(topic_model: Path, tmp_path: Path) -> None:
    lenient = (
        "labels:\n  banking: finance\n  markets: finance\n  court: law\n  python: code\n  clinic: medical\n"
    )
    model = DomainModel.load(topic_model, write_map(tmp_path, lenient))
    texts = [text for topic, text in topic_texts(30, seed=6) if topic == "sports"]
    by_topic = model.predict_label_proba(texts)
    sports = by_topic[:, list(model.labels).index("sports")]
    np.testing.assert_allclose(model.predict_proba(texts)[:, DOMAINS.index("other")], sports)
    strict = write_map(tmp_path, "strict: true\n" + lenient, "strict.yaml")
    with pytest.raises(ModelError, match=r"strict.*sports"):
        DomainModel.load(topic_model, strict)


def test_sidecar_label_map_is_picked_up(topic_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bin"
    copy.write_bytes(topic_model.read_bytes())
    label_map_path_for(copy).write_text(TOPIC_MAP, encoding="utf-8")
    assert label_map_path_for(copy).name == "copy.labels.yaml"
    model = DomainModel.load(copy)
    assert model.label_map is not None and model.predict_proba(["court judge appeal"]).shape == (1, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("labels:\n  banking: money\n", "domains are"),
        ("labels: {}\n", "non-empty"),
        ("labels: [a, b]\n", "non-empty"),
        ("labels:\n  banking: finance\n strict: maybe\n", "YAML"),
        ("strict: maybe\nlabels:\n  banking: finance\n", "strict"),
        ("preprocessing: bert\nlabels:\n  banking: finance\n", "preprocessing"),
        ("colour: blue\nlabels:\n  banking: finance\n", "unknown keys"),
        ("labels:\n  football: other\n  tennis: other\n", "does not have"),
    ],
)
def test_bad_label_maps_are_one_line_model_errors(
    topic_model: Path, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ModelError, match=message) as caught:
        DomainModel.load(topic_model, write_map(tmp_path, text))
    assert "\n" not in caught.value.message


def test_missing_label_map_file(topic_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        DomainModel.load(topic_model, tmp_path / "nope.yaml")


def test_raw_preprocessing_feeds_the_text_as_is(topic_model: Path, tmp_path: Path) -> None:
    model = DomainModel.load(
        topic_model, write_map(tmp_path, "preprocessing: raw\nhead_chars: 5\n" + TOPIC_MAP)
    )
    assert model.normalise(["Hello,\nWorld! and more"]) == ["Hello"]
    assert model.head_chars == 5


def test_example_weborganizer_map_is_valid() -> None:
    label_map = read_label_map(EXAMPLE_MAP)
    assert len(label_map.mapping) == 24 and label_map.strict
    assert set(label_map.mapping.values()) == set(DOMAINS)
    assert label_map.mapping["finance_and_business"] == "finance"
    assert label_map.mapping["software_dev"] == "code"
    assert label_map.mapping["health"] == "medical"
    assert label_map.mapping["crime_and_law"] == "law"


def test_evaluate_and_run_with_a_label_map(topic_model: Path, tmp_path: Path) -> None:
    label_map = write_map(tmp_path, TOPIC_MAP)
    data = write_jsonl_gz(tmp_path / "eval.jsonl.gz", labeled_rows(50, seed=9))
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(topic_model), str(data), "--label-map", str(label_map)])
    assert result.exit_code == 0, result.stderr
    assert "macro-F1" in result.stdout and "confusion" in result.stdout
    refused = runner.invoke(main, ["evaluate", str(topic_model), str(data)])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error:") and refused.stderr.count("\n") == 1

    shard = write_fineweb_parquet(tmp_path / "000.parquet", corpus_documents(40, seed=1, prefix="a"))
    out = tmp_path / "out"
    args = ["run", str(shard), "--out", str(out), "--model", str(topic_model), "--workers", "1"]
    result = runner.invoke(
        main, [*args, "--label-map", str(label_map), "--no-progress", "--replicates", "10"]
    )
    assert result.exit_code == 0, result.stderr
    with duckdb.connect(str(out / "analysis.duckdb"), read_only=True) as db:
        sums = db.execute(
            "SELECT min(p_finance + p_law + p_code + p_medical + p_other) FROM documents"
        ).fetchone()
        assert sums is not None and sums[0] == pytest.approx(1.0)
        version = db.execute("SELECT model_version FROM runs").fetchone()
        assert version is not None and "+map-" in version[0]
        domains = db.execute("SELECT count(DISTINCT domain) FROM documents").fetchone()
        assert domains == (5,)
    refused = runner.invoke(main, [*args, "--no-progress"])
    assert refused.exit_code == 2 and "--label-map" in refused.stderr


def test_multi_label_threshold_tags_every_likely_domain(tiny_model: Path, tmp_path: Path) -> None:
    shard = write_fineweb_parquet(tmp_path / "000.parquet", corpus_documents(30, seed=1, prefix="a"))
    runner = CliRunner()
    base = [
        "run",
        str(shard),
        "--model",
        str(tiny_model),
        "--workers",
        "1",
        "--no-progress",
        "--replicates",
        "10",
    ]
    result = runner.invoke(main, [*base, "--out", str(tmp_path / "multi"), "--multi-label-threshold", "0.2"])
    assert result.exit_code == 0, result.stderr
    tags = pq.read_table(tags_file(tmp_path / "multi")).to_pylist()
    assert tags
    for row in tags:
        probs = {domain: row[f"p_{domain}"] for domain in DOMAINS}
        assert row["domains"][0] == row["domain"]
        expected = {domain for domain, p in probs.items() if p >= 0.2} or {row["domain"]}
        assert set(row["domains"]) == expected
    result = runner.invoke(main, [*base, "--out", str(tmp_path / "single")])
    assert result.exit_code == 0, result.stderr
    tags = pq.read_table(tags_file(tmp_path / "single")).to_pylist()
    assert all(row["domains"] is None for row in tags)
    bad = runner.invoke(main, [*base, "--out", str(tmp_path / "bad"), "--multi-label-threshold", "1.5"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error:")


def tags_file(out: Path) -> Path:
    """The one shard's tags parquet of a run (not its `.skipped.parquet`)."""
    (path,) = [p for p in (out / "tags").glob("*.parquet") if not p.name.endswith(".skipped.parquet")]
    return path
