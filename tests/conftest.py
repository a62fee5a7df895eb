from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.paths import shared_data_dir

SHARED = shared_data_dir()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real development data in ../shared/data (never copied into the repository)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the real data from ../shared/data")
    return SHARED
