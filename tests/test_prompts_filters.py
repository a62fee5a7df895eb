"""Rule filters and the funnel: hand-computed flags and the measured PRISM counts (8,011 -> 4,620)."""

from __future__ import annotations

import pandas as pd
import pytest

from persona_lab.config import PromptsConfig, RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.prompts import PRISM_PROMPTS, funnel_counts, load_prompts, rule_filter
from persona_lab.text import word_count


def _df(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"prompt_id": [f"x{i}" for i in range(len(texts))], "text": texts, "source": "test"})


TEXTS = [
    "Is it ok?",  # 3 words: has '?', too short
    "Should abortion be legal everywhere?",  # 5 words, '?': passes
    "Should abortion be legal everywhere?",  # exact repeat: duplicate
    "Tell me why people vote at all",  # 7 words, no '?'
    "Should  abortion be legal  everywhere?",  # extra spaces: a different text, 5 words: passes
    "Tell me why people vote at all",  # repeat of a prompt that failed the '?' rule: not a duplicate
]


def test_word_count_splits_on_any_whitespace():
    assert word_count("a  b\tc\nd") == 4
    assert word_count("   ") == 0


def test_rule_filter_flags_hand_computed():
    out = rule_filter(_df(TEXTS), PromptsConfig())
    assert list(out["has_question_mark"]) == [True, True, True, False, True, False]
    assert list(out["enough_words"]) == [False, True, True, True, True, True]
    assert list(out["duplicate"]) == [False, False, True, False, False, False]
    assert list(out["dropped_at"]) == ["min_words", None, "duplicate", "question_mark", None, "question_mark"]
    assert list(out["kept"]) == [False, True, False, False, True, False]
    # loaded 6 -> '?' 4 (rows 0,1,2,4) -> >=5 words 3 (1,2,4) -> unique 2 (1,4)
    assert list(funnel_counts(out)["count"]) == [6, 4, 3, 2]
    assert list(funnel_counts(out).columns) == ["stage", "count"]


def test_rule_filter_switches():
    # Without the '?' rule, rows 3 and 5 pass the word rule and row 5 repeats row 3.
    out = rule_filter(_df(TEXTS), PromptsConfig(require_question_mark=False))
    assert list(out["duplicate"]) == [False, False, True, False, False, True]
    assert list(out["kept"]) == [False, True, False, True, True, False]
    assert list(funnel_counts(out)["count"]) == [6, 6, 5, 3]
    # Without de-duplication the repeat is flagged but kept.
    out = rule_filter(_df(TEXTS), PromptsConfig(deduplicate=False))
    assert out["duplicate"].sum() == 1 and list(out["kept"]) == [False, True, True, False, True, False]
    # min_words = 0: every '?' prompt passes the word rule; RunConfig is accepted too.
    cfg = RunConfig(prompts=PromptsConfig(min_words=0))
    assert rule_filter(_df(TEXTS), cfg)["kept"].sum() == 3
    with pytest.raises(PersonaLabError, match="min_words"):  # a section built without validation
        rule_filter(_df(TEXTS), PromptsConfig.model_construct(min_words=-1))
    with pytest.raises(PersonaLabError, match="lacks column"):
        rule_filter(pd.DataFrame({"text": ["a?"]}), PromptsConfig())


def test_prism_rule_filter_counts(shared):
    # Measured facts of the public list (../shared/data/MANIFEST.md): 8,011 -> 5,007 -> 4,652 -> 4,620.
    df = load_prompts(shared / "prism/prism_opening_prompts.json")
    out = rule_filter(df, PromptsConfig())
    funnel = funnel_counts(out)
    assert list(funnel["stage"]) == ["loaded", "question_mark", "min_words", "unique"]
    assert list(funnel["count"]) == [8011, 5007, 4652, 4620]
    assert out["kept"].sum() == 4620 and out.loc[out["kept"], "text"].is_unique
    no_dedup = rule_filter(df, PromptsConfig(deduplicate=False))
    assert no_dedup["kept"].sum() == 4652 and no_dedup["duplicate"].sum() == 32


def test_shipped_prism_prompts_run_the_papers_funnel_offline():
    # The shipped copy (data/prism_prompts.json) gives the same funnel without ../shared/data:
    # 8,011 loaded -> 5,007 with '?' -> 4,652 with >= 5 words (the two rules) -> 4,620 unique.
    out = rule_filter(load_prompts(PRISM_PROMPTS), PromptsConfig())
    assert list(funnel_counts(out)["count"]) == [8011, 5007, 4652, 4620]
    assert int((out["has_question_mark"] & out["enough_words"]).sum()) == 4652
    assert out.loc[out["kept"], "text"].nunique() == 4620
