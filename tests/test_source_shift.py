"""The source-shift term (analyzer/estimates/source_shift.py): misreading rows from leave-one-source-out
predictions, how unfamiliar an input reads, and intervals that widen for unfamiliar text only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzer.errors import ModelError
from analyzer.estimates.intervals import estimate_shares
from analyzer.estimates.source_shift import (
    SourceShift,
    load_source_shift,
    source_shift_from_predictions,
    unsure_share,
    unsure_share_and_error,
    write_source_shift,
)

S = 5
OTHER = 4


def one_hot_posteriors(predicted: np.ndarray, top: float) -> np.ndarray:
    """Posteriors with `top` on the predicted domain and the rest spread evenly."""
    out = np.full((predicted.size, S), (1.0 - top) / (S - 1))
    out[np.arange(predicted.size), predicted] = top
    return out


def test_rows_are_byte_weighted_misreading_per_source_and_label() -> None:
    labels = np.array([0] * 30 + [4] * 30 + [4] * 5)
    sources = np.array(["a"] * 60 + ["b"] * 5)
    predicted = np.array([0] * 20 + [4] * 10 + [4] * 20 + [0] * 10 + [4] * 5)
    n_bytes = np.array([1.0] * 20 + [3.0] * 10 + [1.0] * 30 + [1.0] * 5)
    shift = source_shift_from_predictions(labels, sources, n_bytes, one_hot_posteriors(predicted, 0.95), 0.1)
    # source b has 5 documents: below the minimum, no row
    assert shift.sources == ("a", "a")
    assert shift.true_index.tolist() == [0, 4]
    np.testing.assert_allclose(shift.rates[0], [0.4, 0, 0, 0, 0.6])  # 20 bytes right, 30 read as other
    np.testing.assert_allclose(shift.rates[1], [1 / 3, 0, 0, 0, 2 / 3])
    assert shift.unseen_unsure_share == 0.0
    assert shift.familiar_unsure_share == 0.1


def test_unfamiliar_fraction_runs_from_dev_level_to_unseen_level() -> None:
    shift = SourceShift(
        ("a",), np.array([0]), np.eye(S)[:1], familiar_unsure_share=0.1, unseen_unsure_share=0.3
    )
    assert shift.unfamiliar_fraction(0.05) == 0.0
    assert shift.unfamiliar_fraction(0.1) == 0.0
    assert shift.unfamiliar_fraction(0.2) == pytest.approx(0.5)
    assert shift.unfamiliar_fraction(0.6) == 1.0


def test_only_an_excess_beyond_devs_noise_counts_as_unfamiliar() -> None:
    shift = SourceShift(("a",), np.array([0]), np.eye(S)[:1], 0.1, 0.3, familiar_unsure_error=0.01)
    assert shift.unfamiliar_fraction(0.12) == 0.0  # two standard errors above dev: noise
    assert shift.unfamiliar_fraction(0.17) == pytest.approx(0.25)  # (0.17 - 0.1 - 0.02) / 0.2
    assert shift.unfamiliar_fraction(0.5) == 1.0


def test_unsure_share_and_its_standard_error_by_hand() -> None:
    posteriors = one_hot_posteriors(np.array([0, 1, 2, 3]), 0.95)
    posteriors[[0, 1]] = one_hot_posteriors(np.array([0, 1]), 0.5)
    weights = np.array([1.0, 1.0, 1.0, 1.0])
    share, error = unsure_share_and_error(posteriors, weights)
    assert share == 0.5
    assert error == pytest.approx(np.sqrt(4 * 0.25) / 4)


def test_deviations_are_the_share_error_one_source_per_domain_implies() -> None:
    # one row per domain: every replicate draws the same; other is read as finance 10 % of the time
    rates = np.eye(S)
    rates[OTHER] = [0.1, 0, 0, 0, 0.9]
    shift = SourceShift(tuple("abcde"), np.arange(S), rates, 0.1, 0.3)
    point = np.array([0.2, 0.1, 0.1, 0.1, 0.5])
    draws = shift.deviations(point, 0.5, 7, np.random.default_rng(0))
    # truth - CC: half the input unfamiliar, its other (0.5) over-read as finance by 0.1
    np.testing.assert_allclose(draws, np.tile([-0.025, 0, 0, 0, 0.025], (7, 1)), atol=1e-12)
    assert not shift.deviations(point, 0.0, 3, np.random.default_rng(0)).any()


def test_rows_round_trip_and_a_broken_file_names_itself(tmp_path: Path) -> None:
    rates = np.full((2, S), 0.2)
    shift = SourceShift(("x", "y"), np.array([1, 3]), rates, 0.12, 0.25, familiar_unsure_error=0.004)
    path = tmp_path / "m.source-shift.json"
    write_source_shift(shift, path)
    back = load_source_shift(path)
    assert back.sources == shift.sources
    np.testing.assert_array_equal(back.true_index, shift.true_index)
    np.testing.assert_allclose(back.rates, rates)
    assert (back.familiar_unsure_share, back.unseen_unsure_share, back.familiar_unsure_error) == (
        0.12,
        0.25,
        0.004,
    )
    path.write_text("{not json")
    with pytest.raises(ModelError, match=r"m\.source-shift\.json"):
        load_source_shift(path)


def unfamiliar_input(
    rng: np.random.Generator, misread: float, top: float, n: int = 4000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(true labels, cluster ids, weights, posteriors): `misread` of `other` read as finance, every
    posterior with top probability `top`."""
    shares = np.array([0.1, 0.08, 0.16, 0.08, 0.58])
    true = rng.choice(S, size=n, p=shares)
    predicted = true.copy()
    flipped = (true == OTHER) & (rng.random(n) < misread)
    predicted[flipped] = 0
    return true, np.arange(n) // 50, np.ones(n), one_hot_posteriors(predicted, top)


def test_interval_covers_an_unfamiliar_misreading_only_with_the_term() -> None:
    rng = np.random.default_rng(3)
    # held-out sources: other read as finance 2-8 % of the time; the rest read right
    rates = np.vstack([np.eye(S)[:OTHER], [[m, 0, 0, 0, 1 - m] for m in (0.02, 0.05, 0.08)]])
    shift = SourceShift(tuple("abcdefg"), np.array([0, 1, 2, 3, 4, 4, 4]), rates, 0.05, 0.5)
    true, clusters, weights, posteriors = unfamiliar_input(rng, misread=0.06, top=0.6)
    truth = np.bincount(true, minlength=S) / true.size
    plain = estimate_shares(clusters, weights, posteriors, "cc", replicates=400)
    shifted = estimate_shares(clusters, weights, posteriors, "cc", source_shift=shift, replicates=400)
    assert shifted.unfamiliar_fraction == 1.0  # every document is unsure
    assert not plain.input_lo[0] <= truth[0] <= plain.input_hi[0]
    assert shifted.input_lo[0] <= truth[0] <= shifted.input_hi[0]
    assert shifted.input_lo[OTHER] <= truth[OTHER] <= shifted.input_hi[OTHER]
    np.testing.assert_array_equal(shifted.point, plain.point)


def test_a_familiar_input_keeps_its_interval() -> None:
    rng = np.random.default_rng(4)
    rates = np.vstack([np.eye(S)[:OTHER], [[0.08, 0, 0, 0, 0.92]]])
    shift = SourceShift(tuple("abcde"), np.arange(S), rates, 0.05, 0.5)
    _, clusters, weights, posteriors = unfamiliar_input(rng, misread=0.0, top=0.99)
    plain = estimate_shares(clusters, weights, posteriors, "cc", replicates=200)
    shifted = estimate_shares(clusters, weights, posteriors, "cc", source_shift=shift, replicates=200)
    assert shifted.unfamiliar_fraction == 0.0
    np.testing.assert_array_equal(shifted.input_lo, plain.input_lo)
    np.testing.assert_array_equal(shifted.input_hi, plain.input_hi)


def test_unsure_share_weighs_rows() -> None:
    posteriors = one_hot_posteriors(np.array([0, 1, 2]), 0.95)
    posteriors[2] = one_hot_posteriors(np.array([2]), 0.5)[0]
    assert unsure_share(posteriors, np.array([1.0, 1.0, 2.0])) == 0.5


def test_training_rows_read_held_out_posteriors_as_the_model_would(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analyzer import DOMAINS
    from analyzer.training.data import LabeledData
    from analyzer.training.source_holdout import SourceHoldout
    from analyzer.training.source_shift_rows import shifted_posteriors, source_shift_of

    model = tmp_path / "m.bin"  # no sidecar: temperature 1; no metrics: the dev mean posterior
    dev_top = np.array([0.95] * 8 + [0.6] * 2)
    dev_probabilities = np.column_stack([dev_top] + [(1 - dev_top) / 4] * 4)
    pq.write_table(
        pa.table(
            {
                "label": ["finance"] * 10,
                **{f"p_{d}": dev_probabilities[:, k] for k, d in enumerate(DOMAINS)},
                "n_bytes": [10] * 10,
            }
        ),
        tmp_path / "m.dev-predictions.parquet",
    )
    n = 40
    labels = ["other"] * n
    sources = ["news"] * n
    texts = ["x" * 10] * n
    probabilities = one_hot_posteriors(np.array([0] * 10 + [4] * 30), 0.7)
    own_prior = [0.2, 0.2, 0.2, 0.2, 0.2]
    holdout = SourceHoldout([], None, n, [], {"news": own_prior}, probabilities)  # type: ignore[arg-type]
    shift = source_shift_of(holdout, LabeledData(texts, labels, sources), model)
    prior = dev_probabilities.mean(axis=0) / dev_probabilities.mean(axis=0).sum()
    moved = shifted_posteriors(probabilities, np.tile(own_prior, (n, 1)), 1.0, prior)
    assert shift.sources == ("news",)
    assert shift.true_index.tolist() == [OTHER]
    read = np.bincount(moved.argmax(axis=1), minlength=S) / n
    np.testing.assert_allclose(shift.rates[0], read)
    assert shift.familiar_unsure_share == pytest.approx(0.2)
    assert shift.familiar_unsure_error == pytest.approx(np.sqrt(8 * 0.2**2 + 2 * 0.8**2) / 10)
    assert shift.unseen_unsure_share == pytest.approx((moved.max(axis=1) < 0.9).mean())


def test_a_new_source_is_drawn_wider_than_the_sources_seen() -> None:
    from analyzer.estimates.source_shift import predictive_draws

    errors = np.array([[0.02, 0, 0, 0, -0.02], [0.06, 0, 0, 0, -0.06], [0.01, 0.01, 0, 0, -0.02]])
    draws = predictive_draws(errors, 200_000, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(axis=0), errors.mean(axis=0), atol=2e-4)
    expected = (1 + 1 / 3) * np.cov(errors, rowvar=False)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), expected, atol=2e-6)
    np.testing.assert_allclose(draws.sum(axis=1), 0, atol=1e-12)  # still share errors: they sum to 0
    single = predictive_draws(errors[:1], 4, np.random.default_rng(0))
    np.testing.assert_array_equal(single, np.repeat(errors[:1], 4, axis=0))


def one_shard_corpus(tmp_path: Path, documents: int) -> Path:
    from generated import corpus_documents, write_fineweb_parquet

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_fineweb_parquet(corpus / "a.parquet", corpus_documents(documents, seed=2, prefix="a"))
    return corpus


def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model and its companion files in a folder of their own, to put rows beside."""
    import shutil

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for path in tiny_model.parent.glob(f"{tiny_model.stem}.*"):
        shutil.copy(path, model_dir / path.name)
    return model_dir / tiny_model.name


def test_a_run_reports_how_unfamiliar_its_input_reads(tiny_model: Path, tmp_path: Path) -> None:
    from harness import run_and_open

    corpus = one_shard_corpus(tmp_path, 300)
    model = model_copy(tiny_model, tmp_path)
    model_dir = model.parent
    with run_and_open(corpus, tmp_path / "without", model) as db:  # no rows beside the model
        assert {row[0] for row in db.sql("SELECT unfamiliar_fraction FROM domain_shares").fetchall()} == {
            None
        }
    # the tiny model is unsure of most documents: dev's share 0.5 and an unseen one of 2 put it partway
    rows = SourceShift(("a",), np.array([OTHER]), np.array([[0.1, 0, 0, 0, 0.9]]), 0.5, 2.0)
    write_source_shift(rows, model_dir / f"{tiny_model.stem}.source-shift.json")
    with run_and_open(corpus, tmp_path / "with", model) as db:
        [(unsure,)] = db.sql(
            "SELECT sum(n_tokens) FILTER (WHERE greatest(p_finance, p_law, p_code, p_medical, p_other) < 0.9)"
            " / sum(n_tokens) FROM documents"
        ).fetchall()
        reported = [row[0] for row in db.sql("SELECT unfamiliar_fraction FROM domain_shares").fetchall()]
        expected = (unsure - 0.5) / 1.5
        assert 0 < expected < 1
        assert reported == [pytest.approx(expected)] * S
        by_group = db.sql("SELECT count(*) FROM share_estimates_by_group WHERE unfamiliar_fraction IS NULL")
        assert by_group.fetchall() == [(0,)]


def test_a_broken_rows_file_stops_the_run_before_any_tagging(tiny_model: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from analyzer.cli import main

    corpus = one_shard_corpus(tmp_path, 50)
    model = model_copy(tiny_model, tmp_path)
    (model.parent / f"{model.stem}.source-shift.json").write_text('{"version": 2}')
    out = tmp_path / "out"
    arguments = ["run", str(corpus), "--out", str(out), "--model", str(model)]
    result = CliRunner().invoke(main, [*arguments, "--workers", "1", "--no-progress"])
    assert result.exit_code != 0
    assert "source-shift.json" in result.stderr and "make classifier" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(out.glob("tags/*.done.json"))
