"""Training and evaluation of the fastText domain classifier (library functions; the CLI wraps them)."""

from analyzer.training.card import write_model_card
from analyzer.training.data import read_labeled
from analyzer.training.evaluate import Evaluation, LabelScores, evaluate_model, evaluate_probabilities
from analyzer.training.train import (
    FastTextParams,
    TrainReport,
    build_classifier,
    train_domain_classifier,
)

__all__ = [
    "Evaluation",
    "FastTextParams",
    "LabelScores",
    "TrainReport",
    "build_classifier",
    "evaluate_model",
    "evaluate_probabilities",
    "read_labeled",
    "train_domain_classifier",
    "write_model_card",
]
