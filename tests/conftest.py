"""Shared fixtures: where the real public datasets live (outside the repository)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets (MovieLens, UCI Online Retail, CDNOW); skip when absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


def pytest_configure(config):
    """One embedding cache for the whole test session (all xdist workers), outside the home folder,
    so the real model embeds each distinct text once per machine instead of once per test."""
    import os
    import tempfile

    os.environ.setdefault("SEGLENS_CACHE_DIR", str(Path(tempfile.gettempdir()) / "seglens-test-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
