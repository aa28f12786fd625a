"""Weak supervision: URL seed rules label an unlabeled corpus, a model is trained and self-trained.

Rules are checked on hand-written URLs; the loop runs on generated shards (made-up vocabularies),
never on ../shared."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from generated import corpus_documents, labeled_rows, train_tiny_model, write_fineweb_parquet, write_jsonl_gz

from analyzer import DOMAINS
from analyzer.classifier_model import DomainModel
from analyzer.cli import main
from analyzer.errors import InputError
from analyzer.symbol_density import SYMBOL_DENSITY_BINS
from analyzer.training.weak_supervision import (
    WeakSupervisionOptions,
    load_seed_rules,
    split_url,
    train_weakly_supervised,
)

SHIPPED_SEEDS = Path(__file__).resolve().parents[1] / "classifiers" / "seeds"


def write_rules(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.sec.gov/Archives/edgar/data/1/0001.htm", "finance"),
        ("https://www.federalreserve.gov/monetarypolicy/fomcminutes.htm", "finance"),
        ("https://www.investopedia.com/terms/b/bond.asp", "finance"),
        ("https://www.law.cornell.edu/uscode/text/15/78j", "law"),
        ("https://www.courtlistener.com/opinion/1/x/", "law"),
        ("https://github.com/python/cpython/blob/main/Lib/os.py", "code"),
        ("https://stackoverflow.com/questions/1/how", "code"),
        ("https://docs.python.org/3/library/os.html", "code"),
        ("https://pubmed.ncbi.nlm.nih.gov/12345/", "medical"),
        ("https://www.mayoclinic.org/diseases-conditions/x", "medical"),
        ("https://example-smith-lawyers.com/about", "law"),
        ("https://blog.example.com/docs/getting-started", "code"),
        ("https://www.imdb.com/title/tt0000001/reviews", None),
        ("https://en.wikipedia.org/wiki/Stock_exchange", None),
        # placeholders are never matched, however finance-like they look
        ("https://www.sec.gov.invalid/Archives/x", None),
        ("https://github.com.invalid/docs/api/", None),
        ("https://site-42.invalid/opinions/", None),
        ("", None),
        (None, None),
        ("not a url", None),
    ],
)
def test_shipped_seed_rules(url: str | None, domain: str | None) -> None:
    assert load_seed_rules(SHIPPED_SEEDS).label(url) == domain


def test_shipped_seed_files_cover_the_four_domains() -> None:
    rules = load_seed_rules(SHIPPED_SEEDS)
    assert set(rules.hosts.values()) == {"finance", "law", "code", "medical"}
    assert not any(host.endswith(".invalid") for host in rules.hosts)


def test_hosts_decide_and_conflicting_patterns_abstain(tmp_path: Path) -> None:
    rules = load_seed_rules(
        write_rules(
            tmp_path / "rules",
            {
                "a.yaml": "domain: code\nhosts: [example.org]\npath_patterns: ['/api/']\n",
                "b.yaml": "domain: law\nhost_patterns: [legal]\npath_patterns: ['/opinions/']\n",
            },
        )
    )
    assert rules.label("https://www.EXAMPLE.org/opinions/1") == "code"  # host wins, www. and case ignored
    assert rules.label("https://sub.example.org/") == "code"  # subdomains match
    assert rules.label("https://notexample.org/") is None  # but not a longer name
    assert rules.label("https://legal.test.com/api/") is None  # code and law disagree
    assert rules.label("https://legal.test.com/x") == "law"
    assert rules.label("https://x.test.com/opinions/api/v1") is None
    assert split_url("https://Example.ORG.invalid/x") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("domain: sports\nhosts: [a.com]\n", "domain"),
        ("domain: law\nhosts: [court.invalid]\n", "placeholder"),
        ("domain: law\npath_patterns: ['(']\n", "regex"),
        ("domain: law\nhosts: a.com\n", "list"),
        ("domain: [\n", "YAML"),
    ],
)
def test_bad_seed_rules_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_seed_rules(write_rules(tmp_path / "rules", {"bad.yaml": text}))
    with pytest.raises(InputError, match="no seed-rule"):
        load_seed_rules(tmp_path / "empty-dir-that-does-not-exist")


TEST_RULES = {
    # sites 0 and 1 of each domain are known hosts; other sites are left for self-training
    f"{domain}.yaml": f"domain: {domain}\nhosts: [{domain}-site-0.example.com, {domain}-site-1.example.com]\n"
    for domain in ("finance", "law", "code", "medical")
}


@pytest.fixture()
def unlabeled(tmp_path: Path) -> list[Path]:
    """Two generated shards; every third document has a placeholder (.invalid) URL."""
    records = corpus_documents(500, seed=1, prefix="a")
    for index, record in enumerate(records):
        if index % 3 == 2:
            record["url"] = record["url"].replace(".example.com", ".example.com.invalid")
    return [
        write_fineweb_parquet(tmp_path / "000.parquet", records[:250]),
        write_fineweb_parquet(tmp_path / "001.parquet", records[250:]),
    ]


def test_weak_supervision_trains_and_self_trains(tmp_path: Path, unlabeled: list[Path]) -> None:
    dev = write_jsonl_gz(tmp_path / "dev.jsonl.gz", labeled_rows(150, seed=2))
    rules = write_rules(tmp_path / "rules", TEST_RULES)
    messages: list[str] = []
    result = train_weakly_supervised(
        rules,
        [str(path) for path in unlabeled],
        tmp_path / "out",
        "weak",
        dev_path=dev,
        options=WeakSupervisionOptions(rounds=2, min_per_domain=50),
        log=messages.append,
    )
    assert result.documents == 500 and result.usable_urls == 500 - 500 // 3
    # sites 0 and 1 of 7, minus the placeholder third: only real-URL documents are seeds
    labels = ("finance", "law", "code", "medical", "other")  # corpus_documents cycles through these
    expected = Counter(labels[i % 5] for i in range(500) if i % 7 in (0, 1) and i % 3 != 2)
    assert result.rule_counts == {domain: expected[domain] for domain in result.rule_counts}
    first, last = result.rounds[0], result.rounds[-1]
    assert len(result.rounds) == 3
    for domain in ("finance", "law", "code", "medical"):
        assert last["training_documents"][domain] > first["training_documents"][domain]
    assert result.dev is not None and result.dev.macro_f1 > 0.9
    model = DomainModel.load(result.model_path)
    assert model.labels == DOMAINS and model.head_chars == 4000
    assert model.markers.lexicon is None  # the library's options default to no lexicon
    report = json.loads(Path(result.report_path).read_text())
    assert report["rule_counts"] == result.rule_counts and len(report["rounds"]) == 3
    assert any("round 2" in message for message in messages)


def test_weak_supervision_cli(tmp_path: Path, unlabeled: list[Path]) -> None:
    rules = write_rules(tmp_path / "rules", TEST_RULES)
    out = tmp_path / "out"
    args = ["train", "--seed-rules", str(rules), "--seed-rules", str(rules / "code.yaml")]  # repeatable
    args += ["--out-dir", str(out), "--name", "weak", "--rounds", "1"]
    args += ["--dev", str(tmp_path / "no-dev.jsonl.gz"), "--unlabeled", str(unlabeled[0]), str(unlabeled[1])]
    out.mkdir()
    stale = out / "weak.dev-predictions.parquet"
    stale.write_bytes(b"an earlier model's")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert not stale.exists(), "dev predictions of an earlier model would drive the share correction"
    report = json.loads((out / "weak.weak-supervision.json").read_text())
    assert report["documents"] == 500 and report["dev"] is None
    assert (out / "weak.bin").is_file() and (out / "weak.json").is_file()
    # like `analyzer train`, weak supervision reads the shipped lexicon's markers unless told not to
    sidecar = json.loads((out / "weak.json").read_text())
    assert sidecar["lexicon"]["name"] == "domain-lexicon-v4"
    assert sidecar["symbol_density_bins"] == list(SYMBOL_DENSITY_BINS)
    assert DomainModel.load(out / "weak.bin").markers.lexicon is not None


def test_rules_matching_no_document_of_a_domain_fail_clearly(tmp_path: Path, unlabeled: list[Path]) -> None:
    rules = write_rules(tmp_path / "rules", {k: v for k, v in TEST_RULES.items() if k != "law.yaml"})
    args = ["train", "--seed-rules", str(rules), "--unlabeled", str(unlabeled[0]), "--out-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: seed rules matched no law document")
    assert result.stderr.splitlines()[-1] == errors[0]  # progress lines come before it, nothing after


def test_text_patterns_decide_only_when_the_url_says_nothing(tmp_path: Path) -> None:
    rules = load_seed_rules(
        [
            write_rules(tmp_path / "url", {"code.yaml": "domain: code\nhosts: [code.example.com]\n"}),
            write_rules(
                tmp_path / "text",
                {
                    "law.yaml": "domain: law\ntext_min_hits: 2\ntext_patterns: [plaintiff, defendant]\n",
                    "finance.yaml": "domain: finance\ntext_patterns: [dividend, equity, bond]\n",
                },
            ),
        ]
    )
    assert rules.reads_text and rules.text_min_hits == {"law": 2}
    assert rules.label("https://a.invalid/x", "The PLAINTIFF sued the defendant.") == "law"
    assert rules.label(None, "The plaintiff only.") is None  # one hit is not enough
    assert rules.label("https://code.example.com/", "plaintiff defendant") == "code"  # URL first
    assert rules.label(None, "plaintiff defendant dividend equity") == "law"  # finance needs 3
    assert rules.label(None, "plaintiff defendant dividend equity bond") is None  # two domains qualify
    assert rules.label(None, "x " * 3000 + "plaintiff defendant") is None  # only the head is read


def test_text_rules_let_placeholder_documents_be_seeds_and_other(
    tmp_path: Path, unlabeled: list[Path]
) -> None:
    from generated import VOCABULARY

    text_rules = {
        f"{domain}.yaml": f"domain: {domain}\ntext_patterns: {VOCABULARY[domain][:8]}\n"
        for domain in ("finance", "law", "code", "medical")
    }
    rules = [write_rules(tmp_path / "url", TEST_RULES), write_rules(tmp_path / "text", text_rules)]
    result = train_weakly_supervised(
        rules, [str(unlabeled[0])], tmp_path / "out", "weak", options=WeakSupervisionOptions(rounds=0)
    )
    # the text rules reach documents whose URL is a placeholder, far beyond the two known sites
    assert all(count > 250 // 5 * 2 // 7 + 5 for count in result.rule_counts.values())
    assert result.rounds[0]["training_documents"]["other"] > 0


def test_dev_documents_seen_by_self_training_are_scored_apart(tmp_path: Path, unlabeled: list[Path]) -> None:
    # 40 dev documents are texts of the unlabeled corpus: self-training read (and pseudo-labelled)
    # them, so the fair comparison leaves them out
    corpus = corpus_documents(500, seed=1, prefix="a")
    labels = ("finance", "law", "code", "medical", "other")
    overlap = [{"text": record["text"], "label": labels[i % 5]} for i, record in enumerate(corpus[:40])]
    dev = write_jsonl_gz(tmp_path / "dev.jsonl.gz", labeled_rows(150, seed=2) + overlap)
    supervised = train_tiny_model(tmp_path)
    result = train_weakly_supervised(
        write_rules(tmp_path / "rules", TEST_RULES),
        [str(path) for path in unlabeled],
        tmp_path / "out",
        "weak",
        dev_path=dev,
        options=WeakSupervisionOptions(rounds=1, min_per_domain=50),
        supervised_model=supervised,
        log=lambda message: None,
    )
    assert result.dev is not None and result.dev.n_docs == 190
    assert result.dev_unseen is not None and result.dev_unseen.n_docs == 150
    assert set(result.supervised) == {"all", "unseen"} and result.supervised["unseen"].n_docs == 150
    report = json.loads(Path(result.report_path).read_text())
    assert report["dev_unseen_documents"] == 150 and report["supervised"]["unseen"]["n_docs"] == 150
    assert all(round_["dev_unseen_macro_f1"] is not None for round_ in report["rounds"])
