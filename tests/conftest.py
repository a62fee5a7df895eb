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


ADULT_ROW: dict[str, object] = {
    "age": 40,
    "sex": "Female",
    "race": "White alone",
    "ancestry": "Irish",
    "household language": "English only",
    "education": "Bachelor's degree",
    "employment status": "Civilian employed, at work",
    "class of worker": "State government employee",
    "industry category": "EDU-Elementary And Secondary Schools",
    "occupation category": "EDU-Elementary And Middle School Teachers",
    "income": 52000.0,
    "marital status": "Married",
    "household type": "Married couple household with children of the householder less than 18",
    "family presence and age": "With related children 5 to 17 years only",
    "place of birth": "Vermont/VT",
    "citizenship": "Born in the United States",
    "veteran status": "Non-Veteran",
    "disability": "None",
    "health insurance": "With health insurance coverage",
    "cognitive difficulty": "No cognitive difficulty",
    "ability to speak english": None,
    "vision difficulty": "No vision difficulty",
    "fertility": "No birth within the past 12 months",
    "hearing difficulty": "No hearing difficulty",
    "weight": 12.0,
    "serialno": "2018HU0000001",
    "state": "VT",
}
"""One persona-frame row (a 40-year-old teacher in Vermont) that persona tests vary with ``ADULT_ROW | {...}``."""
