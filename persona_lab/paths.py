"""Where the project's embedded defaults and the shared development data live."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = REPO_DIR / "data"
"""Embedded defaults authored or computed by this project (census model parameters, offline prompts)."""
FIGURES_DIR = REPO_DIR / "figures"


def shared_data_dir() -> Path:
    """The real development data (``../shared/data`` beside the checkout), or ``$PERSONA_LAB_SHARED_DATA``."""
    env = os.environ.get("PERSONA_LAB_SHARED_DATA")
    return Path(env) if env else REPO_DIR.parent / "shared" / "data"
