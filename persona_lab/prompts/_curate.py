"""The whole prompt stage: load -> rule filters -> LLM controversy filter -> topics -> split."""

from __future__ import annotations

from typing import Any

import pandas as pd

from persona_lab.config import RunConfig
from persona_lab.prompts._filters import classify_controversy, rule_filter
from persona_lab.prompts._load import load_prompts
from persona_lab.prompts._split import split_prompts
from persona_lab.prompts._topics import assign_topics

OUTPUT_COLUMNS = [
    "prompt_id",
    "text",
    "source",
    "has_question_mark",
    "enough_words",
    "duplicate",
    "controversial",
    "llm_failure",
    "kept",
    "topic",
    "topic_name",
    "split",
    "dropped_at",
    "topic_hint",
    "conversation_type",
]
"""Columns of the prompts table (``prompts.parquet`` of a run), in order."""


def curate_prompts(
    config: RunConfig, cache: Any = None, *, backend: Any = None, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the prompt stage of PERSONA (Sec. 3.2) and return its two tables (the caller writes them).

    Steps: :func:`load_prompts` (``prompts.source``; None = the embedded questions) ->
    :func:`rule_filter` (``?``, ``min_words``, ``deduplicate``) -> :func:`classify_controversy` (if
    ``prompts.llm_filter``; at most ``prompts.limit`` prompts) -> :func:`assign_topics` (``topic_method``,
    ``n_topics``, names by the LLM) -> :func:`split_prompts` (``n_train`` / ``n_heldout``, scaled down when
    fewer prompts are kept, stratified by topic). Without the LLM filter every rule-passing prompt is kept
    and ``controversial`` stays None.

    Args:
        config: the run configuration.
        cache: the run's response cache (``persona_lab.llm.ResponseCache``) or None.
        backend: an LLM backend; None builds ``config.llm.backend`` with ``persona_lab.llm.get_backend``.
        progress: show progress bars for the LLM calls.

    Returns:
        ``(prompts, topics)``: the tables ``prompts`` (see :data:`OUTPUT_COLUMNS`) and ``topics`` (see
        ``assign_topics``).
    """
    cfg = config.prompts
    df = rule_filter(load_prompts(cfg.source), cfg)
    if backend is None:  # the controversy filter and the topic names both ask the LLM
        from persona_lab.llm import get_backend

        backend = get_backend(config.llm.backend, config=config.llm)
    if cfg.llm_filter:
        df = classify_controversy(df, backend, cache=cache, config=config, progress=progress)
    else:
        df["controversial"] = pd.Series([None] * len(df), index=df.index, dtype=object)
        df["llm_failure"] = pd.Series([None] * len(df), index=df.index, dtype=object)
    df, topics = assign_topics(
        df, cfg.topic_method, cfg.n_topics, config.seed, backend=backend, cache=cache, config=config
    )
    df = split_prompts(df, cfg.n_train, cfg.n_heldout, config.seed)
    return df[OUTPUT_COLUMNS].reset_index(drop=True), topics
