"""Parsing critiques and revisions as real models write them.

The templates ask for ``EVALUATION: ...`` then ``SUGGESTIONS: ...`` (critique) and ``REVISED ANSWER: ...``
(revision), as in PERSONA's App. B prompts (Castricato et al. 2024), which label the revision ``REVISED
PREFERENCE``. Models vary the labels, so the parsers accept:

* markdown around a label (``**Evaluation:**``, ``## Suggestions``, ``__REVISED ANSWER__:``), any case;
* renamed labels (:data:`ALIASES`: ``Assessment``, ``Recommendations``, ``Revised response``, ...);
* a missing label when the other part is there (text before ``SUGGESTIONS`` is the evaluation), and no
  label at all (the whole critique is the evaluation);
* a revision without any label (the whole text is the revision) when it holds no critique labels;
* text around the answer: a lead-in line ("Sure! Here is the revised answer:", "The original answer:"), quotes,
  code fences,
  ``<answer>`` tags and trailing notes ("Note: I removed ...", "Changes made: ...").

What they cannot read is returned as a failure string beginning ``unparseable:``; the caller keeps the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALIASES: dict[str, tuple[str, ...]] = {
    "evaluation": ("evaluation", "assessment", "analysis", "critique", "feedback"),
    "suggestions": (
        "suggested changes",
        "suggestions",
        "suggestion",
        "recommendations",
        "recommendation",
        "improvements",
        "changes",
    ),
    "revised": (
        "revised preference",
        "revised answer",
        "revised response",
        "revised reply",
        "revised version",
        "revised text",
        "improved answer",
        "rewritten answer",
        "revision",
        "revised",
    ),
}
"""Accepted spellings of each label, longest first (matched case-insensitively)."""

_MD = r"[*_`]{0,3}"


def _label_patterns(kind: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = "|".join(re.escape(a).replace(r"\ ", r"[ \t]+") for a in ALIASES[kind])
    # "Label:" anywhere (with markdown around the word or the colon), or a heading "## Label" alone on its line
    inline = re.compile(rf"(?i)(?<![\w<])[#>]*[ \t]*{_MD}[ \t]*(?:{names})[ \t]*{_MD}[ \t]*:[ \t]*{_MD}")
    heading = re.compile(
        rf"(?im)^[ \t]*(?:#{{1,6}}[ \t]*)?{_MD}[ \t]*(?:{names})[ \t]*{_MD}[ \t]*[-\u2013\u2014]?[ \t]*$"
    )
    return inline, heading


_PATTERNS = {kind: _label_patterns(kind) for kind in ALIASES}


def find_labels(text: str, kind: str) -> list[tuple[int, int]]:
    """Every ``(start, end)`` span of a ``kind`` label (``evaluation``, ``suggestions``, ``revised``) in order."""
    inline, heading = _PATTERNS[kind]
    spans = {(m.start(), m.end()) for m in inline.finditer(text)} | {
        (m.start(), m.end()) for m in heading.finditer(text)
    }
    out: list[tuple[int, int]] = []
    for span in sorted(spans):
        if out and span[0] < out[-1][1]:
            continue
        out.append(span)
    return out


_LEAD_IN = re.compile(
    r"(?i)^\s*(?:(?:sure|certainly|of course|okay|ok|here(?:'s| is| are)|below is|i(?:'ve| have) (?:revised|rewritten))"
    r"[^\n]{0,120}|[^\n]{0,60}\b(?:answer|response|reply|revision|version)\b[^\n]{0,60}):\s*\n"
)
_TRAILER = re.compile(
    r"(?im)^\s*[(\[]?\s*[*_]{0,2}(?:note|notes|explanation|changes made|this revis\w*|i (?:removed|shortened|kept|made)|"
    r"the revised (?:answer|version))\b[^\n]*(?:\n.*)*\Z"
)
_TAGS = re.compile(r"(?i)</?\s*(?:answer|reply|response|revised[_ ]answer|revision|critique)\s*>")
_FENCE = re.compile(r"^```[\w-]*\s*\n(.*?)\n?```\s*$", re.S)
_QUOTES = (('"', '"'), ("\u201c", "\u201d"), ("'", "'"))


def clean_answer(text: str) -> str:
    """The answer without the text models put around it (see the module docstring)."""
    out = _TAGS.sub("", text).strip()
    fence = _FENCE.match(out)
    if fence:
        out = fence.group(1).strip()
    out = _LEAD_IN.sub("", out, count=1).strip()
    trailer = _TRAILER.search(out)
    if trailer and trailer.start() > 0:
        out = out[: trailer.start()].strip()
    for left, right in _QUOTES:
        if len(out) >= 2 and out.startswith(left) and out.endswith(right) and out.count(left) <= 2:
            out = out[1:-1].strip()
            break
    return out.strip(" \t\n*_")


def _part(text: str) -> str:
    return re.sub(r"[ \t]+\n", "\n", text).strip().strip("*_ \t\n")


@dataclass(frozen=True)
class Critique:
    """A parsed critique."""

    evaluation: str
    suggestions: str
    labelled: bool = True
    """Whether the text had an EVALUATION or SUGGESTIONS label (without any, it is all evaluation)."""

    @property
    def text(self) -> str:
        """The critique in the template's form, as the revision prompt receives it."""
        parts = [f"EVALUATION: {self.evaluation}"] if self.evaluation else []
        if self.suggestions:
            parts.append(f"SUGGESTIONS: {self.suggestions}")
        return "\n".join(parts)


def parse_critique(raw: str) -> tuple[Critique | None, str]:
    """Read ``EVALUATION: ... SUGGESTIONS: ...`` from a critique.

    A text without either label is taken whole as the evaluation (``labelled`` False).

    Returns:
        ``(critique, "")``, or ``(None, "unparseable: ...")`` when nothing is left (both parts empty). Text
        after a ``REVISED ANSWER`` label (a model that also revised) is not part of the critique.
    """
    text = raw
    revised = find_labels(text, "revised")
    if revised:
        text = text[: revised[0][0]]
    evals = find_labels(text, "evaluation")
    suggs = find_labels(text, "suggestions")
    if evals:
        e_start, e_end = evals[0]
        after = [s for s in suggs if s[0] >= e_end]
        if after:
            evaluation = text[e_end : after[0][0]]
            suggestions = text[after[0][1] :]
        else:
            evaluation, suggestions = text[e_end:], ""
    elif suggs:
        evaluation, suggestions = text[: suggs[0][0]], text[suggs[0][1] :]
    else:
        # no label at all: the whole text is the evaluation (models often drop the labels)
        evaluation, suggestions = text, ""
    critique = Critique(_part(evaluation), _part(suggestions), labelled=bool(evals or suggs))
    if not critique.evaluation and not critique.suggestions:
        if critique.labelled:
            return None, "unparseable: the critique's EVALUATION and SUGGESTIONS parts are empty"
        return None, "unparseable: the critique is empty"
    return critique, ""


def parse_revision(raw: str) -> tuple[str | None, str]:
    """Read the revised answer: the text after the last ``REVISED ANSWER`` label (or the whole text).

    Returns:
        ``(revision, "")``, or ``(None, "unparseable: ...")`` when there is no label and the text is a critique
        (it holds EVALUATION or SUGGESTIONS labels), or nothing is left after cleaning.
    """
    labels = find_labels(raw, "revised")
    # the last label followed by some text: an echo of the template's form comes before the real answer
    for _start, end in reversed(labels):
        body = clean_answer(raw[end:])
        if body:
            return body, ""
    if labels:
        return None, "unparseable: nothing follows the REVISED ANSWER label"
    if find_labels(raw, "evaluation") or find_labels(raw, "suggestions"):
        return (
            None,
            "unparseable: no REVISED ANSWER label, and the text is a critique (EVALUATION/SUGGESTIONS)",
        )
    body = clean_answer(raw)
    if not body:
        return None, "unparseable: the revision is empty"
    return body, ""


def parse_single(raw: str) -> tuple[Critique | None, str | None, str]:
    """Read one answer holding the critique and the revision (the single-call ablation).

    Returns:
        ``(critique, revision, "")``; on failure the parts that could not be read are ``None`` and the reason
        is ``"unparseable: ..."``. A revision needs its label here, since the text also holds the critique.
    """
    labels = find_labels(raw, "revised")
    critique, failure = parse_critique(raw)
    if not labels:
        return critique, None, "unparseable: the answer has no REVISED ANSWER part"
    if critique is None:
        return None, None, failure
    revision, rev_failure = parse_revision(raw[labels[0][0] :])
    return critique, revision, rev_failure
