"""Entity pairs: per domain an LLM lists (grey, pink) pairs of close alternatives or competitors; filtered.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 3) asks an LLM, per conversation
domain, for pairs of entities that are close alternatives (Nike and Adidas): the Grey Elephant the assistant may
talk about and the Pink Elephant it must not. About 2,500 pairs are kept. Here each domain gets
``ceil(pairs_per_domain / pairs_per_call)`` calls with a JSON schema; every candidate stays in the table with the
first filter that removed it (``dropped_at``, ``None`` when kept), so the funnel is recounted from the table:

1. ``llm_failure``: the call failed or its answer did not satisfy the schema (one row per call, raw text kept).
2. ``unnamed``: an entity is empty, has no letter, or is a placeholder ("N/A", "brand", "company1", "Brand A").
3. ``degenerate``: an entity name echoes the instruction (``persona_lab.llm.degenerate_reason``), or its words
   occur together in the instruction (``"the first entity"``: names are too short for the general echo rule).
4. ``same``: both names are the same after case and accent folding.
5. ``alias``: one entity's name or alias names the other (``"Nike"`` and ``"Nike Air"``), so avoiding one
   while talking about the other is impossible.
6. ``duplicate``: the same two entities (in either order) were already kept, in this domain or an earlier one.

Aliases are cleaned before the filters: an alias equal to its entity's name (after folding), repeated, or with
fewer than two letters or digits is dropped. An alias that names the other entity makes the pair an ``alias``. Kept pairs are split by pair into ``train`` and ``test``
(:func:`split_pairs`): a pair's dialogues are all in one split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from persona_lab.elephants._common import Runner, as_list, failure_of, missing, send, with_none
from persona_lab.elephants._mentions import MIN_ALIAS_CHARS, fold, same_entity
from persona_lab.elephants._templates import fill, template_sections
from persona_lab.llm import LLMFailure, LLMRequest, degenerate_failure, degenerate_reason

MAX_ALIASES = 3
"""Aliases asked for per entity."""
PAIR_TOKENS = 48
"""Output tokens one pair takes in JSON (names, aliases and punctuation)."""
PLACEHOLDER_NAMES = frozenset(
    "na none null unknown entity brand company product name grey pink elephant tbd example".split()
)
"""Names that are no entity: every word of the folded name is one of these."""

PAIR_COLUMNS = [
    "pair_id",
    "domain",
    "call",
    "grey",
    "pink",
    "grey_aliases",
    "pink_aliases",
    "source",
    "kept",
    "dropped_at",
    "failure",
    "raw",
    "split",
]

_ENTITY = "One specific, real, named entity (a brand, company, product, place, team or service)."
_ALIASES = "Other names people use for the same entity, or an empty list."


def pair_list_schema(n: int) -> dict[str, Any]:
    """The JSON schema of one answer: ``{"pairs": [{grey, pink, grey_aliases, pink_aliases}, ...]}``, at most
    ``n`` pairs and :data:`MAX_ALIASES` aliases each (bounds keep a small model's grammar from looping)."""
    aliases = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ALIASES, "description": _ALIASES}
    pair = {
        "type": "object",
        "properties": {
            "grey": {"type": "string", "description": _ENTITY},
            "pink": {
                "type": "string",
                "description": "The closest alternative or competitor of grey. " + _ENTITY,
            },
            "grey_aliases": aliases,
            "pink_aliases": aliases,
        },
        "required": ["grey", "pink", "grey_aliases", "pink_aliases"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair, "maxItems": n}},
        "required": ["pairs"],
        "additionalProperties": False,
    }


def pair_instructions() -> tuple[str, ...]:
    """Texts an entity name must not echo: the template's sections and the schema's descriptions."""
    return (*template_sections("pairs.txt"), _ENTITY, _ALIASES)


def calls_per_domain(pairs_per_domain: int, pairs_per_call: int) -> list[int]:
    """How many pairs each call of one domain asks for: ``[10, 10, 5]`` for 25 pairs by 10."""
    n_calls = math.ceil(pairs_per_domain / pairs_per_call)
    return [min(pairs_per_call, pairs_per_domain - i * pairs_per_call) for i in range(n_calls)]


def pair_requests(
    domains: pd.DataFrame,
    *,
    pairs_per_domain: int,
    pairs_per_call: int,
    temperature: float,
    seed: int = 0,
) -> list[LLMRequest]:
    """One request per (domain, call): ask for that call's number of pairs (``pairs.txt``, JSON schema).

    Calls of one domain differ by their seed (``seed + call``), so a sampling model lists different pairs.
    Requests are tagged ``"<domain>/<call>"``.
    """
    system, user = template_sections("pairs.txt")
    out = []
    for row in domains.itertuples(index=False):
        for call, n in enumerate(calls_per_domain(pairs_per_domain, pairs_per_call)):
            text = fill(
                user, {"domain": row.domain, "description": row.description or row.domain, "n": str(n)}
            )
            out.append(
                LLMRequest.chat(
                    text,
                    system=system,
                    json_schema=pair_list_schema(n),
                    max_tokens=n * PAIR_TOKENS + 16,
                    temperature=temperature,
                    seed=seed + call,
                    tag=f"{row.domain}/{call}",
                )
            )
    return out


def _clean_aliases(name: str, aliases: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen = {fold(name).strip()}
    for alias in aliases:
        alias = str(alias).strip()
        key = fold(alias)
        if sum(ch.isalnum() for ch in alias) < MIN_ALIAS_CHARS or key in seen:
            continue
        seen.add(key)
        out.append(alias)
    return out


def _words(text: str) -> list[str]:
    return "".join(ch if ch.isalnum() else " " for ch in fold(text)).split()


def _unnamed(name: str) -> bool:
    """No letter, or every word a placeholder once trailing digits are dropped (``"company1"``, ``"Brand A"``)."""
    words = [w.rstrip("0123456789") for w in _words(name)]
    placeholders = [w in PLACEHOLDER_NAMES for w in words]
    letters_only = all(p or len(w) <= 1 for w, p in zip(words, placeholders, strict=True))
    if not any(ch.isalpha() for ch in name) or "".join(words) in PLACEHOLDER_NAMES:  # "N/A", "n.a."
        return True
    return any(placeholders) and letters_only


def _echoes(name: str, instructions: Sequence[str]) -> bool:
    """Whether the name's words occur, in order and together, in an instruction (``"the first entity"``)."""
    needle = " ".join(_words(name))
    return bool(needle) and any(f" {needle} " in " " + " ".join(_words(t)) + " " for t in instructions)


def filter_pairs(candidates: pd.DataFrame, instructions: Sequence[str] = ()) -> pd.DataFrame:
    """Apply the pair filters (module docstring, 2-6) in table order; rows already dropped stay as they are.

    Args:
        candidates: rows with ``grey``, ``pink``, ``grey_aliases``, ``pink_aliases`` and ``dropped_at`` (``None``
            for rows still to check).
        instructions: texts an entity must not echo (:func:`pair_instructions` for LLM pairs; none for a user's
            file).

    Returns:
        A copy with cleaned aliases and ``dropped_at``, ``failure`` and ``kept`` set.
    """
    out = candidates.copy().reset_index(drop=True)
    used: set[frozenset[str]] = set()
    columns: dict[str, list[Any]] = {c: [] for c in ("grey", "pink", "grey_aliases", "pink_aliases")}
    dropped: list[str | None] = []
    failures: list[str] = []
    for rec in out.to_dict("records"):
        grey, pink = str(rec["grey"] or "").strip(), str(rec["pink"] or "").strip()
        grey_aliases = _clean_aliases(grey, as_list(rec["grey_aliases"]))
        pink_aliases = _clean_aliases(pink, as_list(rec["pink_aliases"]))
        for column, value in zip(columns, (grey, pink, grey_aliases, pink_aliases), strict=True):
            columns[column].append(value)
        if not missing(rec["dropped_at"]):
            dropped.append(rec["dropped_at"])
            failures.append(rec["failure"] or "")
            continue
        reason, failure = None, ""
        echo = next(
            (r for n in (grey, pink) if (r := degenerate_reason(n, instructions=instructions)) is not None),
            None,
        )
        if echo is None and any(_echoes(n, instructions) for n in (grey, pink)):
            echo = "echoes the instruction"
        if _unnamed(grey) or _unnamed(pink):
            reason, failure = "unnamed", f"not a named entity: grey {grey!r}, pink {pink!r}"
        elif echo is not None:
            reason, failure = "degenerate", degenerate_failure(echo)
        elif fold(grey) == fold(pink):
            reason, failure = "same", f"the same entity twice: {grey!r}"
        elif same_entity(grey, pink, grey_aliases, pink_aliases):
            reason, failure = "alias", f"{grey!r} and {pink!r} name each other"
        else:
            key = frozenset({fold(grey), fold(pink)})
            if key in used:
                reason, failure = "duplicate", f"the pair {grey!r} / {pink!r} is already kept"
            used.add(key)
        dropped.append(reason)
        failures.append(failure)
    for column, values in columns.items():
        out[column] = pd.Series(values, index=out.index, dtype=object)
    out["dropped_at"] = pd.Series(dropped, index=out.index, dtype=object)
    out["failure"] = pd.Series(failures, index=out.index, dtype=object)
    out["kept"] = out["dropped_at"].isna()
    return out


def _empty_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in PAIR_COLUMNS}
    row.update(grey_aliases=[], pink_aliases=[], kept=False, failure="", raw="")
    row.update(values)
    return row


def parse_pair_answers(requests: Sequence[LLMRequest], results: Sequence[Any]) -> pd.DataFrame:
    """Candidate rows from the answers to :func:`pair_requests` (one row per listed pair, one per failed call).

    A failed or unparseable call is one row with ``dropped_at="llm_failure"``, the failure and the raw text.
    """
    rows = []
    for request, result in zip(requests, results, strict=True):
        domain, _, call = request.tag.rpartition("/")
        if isinstance(result, LLMFailure):
            failure, raw = failure_of(result)
            rows.append(
                _empty_row(domain=domain, call=int(call), dropped_at="llm_failure", failure=failure, raw=raw)
            )
            continue
        pairs = (result.parsed or {}).get("pairs") if isinstance(result.parsed, dict) else None
        if not isinstance(pairs, list):
            rows.append(
                _empty_row(
                    domain=domain,
                    call=int(call),
                    dropped_at="llm_failure",
                    failure="unparseable: the answer has no list of pairs",
                    raw=result.text,
                )
            )
            continue
        if not pairs:
            rows.append(
                _empty_row(
                    domain=domain,
                    call=int(call),
                    dropped_at="llm_failure",
                    failure="empty: no pair listed",
                    raw=result.text,
                )
            )
        for pair in pairs:
            rows.append(
                _empty_row(
                    domain=domain,
                    call=int(call),
                    grey=str(pair.get("grey", "")),
                    pink=str(pair.get("pink", "")),
                    grey_aliases=[str(a) for a in pair.get("grey_aliases", [])],
                    pink_aliases=[str(a) for a in pair.get("pink_aliases", [])],
                    raw=result.text,
                )
            )
    return with_none(pd.DataFrame(rows, columns=PAIR_COLUMNS))


def split_pairs(pairs: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """Hold out ``round(test_fraction * kept)`` kept pairs (at least one when two or more are kept, never all) as
    ``test``, the others ``train``, chosen with ``numpy.random.default_rng(seed)``; dropped rows get no split."""
    out = pairs.copy()
    kept = out.index[out["kept"].astype(bool)]
    n = len(kept)
    n_test = min(max(round(test_fraction * n), 1), n - 1) if n >= 2 else 0
    test = set(np.random.default_rng(seed).permutation(kept)[:n_test].tolist()) if n_test else set()
    out["split"] = pd.Series(
        [
            ("test" if i in test else "train") if k else None
            for i, k in zip(out.index, out["kept"], strict=True)
        ],
        index=out.index,
        dtype=object,
    )
    return out


def _number(pairs: pd.DataFrame) -> pd.DataFrame:
    out = pairs.reset_index(drop=True)
    out["pair_id"] = [f"pair{i:05d}" for i in range(len(out))]
    return with_none(out[PAIR_COLUMNS].copy())


def generate_pairs(
    domains: pd.DataFrame,
    run: Runner,
    *,
    pairs_per_domain: int,
    pairs_per_call: int,
    temperature: float,
    test_fraction: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Ask the LLM for entity pairs per domain, filter them and split the kept ones (module docstring).

    Returns:
        The pairs table (:data:`PAIR_COLUMNS`): every candidate and every failed call, ``kept`` and ``split``.
    """
    requests = pair_requests(
        domains,
        pairs_per_domain=pairs_per_domain,
        pairs_per_call=pairs_per_call,
        temperature=temperature,
        seed=seed,
    )
    results = send(run, requests, "elephants: entity pairs")
    candidates = parse_pair_answers(requests, results)
    candidates["source"] = "llm"
    filtered = filter_pairs(candidates, pair_instructions())
    return _number(split_pairs(filtered, test_fraction, seed))


def pairs_from_file(pairs: pd.DataFrame, *, test_fraction: float, seed: int = 0) -> pd.DataFrame:
    """The pairs table from a user's pairs (``load_pairs``), filtered (2, 4-6) and split; ``call`` is the row."""
    candidates = pd.DataFrame(
        [_empty_row(**rec, call=i, source="file") for i, rec in enumerate(pairs.to_dict("records"))]
    )
    filtered = filter_pairs(candidates[PAIR_COLUMNS])
    return _number(split_pairs(filtered, test_fraction, seed))


def kept_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The kept pairs only."""
    return pairs[pairs["kept"].astype(bool)].reset_index(drop=True)
