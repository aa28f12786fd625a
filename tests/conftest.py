"""Shared fixtures: a tiny model and small generated shards (never the shared data's text)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from generated import train_tiny_model

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "corpus" / "truth.parquet").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
