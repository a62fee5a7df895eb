"""The funnel of the Pink Elephants pipeline, recounted from its tables (every row keeps its ``dropped_at``)."""

from __future__ import annotations

import pandas as pd

FUNNEL_STEPS = ("pairs", "plans", "dialogues", "cut", "revised", "kept")
"""Kept entity pairs, kept plans, usable dialogues, dialogues cut at an unwanted turn, revisions made, DPO pairs
kept."""

DIALOGUE_DROPS_BEFORE_CUT = ("llm_failure", "degenerate", "too_short")


def _drops(df: pd.DataFrame) -> dict[str, int]:
    if not len(df) or "dropped_at" not in df:
        return {}
    return {str(k): int(v) for k, v in df["dropped_at"].value_counts(dropna=True).items()}


def _kept(df: pd.DataFrame, column: str = "kept") -> int:
    return int(df[column].astype(bool).sum()) if len(df) else 0


def funnel_counts(
    pairs: pd.DataFrame, plans: pd.DataFrame, dialogues: pd.DataFrame, dpf: pd.DataFrame
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """``(funnel, dropped)``: the count after each step of :data:`FUNNEL_STEPS`, and per table the rows dropped
    at each reason (a failed pair call is one row of ``pairs`` dropped at ``llm_failure``).

    Examples: 4 pairs kept, 4 plans, 3 usable dialogues of which 1 is cut, revised and kept give
    ``{"pairs": 4, "plans": 4, "dialogues": 3, "cut": 1, "revised": 1, "kept": 1}``.
    """
    usable = int((~dialogues["dropped_at"].isin(DIALOGUE_DROPS_BEFORE_CUT)).sum()) if len(dialogues) else 0
    funnel = {
        "pairs": _kept(pairs),
        "plans": _kept(plans),
        "dialogues": usable,
        "cut": _kept(dialogues),
        "revised": _kept(dpf, "revised"),
        "kept": _kept(dpf),
    }
    dropped = {
        "pairs": _drops(pairs),
        "plans": _drops(plans),
        "dialogues": _drops(dialogues),
        "dpf": _drops(dpf),
    }
    return funnel, dropped
