"""Leave-one-out attribute analysis (PERSONA, Castricato et al. 2024, Sec. 4.1 and Fig. 5).

Does one attribute change what a persona prefers? Per attribute, PERSONA builds pairs of persona twins, one with
3 attributes and its twin with the same 3 plus the attribute (4), critiques and revises the same baseline answer
for each twin, lets an annotator role-playing each twin make binary choices over 20 questions, and reports
Cohen's kappa between the twins: the lower, the more the attribute matters. The paper finds that no single
attribute dominates. Its text leaves open what the binary choice is between; here both twins' annotators choose,
for every question, between the two twins' revisions (``without`` = the 3-attribute twin's, ``with`` = the
4-attribute twin's), so the two raters judge the very same items and kappa is well defined. Where the revision
of either twin failed, the question is dropped for that pair (and counted).

- **Twins**: the twins of a pair come from one real persona of the run: the attribute's value and 3 of the
  persona's other attributes, drawn at random; the twin texts keep PERSONA's text format (the persona's own
  lines, in order).
- **Conditional attributes** (fertility, the difficulties, ability to speak English, the open-ended fields of
  personas that were enriched, ...): only personas for whom the attribute applies are eligible, i.e. it has a
  value that is not "Not applicable ..." and not a placeholder. An attribute with fewer eligible personas than
  pairs gets fewer pairs (reported).
- **Questions and baseline answers**: prompts of the feedback table with their ``original`` (the answer
  written without a persona, which does not depend on the persona), wherever the original itself passed the
  feedback stage's checks (:func:`usable_originals`).
- **Critique and revision**: the DPF engine with the ``persona`` principle (``persona_lab.dpf``), the same as
  the feedback pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_lab.agreement._annotators import (
    JudgeItem,
    ModelAnnotator,
    RunFn,
    judge,
    judge_request,
    seeded_order,
)
from persona_lab.agreement._bootstrap import bootstrap_intervals
from persona_lab.agreement._kappa import KappaDesign
from persona_lab.agreement._study import stable_seed
from persona_lab.errors import PersonaLabError

LOO_CHOICES: tuple[str, str] = ("without", "with")
"""Labels of the two revisions a twin's annotator chooses between: the 3-attribute twin's and the 4-attribute
twin's."""

_PLACEHOLDERS = frozenset({"", "none", "nan", "null", "n/a"})
_NOT_APPLICABLE_PREFIX = "not applicable"


def persona_lines(text: str) -> dict[str, str]:
    """PERSONA's text format as ``{key: value}`` in the text's order (``persona_lab.personas.parse_persona``
    checks it)."""
    from persona_lab.personas import parse_persona

    parse_persona(text)
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key] = value
        elif line.endswith(":"):
            out[line[:-1]] = ""
    return out


def applies(key: str, value: str | None) -> bool:
    """Whether an attribute applies to a persona: it has a value that is neither "Not applicable ..." nor a
    placeholder (``None`` counts as a placeholder only for the open-ended fields, where the released personas
    write it for young children; ``disability: None`` is a census value)."""
    if value is None:
        return False
    v = str(value).strip().casefold()
    if v.startswith(_NOT_APPLICABLE_PREFIX):
        return False
    if v in _PLACEHOLDERS - {"none"}:
        return False
    return not (v == "none" and key in OPEN_ENDED)


OPEN_ENDED = frozenset(
    {
        "detailed job description",
        "defining quirks",
        "mannerisms",
        "personal time",
        "lifestyle",
        "ideology",
        "political views",
    }
)
"""The attributes an LLM writes (PERSONA App. A): ``None`` is a placeholder there."""


def check_attributes(attributes: Sequence[str]) -> None:
    """Every name must be a PERSONA attribute key (as the text format knows them).

    Raises:
        PersonaLabError: naming the first unknown attribute.
    """
    from persona_lab.personas import parse_persona

    for key in attributes:
        try:
            parse_persona(f"{key}: x\n")
        except PersonaLabError:
            raise PersonaLabError(
                f"agreement.loo_attributes: {key!r} is not a PERSONA attribute; use the keys of the text format, "
                "e.g. 'age', 'household language', 'political views'"
            ) from None


def _text(lines: dict[str, str], keys: Sequence[str]) -> str:
    wanted = set(keys)
    return "".join(f"{k}: {v}\n" for k, v in lines.items() if k in wanted)


TWIN_COLUMNS = ("attribute", "pair", "persona_id", "value", "base_attributes", "text_without", "text_with")


def twin_pairs(
    personas: pd.DataFrame,
    attributes: Sequence[str] | None,
    *,
    n_pairs: int,
    base_size: int = 3,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The persona twins of the analysis (see the module docstring).

    Args:
        personas: the personas table (``persona_id``, ``text``).
        attributes: the attributes to analyse; ``None`` or empty: every attribute some persona has, in the
            order of the text format.
        n_pairs: pairs per attribute (PERSONA: 40).
        base_size: attributes of the smaller twin (PERSONA: 3).
        seed: the run's seed.

    Returns:
        ``(pairs, eligible)``: one row per pair (:data:`TWIN_COLUMNS`), and per attribute the number of eligible
        personas (those with the attribute and at least ``base_size`` other attributes that apply).
    """
    if base_size < 1:
        raise PersonaLabError(f"leave-one-out: base_size = {base_size}; the smaller twin needs an attribute")
    parsed = {
        str(pid): persona_lines(str(text))
        for pid, text in zip(personas["persona_id"], personas["text"], strict=True)
    }
    if not attributes:
        seen: dict[str, None] = {}
        for lines in parsed.values():
            seen.update(dict.fromkeys(lines))
        attributes = list(seen)
    check_attributes(attributes)
    rows = []
    eligible_count: dict[str, int] = {}
    for attribute in attributes:
        rng = np.random.default_rng(stable_seed("loo", seed, attribute))
        eligible = []
        for pid, lines in parsed.items():
            if not applies(attribute, lines.get(attribute)):
                continue
            others = [k for k, v in lines.items() if k != attribute and applies(k, v)]
            if len(others) >= base_size:
                eligible.append((pid, others))
        eligible_count[attribute] = len(eligible)
        take = rng.permutation(len(eligible))[:n_pairs]
        for pair, index in enumerate(take):
            pid, others = eligible[int(index)]
            base = sorted(rng.choice(len(others), size=base_size, replace=False))
            base_keys = [others[i] for i in base]
            lines = parsed[pid]
            rows.append(
                {
                    "attribute": attribute,
                    "pair": pair,
                    "persona_id": pid,
                    "value": lines[attribute],
                    "base_attributes": "; ".join(base_keys),
                    "text_without": _text(lines, base_keys),
                    "text_with": _text(lines, [*base_keys, attribute]),
                }
            )
    return pd.DataFrame(rows, columns=list(TWIN_COLUMNS)), eligible_count


ORIGINAL_FAILURES = ("original", "degenerate: original")
"""Prefixes of the feedback stage's failures about the original answer itself (its call failed, or it echoes
its template or the prompt)."""


def usable_originals(feedback: pd.DataFrame) -> pd.DataFrame:
    """One feedback row per prompt whose original answer is usable: present, and the row's failure (if any) is
    about the critique or the revision, not the original. The original does not depend on the persona (PERSONA
    Sec. 3.3), so a pair that failed later still gives a good baseline answer."""
    failure = feedback["failure"].fillna("").astype(str)
    bad = failure.str.startswith(ORIGINAL_FAILURES)
    text = feedback["original"].astype(object)
    ok = ~bad & text.notna() & (text.astype(str).str.strip() != "")
    return feedback[ok].drop_duplicates("prompt_id").reset_index(drop=True)


def loo_questions(
    feedback: pd.DataFrame, prompts: pd.DataFrame, *, n_questions: int, seed: int = 0
) -> pd.DataFrame:
    """The questions and their baseline answers: ``prompt_id, prompt, original`` for ``n_questions`` prompts
    (seeded sample; fewer when fewer exist) among those whose original answer passed the feedback stage's checks
    (:func:`usable_originals`)."""
    good = usable_originals(feedback)
    if good.empty:
        return pd.DataFrame(columns=["prompt_id", "prompt", "original"])
    text = prompts.drop_duplicates("prompt_id").set_index("prompt_id")["text"]
    rng = np.random.default_rng(stable_seed("loo questions", seed))
    picked = good.iloc[np.sort(rng.permutation(len(good))[:n_questions])]
    return pd.DataFrame(
        {
            "prompt_id": picked["prompt_id"].to_numpy(),
            "prompt": picked["prompt_id"].map(text).to_numpy(),
            "original": picked["original"].to_numpy(),
        }
    )


def dpf_items(pairs: pd.DataFrame, questions: pd.DataFrame) -> list:
    """One DPF item per twin and question (id ``attribute/pair/twin/prompt_id``), persona = the twin's text."""
    from persona_lab.dpf import DPFItem
    from persona_lab.llm import Message

    items = []
    for pair in pairs.itertuples(index=False):
        for twin, text in (("without", pair.text_without), ("with", pair.text_with)):
            for q in questions.itertuples(index=False):
                items.append(
                    DPFItem(
                        id=f"{pair.attribute}/{pair.pair}/{twin}/{q.prompt_id}",
                        context=(Message(role="user", content=str(q.prompt)),),
                        original=str(q.original),
                        variables={"persona": text},
                    )
                )
    return items


REVISION_COLUMNS = (
    "attribute",
    "pair",
    "twin",
    "prompt_id",
    "critique",
    "revision",
    "failure",
    "critique_raw",
    "revision_raw",
)
JUDGMENT_COLUMNS = (
    "attribute",
    "pair",
    "twin",
    "prompt_id",
    "choice",
    "order_shown",
    "rationale",
    "failure",
    "raw",
)
KAPPA_COLUMNS = (
    "attribute",
    "pair",
    "persona_id",
    "value",
    "n_questions",
    "n_items",
    "kappa",
    "low",
    "high",
    "reason",
)


@dataclass(frozen=True)
class LeaveOneOut:
    """Everything the analysis made.

    Attributes:
        pairs: the twins (:data:`TWIN_COLUMNS`).
        revisions: one row per twin and question (:data:`REVISION_COLUMNS`).
        judgments: one row per twin annotator and question both revisions exist for (:data:`JUDGMENT_COLUMNS`).
        kappa: one row per pair (:data:`KAPPA_COLUMNS`): kappa between the twins' choices, its interval and
            the reason when undefined.
        eligible: attribute -> eligible personas.
    """

    pairs: pd.DataFrame
    revisions: pd.DataFrame
    judgments: pd.DataFrame
    kappa: pd.DataFrame
    eligible: dict[str, int]


def _split_id(item_id: str) -> tuple[str, int, str, str]:
    attribute, pair, twin, prompt_id = item_id.split("/", 3)
    return attribute, int(pair), twin, prompt_id


def loo_judge_items(
    pairs: pd.DataFrame, revisions: pd.DataFrame, questions: pd.DataFrame
) -> list[tuple[tuple, JudgeItem]]:
    """The twins' judgment items: for each pair and question whose two revisions both exist, one item per twin
    (``((attribute, pair, twin, prompt_id), item)``), the answers shown in a seeded order."""
    ok = revisions[revisions["failure"] == ""].set_index(["attribute", "pair", "twin", "prompt_id"])[
        "revision"
    ]
    prompt_text = questions.set_index("prompt_id")["prompt"]
    out = []
    for pair in pairs.itertuples(index=False):
        for q in questions["prompt_id"]:
            without = ok.get((pair.attribute, pair.pair, "without", q))
            with_ = ok.get((pair.attribute, pair.pair, "with", q))
            if without is None or with_ is None:
                continue
            for twin, text in (("without", pair.text_without), ("with", pair.text_with)):
                key = (pair.attribute, pair.pair, twin, q)
                out.append(
                    (
                        key,
                        JudgeItem(
                            key="/".join(map(str, key)),
                            persona=text,
                            prompt=str(prompt_text[q]),
                            answers={"without": str(without), "with": str(with_)},
                            order=seeded_order(LOO_CHOICES, *key),
                        ),
                    )
                )
    return out


def loo_kappas(
    pairs: pd.DataFrame, judgments: pd.DataFrame, n_questions: int, *, n_boot: int, level: float, seed: int
) -> pd.DataFrame:
    """Kappa between the two twins' annotators of every pair over the questions both judged, with bootstrap
    intervals over questions (one bootstrap per attribute; the pairs' kappas are on the diagonal)."""
    good = judgments[judgments["choice"].notna() & (judgments["failure"] == "")]
    out = []
    for attribute, group in pairs.groupby("attribute", sort=False):
        mine = good[good["attribute"] == attribute]
        names = [f"{attribute}/{p}" for p in group["pair"]]

        def labels(twin: str, mine: pd.DataFrame = mine, attribute: str = str(attribute)) -> pd.DataFrame:
            sel = mine[mine["twin"] == twin]
            return pd.DataFrame(
                {
                    "rater": [f"{attribute}/{p}" for p in sel["pair"]],
                    "item": [f"{p}/{q}" for p, q in zip(sel["pair"], sel["prompt_id"], strict=True)],
                    "choice": sel["choice"].to_numpy(),
                }
            )

        design = KappaDesign(labels("without"), labels("with"), raters_a=names, raters_b=names)
        matrix = design.counts().matrix()
        intervals = bootstrap_intervals(
            design, n_boot=n_boot, level=level, seed=stable_seed("loo boot", seed, attribute)
        )
        idx = np.arange(len(names))
        out.append(
            pd.DataFrame(
                {
                    "attribute": attribute,
                    "pair": group["pair"].to_numpy(),
                    "persona_id": group["persona_id"].to_numpy(),
                    "value": group["value"].to_numpy(),
                    "n_questions": n_questions,
                    "n_items": matrix.n_items.to_numpy()[idx, idx],
                    "kappa": matrix.kappa.to_numpy()[idx, idx],
                    "low": intervals.low.to_numpy()[idx, idx],
                    "high": intervals.high.to_numpy()[idx, idx],
                    "reason": matrix.reason.to_numpy()[idx, idx],
                }
            )
        )
    if not out:
        return pd.DataFrame(columns=list(KAPPA_COLUMNS))
    return pd.concat(out, ignore_index=True)[list(KAPPA_COLUMNS)]


def leave_one_out(
    personas: pd.DataFrame,
    feedback: pd.DataFrame,
    prompts: pd.DataFrame,
    annotator: ModelAnnotator,
    run: RunFn,
    *,
    attributes: Sequence[str] | None,
    n_pairs: int,
    n_questions: int,
    base_size: int = 3,
    max_tokens: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> LeaveOneOut:
    """Run the whole analysis (see the module docstring): twins, DPF critique and revision per twin and question,
    each twin's role-play annotator, kappa per pair.

    Args:
        personas: the personas table.
        feedback: the feedback table (questions and baseline answers).
        prompts: the prompts table (question texts).
        annotator: the model annotator that role-plays each twin.
        run: ``run(requests, backend=..., desc=...)`` (``RunContext.run_requests``).
        attributes: attributes to analyse (empty: all).
        n_pairs: pairs per attribute.
        n_questions: questions per pair.
        base_size: attributes of the smaller twin.
        max_tokens: output budget of critiques and revisions (``None``: the principle's defaults).
        n_boot: bootstrap replicates.
        level: interval coverage.
        seed: the run's seed.
    """
    from persona_lab.dpf import critique_and_revise, load_principle

    pairs, eligible = twin_pairs(personas, attributes, n_pairs=n_pairs, base_size=base_size, seed=seed)
    questions = loo_questions(feedback, prompts, n_questions=n_questions, seed=seed)
    items = dpf_items(pairs, questions)
    results = (
        critique_and_revise(
            items,
            load_principle("persona"),
            lambda requests, desc="": run(requests, backend=None, desc=desc),
            max_tokens=max_tokens,
            seed=seed,
            desc="leave-one-out",
        )
        if items
        else []
    )
    rev_rows = []
    for r in results:
        attribute, pair, twin, prompt_id = _split_id(r.id)
        rev_rows.append(
            {
                "attribute": attribute,
                "pair": pair,
                "twin": twin,
                "prompt_id": prompt_id,
                "critique": r.critique,
                "revision": r.revision if not r.failure else None,
                "failure": r.failure,
                "critique_raw": r.critique_raw,
                "revision_raw": r.revision_raw,
            }
        )
    revisions = pd.DataFrame(rev_rows, columns=list(REVISION_COLUMNS))
    keyed = loo_judge_items(pairs, revisions, questions)
    rows = judge([item for _, item in keyed], annotator, run, desc="leave-one-out judgments")
    judgments = pd.DataFrame(
        [
            {
                "attribute": k[0],
                "pair": k[1],
                "twin": k[2],
                "prompt_id": k[3],
                **{c: row[c] for c in JUDGMENT_COLUMNS[4:]},
            }
            for (k, _), row in zip(keyed, rows, strict=True)
        ],
        columns=list(JUDGMENT_COLUMNS),
    )
    kappa = loo_kappas(pairs, judgments, len(questions), n_boot=n_boot, level=level, seed=seed)
    return LeaveOneOut(pairs, revisions, judgments, kappa, eligible)


def loo_plan(
    personas: pd.DataFrame,
    feedback: pd.DataFrame,
    prompts: pd.DataFrame,
    annotator: ModelAnnotator,
    *,
    attributes: Sequence[str] | None,
    n_pairs: int,
    n_questions: int,
    base_size: int = 3,
    max_tokens: int | None = None,
    seed: int = 0,
) -> list:
    """Every request :func:`leave_one_out` would send if every call succeeded (for the dry run): the DPF plan
    and one judgment per twin and question, its revisions replaced by placeholders of the revision budget."""
    from persona_lab.dpf import dpf_requests, load_principle

    principle = load_principle("persona")
    pairs, _ = twin_pairs(personas, attributes, n_pairs=n_pairs, base_size=base_size, seed=seed)
    questions = loo_questions(feedback, prompts, n_questions=n_questions, seed=seed)
    items = dpf_items(pairs, questions)
    plan = dpf_requests(items, principle, max_tokens=max_tokens, seed=seed)
    budget = max_tokens or principle.revision_max_tokens
    placeholder = ("the " * budget).strip()
    fake = pd.DataFrame(
        [
            {
                **dict(zip(("attribute", "pair", "twin", "prompt_id"), _split_id(i.id), strict=True)),
                "revision": placeholder,
                "failure": "",
            }
            for i in items
        ],
        columns=["attribute", "pair", "twin", "prompt_id", "revision", "failure"],
    )
    keyed = loo_judge_items(pairs, fake, questions)
    return plan + [judge_request(item, annotator) for _, item in keyed]
