"""Which persona attributes the ``persona_summary`` mode drops (PERSONA Fig. 11, "phrase frequency").

In the ``persona_summary`` mode the model first summarizes the parts of the persona relevant to the question.
PERSONA (Castricato et al. 2024, Sec. 5, Fig. 11) counts, per attribute and model, how often the summaries leave
an attribute out (age and lifestyle most often). The paper does not publish its matcher; here a deterministic
one decides whether a summary mentions an attribute (:func:`attribute_mentioned`), with an optional LLM judge
beside it (``bench.summary_judge``).

The matcher compares case-folded words. An attribute is mentioned when the summary contains

1. a cue for the attribute itself: its name (``religion``, ``political views``) or one of a few words that
   can only refer to it (:data:`ATTRIBUTE_CUES`: ``years old`` for age, ``salary`` for income, ``introverted``
   for the Big Five, ...);
2. for ``sex``: a word of the persona's sex (``she``, ``woman``, ``mother`` for Female; ``he``, ``man``,
   ``father`` for Male);
3. for ``age``: the age itself (``43``), its decade (``40s``, ``forties``), or a life-stage word (``teen``,
   ``elderly``, ``middle-aged``, ...);
4. for ``income``: the amount in any common spelling (``52000``, ``52,000``, ``$52k``);
5. otherwise enough of the value's content words (words of 3+ letters that are not stop words): one of one or
   two, two of three or more (``With health insurance coverage`` needs two of health, insurance, coverage).

Attributes whose value says that it does not apply (``Not applicable``, ``None``, ``N/A``) are not counted: a
summary cannot drop what the persona does not have.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import pandas as pd

from persona_lab.personas import parse_persona

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

NOT_APPLICABLE_VALUES = frozenset({"not applicable", "none", "n/a", "na", "nan", "not formed", ""})
"""Values (case-folded) that mean the attribute does not apply to the persona."""

STOP_WORDS = frozenset(
    """a an and are as at be but by for from has have in into is it its not no of on or per than that the
    their them they this to was were with without who whom year years only other all any some own same very
    more most less such being been oriented based focused driven minded related level type style""".split()
)
"""Words too common to show that a value is mentioned."""

ATTRIBUTE_CUES: dict[str, tuple[str, ...]] = {
    "age": ("age", "aged", "years old", "year old"),
    "sex": ("sex", "gender"),
    "race": ("race", "racial", "ethnicity", "ethnic"),
    "ancestry": ("ancestry", "heritage", "descent", "roots"),
    "household language": ("household language", "speaks", "language"),
    "education": ("education", "degree", "graduate", "diploma", "schooling", "college", "university"),
    "employment status": ("employment", "employed", "unemployed", "retired"),
    "class of worker": ("class of worker", "self employed", "employee", "government"),
    "industry category": ("industry", "sector"),
    "occupation category": ("occupation", "profession", "works as"),
    "detailed job description": ("job", "career", "works as"),
    "income": ("income", "salary", "earns", "earning", "earnings", "wage", "wages", "paycheck"),
    "marital status": ("marital", "married", "single", "divorced", "widowed", "spouse", "husband", "wife"),
    "household type": ("household",),
    "family presence and age": ("children", "kids", "child", "family"),
    "place of birth": ("born", "birthplace", "place of birth", "native"),
    "citizenship": ("citizen", "citizenship", "immigrant", "naturalized"),
    "veteran status": ("veteran", "military", "served"),
    "disability": ("disability", "disabled"),
    "health insurance": ("insurance", "insured", "uninsured", "coverage"),
    "big five scores": (
        "personality",
        "openness",
        "conscientious",
        "conscientiousness",
        "extraversion",
        "extroverted",
        "extrovert",
        "introverted",
        "introvert",
        "agreeable",
        "agreeableness",
        "neurotic",
        "neuroticism",
    ),
    "defining quirks": ("quirk", "quirks"),
    "mannerisms": ("mannerism", "mannerisms"),
    "personal time": ("free time", "spare time", "personal time", "hobby", "hobbies", "leisure"),
    "lifestyle": ("lifestyle", "way of life", "daily life"),
    "ideology": ("ideology", "worldview", "ideological"),
    "political views": (
        "political",
        "politics",
        "politically",
        "liberal",
        "conservative",
        "democrat",
        "republican",
    ),
    "religion": ("religion", "religious", "faith", "church", "spiritual"),
    "cognitive difficulty": ("cognitive", "memory", "concentrating"),
    "ability to speak english": ("english",),
    "vision difficulty": ("vision", "sight", "blind"),
    "fertility": ("fertility", "gave birth", "baby", "pregnant", "newborn"),
    "hearing difficulty": ("hearing", "deaf"),
}
"""Words or phrases that refer to an attribute whatever its value."""

SEX_WORDS: dict[str, tuple[str, ...]] = {
    "female": (
        "female",
        "woman",
        "women",
        "she",
        "her",
        "hers",
        "herself",
        "lady",
        "mother",
        "mom",
        "girl",
        "wife",
    ),
    "male": (
        "male",
        "man",
        "men",
        "he",
        "him",
        "his",
        "himself",
        "gentleman",
        "father",
        "dad",
        "boy",
        "husband",
    ),
}
"""Words that state the persona's sex."""

LIFE_STAGE_WORDS: tuple[str, ...] = (
    "young",
    "youth",
    "teen",
    "teenager",
    "adolescent",
    "child",
    "kid",
    "toddler",
    "elderly",
    "senior",
    "older",
    "middle aged",
    "retiree",
    "millennial",
    "boomer",
)
"""Words that place a person in an age group."""

_DECADES = {
    20: "twenties",
    30: "thirties",
    40: "forties",
    50: "fifties",
    60: "sixties",
    70: "seventies",
    80: "eighties",
    90: "nineties",
}


def _words(text: str) -> list[str]:
    return _WORD.findall(str(text).casefold().replace("-", " "))


def _has_phrase(words: Sequence[str], phrase: str) -> bool:
    target = _words(phrase)
    n = len(target)
    return n > 0 and any(list(words[i : i + n]) == target for i in range(len(words) - n + 1))


def applicable(value: object) -> bool:
    """Whether an attribute value describes the persona (not ``Not applicable``, ``None``, empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return str(value).strip().casefold() not in NOT_APPLICABLE_VALUES


def _number(value: str) -> float | None:
    try:
        return float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _age_mentioned(value: str, words: Sequence[str]) -> bool:
    age = _number(value)
    if age is not None:
        a = int(age)
        decade = a // 10 * 10
        spelled = {str(a), f"{decade}s", _DECADES.get(decade, "")}
        if any(w in spelled for w in words if w):
            return True
    return any(_has_phrase(words, w) for w in LIFE_STAGE_WORDS)


def _income_mentioned(value: str, text: str) -> bool:
    amount = _number(value)
    if amount is None or amount <= 0:
        return False
    whole = int(round(amount))
    spellings = {str(whole), f"{whole:,}"}
    if whole >= 1000 and whole % 1000 == 0:
        spellings |= {f"{whole // 1000}k", f"{whole // 1000},000"}
    flat = str(text).casefold().replace("$", " ")
    return any(re.search(rf"(?<![\d,]){re.escape(s)}(?![\d,])", flat) for s in spellings)


def attribute_mentioned(attribute: str, value: str, summary: str) -> bool:
    """Whether ``summary`` mentions the persona's ``attribute`` (whose value is ``value``); see the module
    docstring for the rules."""
    words = _words(summary)
    if any(_has_phrase(words, cue) for cue in (attribute, *ATTRIBUTE_CUES.get(attribute, ()))):
        return True
    if attribute == "sex":
        return any(w in SEX_WORDS.get(str(value).strip().casefold(), ()) for w in words)
    if attribute == "age":
        return _age_mentioned(value, words)
    if attribute == "income":
        return _income_mentioned(value, summary)
    content = [w for w in dict.fromkeys(_words(value)) if len(w) >= 3 and w not in STOP_WORDS]
    if not content:
        return False
    need = 1 if len(content) <= 2 else 2
    present = set(words)
    return sum(w in present for w in content) >= need


def summary_coverage(summary: str, persona: str) -> dict[str, bool]:
    """For every applicable attribute of ``persona`` (PERSONA's text), whether ``summary`` mentions it."""
    attributes = parse_persona(persona, source="persona summary").attributes()
    return {k: attribute_mentioned(k, v, summary) for k, v in attributes.items() if applicable(v)}


def summary_attributes(rows: pd.DataFrame, judged: Mapping[int, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per (summary, applicable persona attribute): mentioned by the matcher and by the judge.

    Args:
        rows: bench rows of the ``persona_summary`` mode whose answer succeeded: ``model``, ``persona_id``,
            ``prompt_id``, ``persona`` (the text the model saw), ``reasoning`` (the summary).
        judged: optional row index -> attribute names the LLM judge found in that summary (absent: not judged).

    Returns:
        Columns ``model``, ``persona_id``, ``prompt_id``, ``attribute``, ``value``, ``mentioned`` (matcher),
        ``judge_mentioned`` (bool, or NA when not judged).
    """
    out = []
    for idx, row in rows.iterrows():
        persona = str(row["persona"])
        attributes = parse_persona(persona, source=f"bench row {idx}").attributes()
        judge = None if judged is None or idx not in judged else set(judged[idx])
        for key, value in attributes.items():
            if not applicable(value):
                continue
            out.append(
                {
                    "model": row["model"],
                    "persona_id": row["persona_id"],
                    "prompt_id": row["prompt_id"],
                    "attribute": key,
                    "value": value,
                    "mentioned": attribute_mentioned(key, value, str(row["reasoning"])),
                    "judge_mentioned": pd.NA if judge is None else key in judge,
                }
            )
    table = pd.DataFrame(
        out,
        columns=["model", "persona_id", "prompt_id", "attribute", "value", "mentioned", "judge_mentioned"],
    )
    table["judge_mentioned"] = table["judge_mentioned"].astype("boolean")
    return table


def dropped_attribute_counts(coverage: pd.DataFrame, *, source: str = "matcher") -> pd.DataFrame:
    """Per model and attribute: summaries that had the attribute, how many dropped it, and the share.

    Args:
        coverage: the output of :func:`summary_attributes`.
        source: ``matcher`` (column ``mentioned``) or ``judge`` (column ``judge_mentioned``; unjudged rows are
            left out).

    Returns:
        Columns ``model``, ``attribute``, ``summaries``, ``dropped``, ``share_dropped``, ``source``, sorted by
        model and descending share.
    """
    col = "mentioned" if source == "matcher" else "judge_mentioned"
    data = coverage[coverage[col].notna()] if col == "judge_mentioned" else coverage
    if data.empty:
        return pd.DataFrame(columns=["model", "attribute", "summaries", "dropped", "share_dropped", "source"])
    grouped = data.assign(dropped=~data[col].astype(bool)).groupby(["model", "attribute"], sort=False)
    table = grouped.agg(summaries=("dropped", "size"), dropped=("dropped", "sum")).reset_index()
    table["dropped"] = table["dropped"].astype(int)
    table["share_dropped"] = table["dropped"] / table["summaries"]
    table["source"] = source
    return table.sort_values(
        ["model", "share_dropped", "attribute"], ascending=[True, False, True]
    ).reset_index(drop=True)
