"""Degenerate answers: well-formed text that says nothing, recognised the same way by every stage.

A model can answer in the requested form (valid JSON, a string in every field) without answering: small
models in particular echo the instruction back ("Is this profile self-consistent?"), repeat a phrase of the
template ("(2 to 5 words)"), write the same boilerplate sentence into every field of one answer ("The
person's lifestyle is a mix of traits that make them interesting and unique") or give an empty rationale.
Such an answer passes the JSON schema, so the runner returns it as an ``LLMResponse``; the stage that reads
it asks :func:`degenerate_reason` (or :func:`degenerate_fields` for the fields of one answer,
:func:`degenerate_items` for answers about different items) and records a non-``None`` reason as a failure
with kind :data:`DEGENERATE` (see :func:`degenerate_failure`), keeping the raw text. It is never counted as
success. Degenerate answers stay in the response cache: a rerun replays them and records the same failure.

Text is compared as words: case-folded runs of letters and digits (``"Self-consistent?"`` is ``self
consistent``), so punctuation, case, spacing and quotes never hide an echo. The checks, in order:

1. **empty**: no word at all (``""``, whitespace, ``"..."``, ``"{}"``).
2. **empty rationale** (only with ``rationale=True``, for a reason, critique or justification): every word
   is a bare verdict or placeholder (:data:`NON_RATIONALE_WORDS`: ``yes``, ``true``, ``consistent``,
   ``n/a``, ...).
3. **echoes the instruction**: against each instruction text (the request's templates, unfilled, and its
   JSON-schema field descriptions), the answer (a) of at least :data:`ECHO_MIN_WORDS` words occurs in the
   instruction word for word, or (b) contains a whole instruction sentence of at least
   :data:`ECHO_MIN_WORDS` words, or (c) shares a run of :data:`ECHO_RUN_WORDS` consecutive words with it.
   Shorter answers are exempt from (a) because templates legitimately suggest short answers
   (``"No conflicting attributes"``, ``"Moderate"``, ``"Not applicable"``). Pass templates unfilled: the
   data filled into a prompt (a profile, a question) may rightly be quoted by the answer.
4. **same text as another field** (or item): an answer of at least ``same_min_words`` words whose words
   equal those of a sibling answer; **nearly the same text**: both have at least
   :data:`NEAR_MIN_WORDS` words and their word sequences match to :data:`NEAR_RATIO` or more
   (``difflib.SequenceMatcher`` ratio), i.e. the same sentence with a word or two swapped (for items only
   on request, ``near=True``). An answer of at least :data:`ALL_SAME_MIN_FIELDS` fields with one text in
   all of them is degenerate in every field, however short the text.

Calibration: on the 100 released PERSONA personas (GPT-4 output) the checks flag no open-ended value with
the enrichment templates as instructions: the only values repeated within one persona there have one or two
words ("Not applicable" in ideology and political views of a child), which the default
``same_min_words`` of :data:`SAME_MIN_WORDS` exempts. On a tiny run of the local SmolLM2-135M (24 personas,
2 enriched) they flag 21 of the 24 consistency reasons (20 repeat "Is this profile self-consistent?", one
is "Yes") and both enrichment answers (one sentence pattern, "The person's ... are a great example of how
a person can express themselves in a unique way", in all seven fields).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache

DEGENERATE = "degenerate"
"""Failure kind of a degenerate answer: failure strings read ``"degenerate: <reason>"``."""

ECHO_MIN_WORDS = 4
"""An answer (or an instruction sentence) of at least this many words that occurs in the instruction (the
answer) is an echo. ``"2 to 5 words"`` has four; ``"No conflicting attributes"`` (three) is exempt."""

ECHO_RUN_WORDS = 8
"""Sharing this many consecutive words with an instruction is an echo, whatever else the answer says."""

SAME_MIN_WORDS = 3
"""Answers with at least this many words must not repeat a sibling (two fields both "Not applicable" or both
"Still forming" are legitimate, as in the released PERSONA personas)."""

ALL_SAME_MIN_FIELDS = 3
"""An answer with at least this many fields that has one text in all of them is degenerate whatever the length
of that text (a child's "Not applicable" in two fields is not; in all seven it is)."""

NEAR_MIN_WORDS = 6
"""Near-duplicates are only looked for between answers of at least this many words."""

NEAR_RATIO = 0.85
"""Word-sequence similarity (``difflib.SequenceMatcher.ratio``) from which two answers count as nearly the
same text: one swapped word in a 12-word sentence gives 11/12 = 0.92."""

NON_RATIONALE_WORDS = frozenset(
    "yes no true false consistent inconsistent none null nan n a na ok okay reason answer verdict".split()
)
"""Words that alone do not make a rationale: verdicts, JSON keys and placeholders (``"N/A"``, ``"null"``)."""

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.?!;:\n()\[\]{}\"]+")


def words(text: str) -> tuple[str, ...]:
    """The comparison form of a text: its case-folded runs of letters and digits, in order."""
    return tuple(_WORD.findall(str(text).casefold()))


def _joined(ws: Sequence[str]) -> str:
    return " " + " ".join(ws) + " "


def _runs(ws: Sequence[str], n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))


@lru_cache(maxsize=256)
def _instruction(text: str) -> tuple[str, tuple[str, ...], frozenset[tuple[str, ...]]]:
    """An instruction prepared once: its joined words, its sentences of ECHO_MIN_WORDS+ words, its word runs."""
    sentences = tuple(
        _joined(ws) for part in _SENTENCE_END.split(text) if len(ws := words(part)) >= ECHO_MIN_WORDS
    )
    ws = words(text)
    return _joined(ws), sentences, _runs(ws, ECHO_RUN_WORDS)


def _echoes(answer: tuple[str, ...], instructions: Sequence[str]) -> bool:
    joined = _joined(answer)
    runs = _runs(answer, ECHO_RUN_WORDS)
    for text in instructions:
        whole, sentences, instruction_runs = _instruction(text)
        if len(answer) >= ECHO_MIN_WORDS and joined in whole:
            return True
        if any(sentence in joined for sentence in sentences):
            return True
        if runs & instruction_runs:
            return True
    return False


def _same(answer: tuple[str, ...], other: tuple[str, ...], same_min_words: int) -> str | None:
    if len(answer) >= same_min_words and answer == other:
        return "same text"
    if len(answer) >= NEAR_MIN_WORDS and len(other) >= NEAR_MIN_WORDS:
        if difflib.SequenceMatcher(None, answer, other, autojunk=False).ratio() >= NEAR_RATIO:
            return "nearly the same text"
    return None


def _own_reason(answer: tuple[str, ...], instructions: Sequence[str], rationale: bool) -> str | None:
    if not answer:
        return "empty"
    if rationale and all(w in NON_RATIONALE_WORDS for w in answer):
        return "empty rationale"
    if instructions and _echoes(answer, instructions):
        return "echoes the instruction"
    return None


def degenerate_reason(
    text: str,
    *,
    instructions: Sequence[str] = (),
    siblings: Sequence[str] = (),
    rationale: bool = False,
    same_min_words: int = SAME_MIN_WORDS,
) -> str | None:
    """Why ``text`` is a degenerate answer, or ``None`` when it is fine (see the module docstring).

    Args:
        text: the answer (one field of a JSON answer, a reason, a name, a whole reply).
        instructions: texts the answer must not echo: the request's templates (unfilled) and its schema's
            field descriptions.
        siblings: the other answers it must not repeat: the other fields of the same answer, or the answers
            about other items.
        rationale: ``text`` is a reason or justification, so a bare verdict ("true", "yes") is empty.
        same_min_words: shortest answer that must not equal a sibling (:data:`SAME_MIN_WORDS`; 1 for
            answers that must differ whatever their length, such as names of different topics).

    Returns:
        ``None``, or one of ``"empty"``, ``"empty rationale"``, ``"echoes the instruction"``,
        ``"same text as another field"``, ``"nearly the same text as another field"``.

    Examples:
        >>> degenerate_reason("(2 to 5 words)", instructions=["Name the subject in 2 to 5 words."])
        'echoes the instruction'
        >>> degenerate_reason("Immigration policy", instructions=["Name the subject in 2 to 5 words."])
    """
    answer = words(text)
    own = _own_reason(answer, instructions, rationale)
    if own is not None:
        return own
    for sibling in siblings:
        same = _same(answer, words(sibling), same_min_words)
        if same is not None:
            return f"{same} as another field"
    return None


def degenerate_fields(
    fields: Mapping[str, str],
    *,
    instructions: Sequence[str] = (),
    rationale: Sequence[str] = (),
    same_min_words: int = SAME_MIN_WORDS,
) -> dict[str, str]:
    """Check every field of one answer against the instructions and against the answer's other fields.

    Args:
        fields: field name -> text (e.g. the seven open-ended attributes of one enrichment answer).
        instructions: see :func:`degenerate_reason`.
        rationale: names of the fields that are rationales (checked with ``rationale=True``).
        same_min_words: see :func:`degenerate_reason`.

    Returns:
        The degenerate fields only, ``{name: reason}`` in ``fields`` order (empty when the answer is fine).
    """
    names = list(fields)
    out: dict[str, str] = {}
    distinct = {words(text) for text in fields.values()}
    if len(names) >= ALL_SAME_MIN_FIELDS and len(distinct) == 1 and distinct != {()}:
        # one text in every field, however short ("Not applicable" seven times)
        return dict.fromkeys(names, "same text as another field")
    for name in names:
        reason = degenerate_reason(
            fields[name],
            instructions=instructions,
            siblings=[fields[other] for other in names if other != name],
            rationale=name in rationale,
            same_min_words=same_min_words,
        )
        if reason is not None:
            out[name] = reason
    return out


def degenerate_items(
    texts: Sequence[str | None],
    *,
    instructions: Sequence[str] = (),
    rationale: bool = False,
    same_min_words: int = 1,
    near: bool = False,
) -> list[str | None]:
    """Check answers about different items (one per topic, prompt, persona) against each other.

    An answer that does not change with its item (the same topic name for two different clusters) says
    nothing about the item, so by default any repeat counts, whatever its length (``same_min_words=1``).
    ``None`` entries (no answer: the call failed) are skipped and give ``None``. Exact repeats are found in
    linear time, so this scales to hundreds of thousands of answers; ``near=True`` also compares every pair
    for near-duplicates (quadratic: for tens or hundreds of items).

    Returns:
        Per item, in order: ``None`` or the reason (``"same text as another item"``, ``"nearly the same text
        as another item"`` or a reason of :func:`degenerate_reason`).
    """
    parsed = [None if t is None else words(t) for t in texts]
    counts = Counter(answer for answer in parsed if answer is not None)
    out: list[str | None] = []
    for i, answer in enumerate(parsed):
        if answer is None:
            out.append(None)
            continue
        reason = _own_reason(answer, instructions, rationale)
        if reason is None and len(answer) >= same_min_words and counts[answer] > 1:
            reason = "same text as another item"
        if reason is None and near:
            for j, other in enumerate(parsed):
                if j != i and other is not None and _same(answer, other, same_min_words) is not None:
                    reason = "nearly the same text as another item"
                    break
        out.append(reason)
    return out


def degenerate_failure(reasons: str | Mapping[str, str]) -> str:
    """The failure string recorded for a degenerate answer.

    Args:
        reasons: one reason, or ``{field: reason}`` from :func:`degenerate_fields`.

    Returns:
        ``"degenerate: <reason>"``; for fields, the fields grouped by reason in first-seen order, e.g.
        ``"degenerate: same text as another field (lifestyle, mannerisms)"``.
    """
    if isinstance(reasons, str):
        return f"{DEGENERATE}: {reasons}"
    grouped: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        grouped.setdefault(reason, []).append(name)
    parts = [f"{reason} ({', '.join(names)})" for reason, names in grouped.items()]
    return f"{DEGENERATE}: " + "; ".join(parts)
