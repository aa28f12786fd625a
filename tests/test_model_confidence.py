"""`model_confidence` (sql/13_model_confidence.sql) and the run's line about it: how many documents
the model is unsure of, against its dev set, on a hand-made store."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from analyzer.cli import model_confidence_line
from analyzer.sql_library import load_sql

# (domain, n_tokens, top probability): the other four probabilities share the rest equally
DOCUMENTS = [
    ("finance", 100, 0.95),
    ("finance", 300, 0.60),
    ("law", 50, 0.89),
    ("code", 1000, 0.99),
    ("other", 200, 0.91),
    ("other", 400, 0.50),
]
DEV = [("finance", 0.97), ("finance", 0.70), ("law", 0.99), ("other", 0.95)]


def store(dev: list[tuple[str, float]]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    domains = ["finance", "law", "code", "medical", "other"]
    rows = []
    for domain, tokens, top in DOCUMENTS:
        probabilities = {f"p_{name}": (1 - top) / 4 for name in domains}
        probabilities[f"p_{domain}"] = top
        rows.append({"domain": domain, "n_tokens": tokens, **probabilities})
    connection.register("documents_source", pa.Table.from_pylist(rows))
    connection.execute("CREATE TABLE documents AS SELECT * FROM documents_source")
    connection.register(
        "dev_top_probabilities",
        pa.table(
            {"predicted": [d for d, _ in dev], "top_probability": [p for _, p in dev]},
            schema=pa.schema([("predicted", pa.string()), ("top_probability", pa.float64())]),
        ),
    )
    connection.execute(load_sql("13_model_confidence"), {"threshold": 0.9})
    return connection


def test_low_confidence_shares_by_hand() -> None:
    rows = store(DEV).execute("SELECT * FROM model_confidence").fetchall()
    by_domain = {row[0]: row[1:] for row in rows}
    assert [row[0] for row in rows] == ["finance", "law", "code", "other", "all"]  # no medical tagged
    # docs, tokens, low docs, low doc share, low token share, dev share, threshold
    assert by_domain["finance"] == (2, 400, 1, 0.5, 0.75, 0.5, 0.9)
    assert by_domain["law"] == (1, 50, 1, 1.0, 1.0, 0.0, 0.9)
    assert by_domain["code"][:5] == (1, 1000, 0, 0.0, 0.0) and by_domain["code"][5] is None
    assert by_domain["other"] == (2, 600, 1, 0.5, pytest.approx(400 / 600), 0.0, 0.9)
    assert by_domain["all"] == (6, 2050, 3, 0.5, pytest.approx(750 / 2050), 0.25, 0.9)


def test_without_dev_predictions_the_dev_column_is_null() -> None:
    rows = (
        store([]).execute("SELECT predicted, dev_low_confidence_doc_share FROM model_confidence").fetchall()
    )
    assert all(dev is None for _, dev in rows)


def test_run_line_calls_an_input_unfamiliar_only_well_above_dev() -> None:
    row = {"low_confidence_doc_share": 0.12, "dev_low_confidence_doc_share": 0.12, "threshold": 0.9}
    familiar = model_confidence_line(row)
    assert "12.0% of documents tagged" in familiar and "its dev set: 12.0%" in familiar
    assert "unfamiliar" not in familiar
    unfamiliar = model_confidence_line({**row, "low_confidence_doc_share": 0.25})
    assert "unfamiliar text" in unfamiliar
    assert "no dev predictions" in model_confidence_line({**row, "dev_low_confidence_doc_share": None})


def test_run_line_says_how_far_the_intervals_carry_unfamiliar_error() -> None:
    row = {"low_confidence_doc_share": 0.25, "dev_low_confidence_doc_share": 0.12, "threshold": 0.9}
    widened = model_confidence_line(row, 0.8)
    assert "80% of the way" in widened and "intervals carry" in widened
    assert "unfamiliar" not in model_confidence_line(row, 0.0)
