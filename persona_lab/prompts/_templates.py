"""The prompt stage's LLM templates: ``### system`` and ``### user`` sections in one file next to this module."""

from __future__ import annotations

from pathlib import Path

from persona_lab.templates import load_chat_template

PACKAGE = "persona_lab.prompts"
"""Where the templates live (``persona_lab.templates.load_chat_template(PACKAGE, name)``)."""

TEMPLATES: tuple[Path, ...] = tuple(
    Path(__file__).resolve().parent / name for name in ("controversy.txt", "topic_name.txt")
)
"""The template files of the prompt stage's requests (a run's fingerprint includes their text)."""


def chat_template(name: str) -> tuple[str, str]:
    """The ``(system, user)`` parts of template file ``name`` (e.g. ``"controversy.txt"``).

    Placeholders are written ``{name}`` and filled with ``str.replace`` (so literal braces, e.g. a JSON
    example, need no escaping).

    Raises:
        PersonaLabError: the file lacks one of the two sections or has another one (names the file).
    """
    return load_chat_template(PACKAGE, name)
