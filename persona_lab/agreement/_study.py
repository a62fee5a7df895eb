"""The annotation study: which personas and which of their feedback pairs people and models judge.

PERSONA's human study (Castricato et al. 2024, Sec. 4): 20 personas, 4 people per persona (each person sees one
persona), 10 questions each; for every question an annotator sees the two answers of a feedback pair (the
original answer and its revision for that persona) and picks the one the persona would prefer. The paper does
not say how the 20 personas and 10 questions were picked. Here they are picked so the persona x persona kappa
matrices of Figs. 6-9 have as many shared questions as the feedback pairs allow (PERSONA pairs personas and
prompts independently at random, so two personas need not share a question):

1. usable pairs: rows of the feedback table whose ``failure`` is ``""`` (optionally of one split);
2. personas: those with the most usable pairs (at most ``n_questions`` counted), ties in a seeded random order;
3. questions: for each chosen persona, its prompts ordered by how many chosen personas also have them, ties in
   a seeded random order; the first ``n_questions``, then shown in a seeded random order (``position``).

Labels are ``"revision"`` (the persona-specific rewrite, DPF's chosen answer) or ``"original"`` (the answer
written without the persona, DPF's rejected one), whatever position the answer was shown in.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

CHOICES: tuple[str, str] = ("revision", "original")
"""The two labels an annotator can give a feedback pair: which answer the persona would prefer."""

FEEDBACK_COLUMNS = ("persona_id", "prompt_id", "original", "revision", "failure")
"""Columns of the feedback table the study reads."""

STUDY_COLUMNS = ("persona_id", "prompt_id", "position", "prompt", "original", "revision")
"""Columns of :func:`study_design`'s table."""


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any values (same values, same seed, on every machine and Python version)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def usable_pairs(feedback: pd.DataFrame, *, split: str | None = None) -> pd.DataFrame:
    """The feedback pairs whose ``failure`` is ``""`` (and, if given, of one ``split``), one per persona and
    prompt (the first when a pair repeats).

    Raises:
        PersonaLabError: a column the study needs is missing.
    """
    missing = [c for c in FEEDBACK_COLUMNS if c not in feedback.columns]
    if split is not None and "split" not in feedback.columns:
        missing.append("split")
    if missing:
        raise PersonaLabError(
            f"feedback table lacks column(s) {missing}; expected {list(FEEDBACK_COLUMNS)} "
            "(rerun the feedback stage)"
        )
    good = feedback[feedback["failure"].fillna("x").astype(str) == ""]
    good = good[good["original"].notna() & good["revision"].notna()]
    if split is not None:
        good = good[good["split"] == split]
    return good.drop_duplicates(["persona_id", "prompt_id"]).reset_index(drop=True)


def study_design(
    feedback: pd.DataFrame,
    prompts: pd.DataFrame | None = None,
    *,
    n_personas: int,
    n_questions: int,
    seed: int = 0,
    split: str | None = None,
) -> pd.DataFrame:
    """Pick the study's personas and questions from the usable feedback pairs (see the module docstring).

    Args:
        feedback: the feedback stage's table (``persona_id, prompt_id, original, revision, failure``, ...).
        prompts: the prompts table, for the question text (``prompt_id, text``); without it ``prompt`` is the
            feedback table's own ``prompt`` column when it has one.
        n_personas: personas in the study (PERSONA: 20).
        n_questions: questions per persona (PERSONA: 10).
        seed: the run's seed.
        split: use only pairs of this feedback split (``None``: all).

    Returns:
        One row per (persona, question): :data:`STUDY_COLUMNS`, in persona order then ``position``. Fewer rows
        when fewer usable pairs exist; empty when none do.
    """
    if n_personas < 1 or n_questions < 1:
        raise PersonaLabError(
            f"study design: {n_personas} personas x {n_questions} questions; both must be at least 1"
        )
    good = usable_pairs(feedback, split=split)
    if prompts is not None:
        if not {"prompt_id", "text"} <= set(prompts.columns):
            raise PersonaLabError("prompts table lacks prompt_id or text; rerun the prompts stage")
        text = prompts.drop_duplicates("prompt_id").set_index("prompt_id")["text"]
        good = good.assign(prompt=good["prompt_id"].map(text))
    elif "prompt" not in good.columns:
        good = good.assign(prompt=None)
    if good.empty:
        return pd.DataFrame(columns=list(STUDY_COLUMNS))
    rng = np.random.default_rng(stable_seed("study", seed))
    per_persona = good.groupby("persona_id", sort=True).size().clip(upper=n_questions)
    order = pd.DataFrame({"n": per_persona, "tie": rng.permutation(len(per_persona))})
    personas = order.sort_values(["n", "tie"], ascending=[False, True]).index[:n_personas]
    chosen = good[good["persona_id"].isin(personas)]
    shared = chosen.groupby("prompt_id").size()
    chosen = chosen.assign(
        _shared=chosen["prompt_id"].map(shared),
        _tie=rng.permutation(len(chosen)),
    )
    rows = []
    for persona in personas:  # a loop over the study's (tens of) personas, to pick each one's questions
        own = chosen[chosen["persona_id"] == persona].sort_values(
            ["_shared", "_tie"], ascending=[False, True]
        )
        own = own.head(n_questions)
        shown = np.random.default_rng(stable_seed("positions", seed, persona)).permutation(len(own))
        rows.append(own.assign(position=shown).sort_values("position"))
    out = pd.concat(rows, ignore_index=True)
    return out[list(STUDY_COLUMNS)].astype({"position": int})


def persona_texts(personas: pd.DataFrame) -> pd.Series:
    """persona_id -> the persona in PERSONA's text format (the ``text`` column of the personas table)."""
    if not {"persona_id", "text"} <= set(personas.columns):
        raise PersonaLabError("personas table lacks persona_id or text; rerun the personas stage")
    return personas.drop_duplicates("persona_id").set_index("persona_id")["text"]


def answer_order(*parts: object) -> tuple[str, str]:
    """The order two answers are shown in, seeded by ``parts`` (e.g. annotator, persona, prompt): a pair of
    :data:`CHOICES`, first = the answer shown as A (or "Answer 1")."""
    first = stable_seed("order", *parts) % 2
    return (CHOICES[0], CHOICES[1]) if first == 0 else (CHOICES[1], CHOICES[0])
