"""The prompt funnel: rule filters (``?``, minimum words, de-duplication), then an LLM controversy filter.

PERSONA (Castricato et al. 2024, Sec. 3.2) keeps the PRISM opening prompts that contain a question mark and
have at least five words, then asks GPT-4 zero-shot whether each is controversial, keeping 3,868 of 8,011.
On the public list of 8,011 prompts the two rule filters leave 5,007 and 4,652 prompts (4,620 unique).

Every prompt stays in the table; the column ``dropped_at`` names the first stage that removed it (``None``
when the prompt is kept), so the funnel can be recounted from the table alone.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.config import PromptsConfig, RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.prompts._templates import chat_template
from persona_lab.text import word_count

Stage = Literal["question_mark", "min_words", "duplicate", "limit", "llm_failure", "not_controversial"]

STAGES: tuple[tuple[str, str | None, str], ...] = (
    ("loaded", None, "loaded"),
    ("question_mark", "question_mark", "contains '?'"),
    ("min_words", "min_words", "enough words"),
    ("unique", "duplicate", "unique"),
    ("within_limit", "limit", "within the classification limit"),
    ("classified", "llm_failure", "classified (LLM answered)"),
    ("controversial", "not_controversial", "controversial (kept)"),
)
"""Funnel stages in order: (stage, the ``dropped_at`` value it removes, readable label)."""

STAGE_LABELS: dict[str, str] = {stage: label for stage, _, label in STAGES}
"""Readable name of each funnel stage."""

CONTROVERSY_CHOICES = ("yes", "no")


def _prompts_config(config: PromptsConfig | RunConfig) -> PromptsConfig:
    return config.prompts if isinstance(config, RunConfig) else config


def rule_filter(df: pd.DataFrame, config: PromptsConfig | RunConfig) -> pd.DataFrame:
    """Apply the rule stages of the funnel and flag every prompt.

    Stages, in order (each only looks at prompts that passed the earlier enabled ones):

    1. ``has_question_mark``: the text contains ``?`` (dropped if ``require_question_mark``).
    2. ``enough_words``: at least ``min_words`` whitespace-separated words.
    3. ``duplicate``: the exact same text already occurred earlier among the prompts that passed 1-2 (the
       first occurrence is kept); dropped if ``deduplicate``. Texts are compared exactly, as loaded.

    On the 8,011 PRISM opening prompts with the defaults: 5,007 contain ``?``, 4,652 of those have at
    least 5 words, 4,620 of them are unique.

    Args:
        df: prompts from :func:`load_prompts` (needs ``prompt_id`` and ``text``).
        config: the run configuration or its ``prompts`` section.

    Returns:
        A copy with boolean columns ``has_question_mark``, ``enough_words``, ``duplicate``, ``kept``
        (passed every enabled rule) and ``dropped_at`` (first stage that removed the prompt, or None).
    """
    cfg = _prompts_config(config)
    if cfg.min_words < 0:
        raise PersonaLabError(f"prompts.min_words = {cfg.min_words}: expected 0 or more words")
    missing = {"prompt_id", "text"} - set(df.columns)
    if missing:
        raise PersonaLabError(f"prompt table lacks column(s) {sorted(missing)}; load it with load_prompts")
    out = df.copy()
    text = out["text"].astype(str)
    out["has_question_mark"] = text.str.contains("?", regex=False)
    out["enough_words"] = text.map(word_count) >= cfg.min_words
    dropped = pd.Series([None] * len(out), index=out.index, dtype=object)
    if cfg.require_question_mark:
        dropped[~out["has_question_mark"]] = "question_mark"
    dropped[dropped.isna() & ~out["enough_words"]] = "min_words"
    alive = dropped.isna()
    dup = pd.Series(False, index=out.index)
    dup[alive] = text[alive].duplicated(keep="first")
    out["duplicate"] = dup
    if cfg.deduplicate:
        dropped[alive & dup] = "duplicate"
    out["dropped_at"] = dropped
    out["kept"] = dropped.isna()
    return out


def controversy_request(text: str, *, max_tokens: int = 4, tag: str = "") -> Any:
    """The zero-shot controversy question for one prompt as an ``LLMRequest`` (closed choice yes/no).

    The wording (``controversy.txt``) asks whether people with different backgrounds would reasonably
    disagree about the best answer because it depends on values rather than facts: PERSONA's criterion
    ("is this controversial / would people disagree"), written for this project.
    """
    from persona_lab.llm import LLMRequest

    system, user = chat_template("controversy.txt")
    return LLMRequest.chat(
        user.replace("{prompt}", text),
        system=system,
        choices=CONTROVERSY_CHOICES,
        max_tokens=max_tokens,
        tag=tag,
    )


def parse_controversy(response: Any) -> tuple[bool | None, str | None]:
    """Turn a runner result into ``(controversial, failure reason)``.

    A response whose ``choice`` is ``yes``/``no`` is used as is; otherwise the first word of its text is
    read (``"Yes."`` -> yes). Anything else is a recorded failure (``unparseable: ...``), as is an
    ``LLMFailure`` (``<kind>: <reason>``); failures are never guessed.
    """
    from persona_lab.llm import LLMFailure

    if isinstance(response, LLMFailure):
        return None, f"{response.kind}: {response.reason}"
    choice = getattr(response, "choice", None)
    if choice is None:
        words = str(getattr(response, "text", "")).strip().lower().split()
        first = words[0].strip(".,!:;\"'*") if words else ""
        choice = first if first in CONTROVERSY_CHOICES else None
    if choice not in CONTROVERSY_CHOICES:
        shown = str(getattr(response, "text", ""))[:60]
        return None, f"unparseable: answer outside the choices yes/no: {shown!r}"
    return choice == "yes", None


def classify_controversy(
    df: pd.DataFrame,
    backend: Any,
    *,
    cache: Any = None,
    config: RunConfig,
    progress: bool = False,
) -> pd.DataFrame:
    """Ask the LLM, for every prompt that passed the rule filters, whether it is controversial.

    If ``config.prompts.limit`` is set and more prompts passed, a seeded random sample of ``limit`` prompts
    (``numpy.random.default_rng(config.seed)``) is classified and the rest are dropped at stage ``limit``.
    A call that fails (after the runner's retries) or answers outside yes/no is recorded, not dropped
    silently: ``controversial`` is None, ``llm_failure`` holds the reason, ``dropped_at = "llm_failure"``,
    and the prompt is out of the kept set.

    Args:
        df: the output of :func:`rule_filter`.
        backend: an LLM backend (``persona_lab.llm.get_backend(spec)``).
        cache: the response cache passed to ``persona_lab.llm.run_requests`` (None: no cache).
        config: the run configuration (``prompts.limit``, ``seed``, ``llm``).
        progress: show a progress bar.

    Returns:
        A copy with ``controversial`` (True/False, None when not classified or failed), ``llm_failure``
        (reason or None), and updated ``dropped_at`` / ``kept``.
    """
    from persona_lab.llm import run_requests

    if "dropped_at" not in df.columns:
        raise PersonaLabError("prompt table has no filter flags; run rule_filter before classify_controversy")
    out = df.copy()
    dropped = out["dropped_at"].astype(object).copy()
    candidates = out.index[dropped.isna()]
    limit = config.prompts.limit
    if limit is not None and len(candidates) > limit:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(len(candidates), size=limit, replace=False))
        skipped = candidates.difference(candidates[chosen])
        dropped[skipped] = "limit"
        candidates = candidates[chosen]
    requests = [controversy_request(out.at[i, "text"], tag=str(out.at[i, "prompt_id"])) for i in candidates]
    results = (
        run_requests(requests, backend, cache=cache, config=config.llm, progress=progress, desc="controversy")
        if requests
        else []
    )
    controversial = pd.Series([None] * len(out), index=out.index, dtype=object)
    failure = pd.Series([None] * len(out), index=out.index, dtype=object)
    for i, result in zip(candidates, results, strict=True):
        label, reason = parse_controversy(result)
        controversial[i] = label
        failure[i] = reason
        if reason is not None:
            dropped[i] = "llm_failure"
        elif not label:
            dropped[i] = "not_controversial"
    out["controversial"] = controversial
    out["llm_failure"] = failure
    out["dropped_at"] = dropped
    out["kept"] = dropped.isna()
    return out


def funnel_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Prompts remaining after each funnel stage, recounted from the ``dropped_at`` column.

    Rule stages are always listed. ``within_limit`` appears only when a classification limit dropped
    prompts; ``classified`` and ``controversial`` only when the LLM filter ran (some prompt has a label or
    a failure). PRISM with the defaults: loaded 8,011 -> contains '?' 5,007 -> enough words 4,652 ->
    unique 4,620 -> (LLM) controversial; PERSONA's GPT-4 filter ended at 3,868.

    Returns:
        Columns ``stage`` and ``count`` (prompts remaining after the stage); readable names of the stages
        are in :data:`STAGE_LABELS`.
    """
    if "dropped_at" not in df.columns:
        raise PersonaLabError("prompt table has no filter flags; run rule_filter first")
    drops = df["dropped_at"].value_counts(dropna=True).to_dict()
    llm_ran = "controversial" in df.columns and (
        df["controversial"].notna().any() or ("llm_failure" in df.columns and df["llm_failure"].notna().any())
    )
    rows = []
    remaining = len(df)
    for stage, drop_key, _ in STAGES:
        if stage == "within_limit" and not drops.get("limit"):
            continue
        if stage in ("classified", "controversial") and not llm_ran:
            continue
        n_drop = int(drops.get(drop_key, 0)) if drop_key else 0
        remaining -= n_drop
        rows.append({"stage": stage, "count": remaining})
    return pd.DataFrame(rows, columns=["stage", "count"])
