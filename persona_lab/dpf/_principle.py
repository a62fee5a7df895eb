"""Principles: what a critique judges and a revision fixes, as template files shipped with the package.

A principle is a name, three template files in ``principles/<name>/`` (``critique.txt``, ``revision.txt`` and
``single.txt`` for the one-call ablation), the variables its templates need beyond the conversation, and the
labels its outputs carry. Templates have a ``### system`` and a ``### user`` section; placeholders are written
``{name}`` and filled with ``str.replace`` (``{conversation}``, ``{original}``, ``{critique}`` and the principle's
own variables), so braces in the filled text need no escaping.

Two principles ship:

* ``persona``: PERSONA's feedback pairs (Castricato et al. 2024, Sec. 3.3 and App. B). The critique evaluates
  the answer from the persona's point of view (where it resonates and where it does not, quoting persona and
  answer; the persona prefers short answers) and then suggests changes; the revision follows it subtly, never
  naming the persona's attributes, shorter than the original, and returns only the revised answer.
* ``pink_elephant``: Suppressing Pink Elephants with Direct Principle Feedback (Castricato et al. 2024,
  arXiv 2402.07896, Sec. 3): do not mention or imply the Pink Elephant ``{pink}``; steer to the Grey Elephant
  ``{grey}``. A revision that still names ``{pink}`` is a failure (:attr:`Principle.forbidden`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from persona_lab.errors import PersonaLabError
from persona_lab.templates import split_chat_sections

PRINCIPLE_DIR = Path(__file__).resolve().parent / "principles"
"""Directory of the shipped principles, one subdirectory each."""

EVALUATION = "EVALUATION"
SUGGESTIONS = "SUGGESTIONS"
REVISED = "REVISED ANSWER"
"""The labels the templates ask for (PERSONA App. B writes ``REVISED PREFERENCE``; the parser accepts both)."""

CONTEXT_VARIABLES = ("conversation", "original", "critique")
"""Placeholders every principle's templates may use, filled by the engine."""

_SETTINGS: dict[str, dict[str, object]] = {
    "persona": {
        "variables": ("persona",),
        "forbidden": (),
        "critique_max_tokens": 384,
        "revision_max_tokens": 384,
    },
    "pink_elephant": {
        "variables": ("pink", "grey"),
        "forbidden": ("pink",),
        "critique_max_tokens": 256,
        "revision_max_tokens": 256,
    },
}


@dataclass(frozen=True)
class Principle:
    """A DPF principle: templates, variables and how its outputs are parsed.

    Attributes:
        name: ``"persona"`` or ``"pink_elephant"``.
        critique_template: the critique prompt (``### system`` / ``### user`` text with ``{placeholders}``); the
            answer gives ``EVALUATION: ...`` then ``SUGGESTIONS: ...``.
        revision_template: the revision prompt; the answer is ``REVISED ANSWER: ...`` and nothing else.
        single_template: critique and revision in one call (the ablation): the three labels in one answer.
        variables: the principle's own placeholders, which every item's ``variables`` must give.
        forbidden: variables whose value must not occur in a revision (``pink``): a revision naming it fails.
        critique_max_tokens: default output budget of a critique.
        revision_max_tokens: default output budget of a revision.
        files: the template files (part of a stage's fingerprint).
        fingerprint: sha256 of the three templates, in provenance and in stage fingerprints.
    """

    name: str
    critique_template: str
    revision_template: str
    single_template: str
    variables: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    critique_max_tokens: int = 384
    revision_max_tokens: int = 384
    files: tuple[Path, ...] = ()
    fingerprint: str = ""

    def sections(self, which: str) -> tuple[str, str]:
        """``(system, user)`` of template ``which`` (``"critique"``, ``"revision"`` or ``"single"``), unfilled."""
        text = {
            "critique": self.critique_template,
            "revision": self.revision_template,
            "single": self.single_template,
        }[which]
        return _split_cached(text, f"{self.name}/{which}.txt")

    def instructions(self, which: str) -> tuple[str, ...]:
        """The unfilled template texts an answer must not echo (for ``degenerate_reason``)."""
        return self.sections(which)


def split_sections(text: str, where: str) -> tuple[str, str]:
    """Split a template into its ``### system`` and ``### user`` sections (``persona_lab.templates``)."""
    return split_chat_sections(text, where)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=64)
def _split_cached(text: str, where: str) -> tuple[str, str]:
    return split_sections(text, where)


@lru_cache(maxsize=64)
def _segments(template: str) -> tuple[str, ...]:
    """``template`` split at its placeholders: literal text at even positions, placeholder names at odd ones."""
    return tuple(_PLACEHOLDER.split(template))


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``{name}`` of ``values`` in ``template`` in one pass, so a filled text that holds
    ``{critique}`` is never expanded; other braces stay as they are."""
    parts = _segments(template)
    out = [part if i % 2 == 0 else values.get(part, "{" + part + "}") for i, part in enumerate(parts)]
    return "".join(out)


def principle_names() -> list[str]:
    """The shipped principles."""
    return sorted(_SETTINGS)


@cache
def load_principle(name: str) -> Principle:
    """The shipped principle ``name`` with its templates read from ``principles/<name>/``.

    Raises:
        PersonaLabError: unknown name (lists the known ones), or a template file missing or malformed.
    """
    if name not in _SETTINGS:
        raise PersonaLabError(
            f"unknown DPF principle {name!r}; the principles are: {', '.join(principle_names())}"
        )
    texts: dict[str, str] = {}
    files: list[Path] = []
    for which in ("critique", "revision", "single"):
        ref = resources.files("persona_lab.dpf").joinpath(f"principles/{name}/{which}.txt")
        try:
            texts[which] = ref.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PersonaLabError(
                f"{ref}: cannot read the {which} template of principle {name!r} ({exc})"
            ) from exc
        split_sections(texts[which], f"{ref}")
        files.append(PRINCIPLE_DIR / name / f"{which}.txt")
    digest = hashlib.sha256()
    for which in ("critique", "revision", "single"):
        digest.update(which.encode() + b"\0" + texts[which].encode() + b"\0")
    settings = _SETTINGS[name]
    principle = Principle(
        name=name,
        critique_template=texts["critique"],
        revision_template=texts["revision"],
        single_template=texts["single"],
        variables=tuple(settings["variables"]),  # type: ignore[arg-type]
        forbidden=tuple(settings["forbidden"]),  # type: ignore[arg-type]
        critique_max_tokens=int(settings["critique_max_tokens"]),  # type: ignore[call-overload]
        revision_max_tokens=int(settings["revision_max_tokens"]),  # type: ignore[call-overload]
        files=tuple(files),
        fingerprint=digest.hexdigest(),
    )
    for which in ("critique", "revision", "single"):
        system, user = principle.sections(which)
        needed = set(principle.variables) | {"original", "conversation"}
        if which == "revision":
            needed.add("critique")
        absent = sorted(v for v in needed if "{" + v + "}" not in system + user)
        if absent:
            raise PersonaLabError(
                f"principle {name!r}, {which}.txt: the template lacks placeholder(s) {absent}"
            )
    return principle
