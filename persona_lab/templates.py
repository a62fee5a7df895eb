"""Prompt templates: text files shipped next to the code that uses them, read by one helper.

A template is part of every request built from it, so the response cache key changes with its text and an
edited template never reuses old answers (the convention of alpaca_eval's judges: configuration plus a
prompt file). Each stage decides how its templates are filled (``string.Template`` placeholders, ``{name}``
replaced with ``str.replace``). A chat template holds both messages of a request in one file, as a
``### system`` section followed by a ``### user`` section (:func:`load_chat_template`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from persona_lab.errors import PersonaLabError


@cache
def load_template(package: str, name: str) -> str:
    """The text of template file ``name`` shipped in ``package``.

    Args:
        package: the package the template sits in, e.g. ``"persona_lab.personas"``.
        name: the file name inside it, e.g. ``"enrich_user.txt"`` (a relative path such as
            ``"prompts/ping.txt"`` is allowed).

    Raises:
        PersonaLabError: the file is missing or unreadable (names the file; a broken installation).
    """
    ref = resources.files(package).joinpath(name)
    try:
        return ref.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaLabError(
            f"{ref}: cannot read prompt template {name!r} of {package} ({exc}); reinstall persona-lab"
        ) from exc


def split_chat_sections(text: str, where: str) -> tuple[str, str]:
    """The ``(system, user)`` sections of a chat template's text, each stripped.

    Sections start at lines ``### system`` and ``### user``; text before the first section is ignored.

    Raises:
        PersonaLabError: a section is missing or another one is present (names ``where``, the file).
    """
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            parts[current] = []
        elif current is not None:
            parts[current].append(line)
    if set(parts) != {"system", "user"}:
        raise PersonaLabError(
            f"{where}: expected a '### system' and a '### user' section, found {sorted(parts)}"
        )
    return "\n".join(parts["system"]).strip(), "\n".join(parts["user"]).strip()


def load_chat_template(package: str, name: str) -> tuple[str, str]:
    """The ``(system, user)`` parts of chat template file ``name`` shipped in ``package``."""
    return split_chat_sections(load_template(package, name), f"{resources.files(package).joinpath(name)}")
