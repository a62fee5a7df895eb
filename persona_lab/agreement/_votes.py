"""Majority vote of the people who role-played one persona (PERSONA Sec. 4: the label of 3 of 4 raters).

A label needs at least ``min_votes`` votes for one choice and more votes than any other choice. Everything else
is reported with its reason and gets no label; a tie is never broken silently (no coin flip, no "first rater
wins"):

- ``"majority"``: one choice has at least ``min_votes`` votes and strictly more than any other;
- ``"tie"``: two or more choices share the highest count (2 : 2 of 4 raters);
- ``"no majority"``: the leading choice has fewer than ``min_votes`` votes (2 : 1 with 3 of 4 required);
- ``"too few votes"``: fewer than ``min_votes`` votes were cast at all (a rater dropped out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

MAJORITY = "majority"
TIE = "tie"
NO_MAJORITY = "no majority"
TOO_FEW_VOTES = "too few votes"
VOTE_STATUSES = (MAJORITY, TIE, NO_MAJORITY, TOO_FEW_VOTES)
"""Every ``status`` :func:`majority_vote` reports."""


def majority_vote(
    labels: pd.DataFrame,
    *,
    min_votes: int = 3,
    by: Sequence[str] = ("persona_id", "prompt_id"),
    choices: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One label per group of votes (default: per persona and question), or the reason there is none.

    Args:
        labels: one row per vote with the ``by`` columns, ``annotator`` and ``choice`` (rows with a missing
            choice are not votes).
        min_votes: votes the winning choice needs (PERSONA: 3, with 4 raters per persona).
        by: the columns that define one decision.
        choices: the possible choices, for the ``votes_<choice>`` columns (default: those that occur).

    Returns:
        One row per group: the ``by`` columns, ``choice`` (None unless ``status`` is ``"majority"``),
        ``status`` (see the module docstring), ``n_votes``, ``top_votes`` and ``votes_<choice>`` per choice.

    Raises:
        PersonaLabError: ``min_votes`` below 1, a missing column, or an annotator voting twice in one group.
    """
    if min_votes < 1:
        raise PersonaLabError(f"majority vote: min_votes = {min_votes}; a label needs at least 1 vote")
    need = [*by, "annotator", "choice"]
    missing = [c for c in need if c not in labels.columns]
    if missing:
        raise PersonaLabError(f"majority vote: labels lack column(s) {missing}; expected {need}")
    votes = labels.loc[labels["choice"].notna(), need]
    dup = votes.duplicated([*by, "annotator"])
    if dup.any():
        row = votes[dup].iloc[0]
        where = ", ".join(f"{c} {row[c]!r}" for c in by)
        raise PersonaLabError(
            f"majority vote: annotator {row['annotator']!r} voted twice on {where}; keep one vote per annotator"
        )
    cats = list(choices) if choices is not None else sorted(pd.unique(votes["choice"]).tolist())
    columns = [*by, "choice", "status", "n_votes", "top_votes", *[f"votes_{c}" for c in cats]]
    if votes.empty:
        return pd.DataFrame(columns=columns)
    counts = pd.crosstab([votes[c] for c in by], votes["choice"]).reindex(columns=cats, fill_value=0)
    matrix = counts.to_numpy()
    n_votes = matrix.sum(axis=1)
    top = matrix.max(axis=1)
    n_top = (matrix == top[:, None]).sum(axis=1)
    status = np.where(
        n_votes < min_votes,
        TOO_FEW_VOTES,
        np.where(n_top > 1, TIE, np.where(top < min_votes, NO_MAJORITY, MAJORITY)),
    )
    winner = np.asarray(cats, dtype=object)[matrix.argmax(axis=1)]
    out = counts.index.to_frame(index=False)
    out["choice"] = pd.Series(np.where(status == MAJORITY, winner, None), dtype=object)
    out["status"] = status
    out["n_votes"] = n_votes
    out["top_votes"] = top
    for k, c in enumerate(cats):
        out[f"votes_{c}"] = matrix[:, k]
    return out[columns]


def vote_summary(votes: pd.DataFrame) -> dict[str, int]:
    """Count of decisions per status (every status listed, zeros included), e.g. for the run summary."""
    counts = votes["status"].value_counts() if len(votes) else pd.Series(dtype=int)
    return {s: int(counts.get(s, 0)) for s in VOTE_STATUSES}
