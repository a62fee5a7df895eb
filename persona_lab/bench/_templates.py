"""The bench's prompt templates: ``### system`` / ``### user`` text files next to this module.

Placeholders are written ``{name}`` and filled with ``str.replace``, so braces in a persona or a question need no
escaping. A template's text is part of every request built from it (and of the bench stage's fingerprint), so
editing one never reuses old answers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from persona_lab.templates import load_template, split_chat_sections

TEMPLATE_DIR = Path(__file__).resolve().parent
"""Directory of the bench's templates."""

TEMPLATE_FILES: tuple[str, ...] = (
    "mode_baseline.txt",
    "mode_output_only.txt",
    "mode_chain_of_thought.txt",
    "mode_persona_summary.txt",
    "critic.txt",
    "subtlety.txt",
    "summary_judge.txt",
)
"""Every template of the bench."""


@cache
def sections(name: str) -> tuple[str, str]:
    """``(system, user)`` of template ``name`` (e.g. ``"critic.txt"``), unfilled."""
    return split_chat_sections(load_template("persona_lab.bench", name), str(TEMPLATE_DIR / name))


def fill(text: str, **values: str) -> str:
    """Replace each ``{name}`` in ``text`` by its value."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def template_paths() -> tuple[Path, ...]:
    """The template files (for the stage fingerprint)."""
    return tuple(TEMPLATE_DIR / name for name in TEMPLATE_FILES)
