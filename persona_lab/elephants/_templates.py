"""The Pink Elephants prompt templates: text files in ``templates/`` beside this module.

A template has a ``### system`` and a ``### user`` section (``avoid.txt``, a system message on its own, has
neither); placeholders are written ``{name}`` and filled with ``str.replace``, so braces in the filled text need no
escaping. The files are part of the elephants stage's fingerprint and of every request built from them, so an
edited template never reuses old answers.
"""

from __future__ import annotations

from pathlib import Path

from persona_lab.errors import PersonaLabError
from persona_lab.templates import load_template

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
"""Directory of the templates."""

TEMPLATE_FILES = ("pairs.txt", "plan.txt", "dialogue.txt", "judge.txt", "avoid.txt")
"""Every template the package uses."""


def template_text(name: str) -> str:
    """The raw text of template ``name`` (e.g. ``"avoid.txt"``)."""
    return load_template("persona_lab.elephants", f"templates/{name}").strip()


def template_sections(name: str) -> tuple[str, str]:
    """``(system, user)`` of template ``name``, unfilled.

    Raises:
        PersonaLabError: the file lacks a ``### system`` or ``### user`` section (names the file).
    """
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for line in template_text(name).splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            parts[current] = []
        elif current is not None:
            parts[current].append(line)
    if set(parts) != {"system", "user"}:
        raise PersonaLabError(
            f"{TEMPLATE_DIR / name}: expected a '### system' and a '### user' section, found {sorted(parts)}"
        )
    return "\n".join(parts["system"]).strip(), "\n".join(parts["user"]).strip()


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``{name}`` of ``values`` in ``template``."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def avoid_instruction(pink: str, grey: str) -> str:
    """The avoid instruction: the system message of the DPO pairs and of the evaluation's "with" condition.

    Examples:
        >>> avoid_instruction("Adidas", "Nike").split(".")[1].strip()
        'Do not mention Adidas or anything that belongs to it (its products, people or slogans), not even indirectly'
    """
    return fill(template_text("avoid.txt"), {"pink": pink, "grey": grey})
