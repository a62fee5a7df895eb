"""Leave-one-out attribute analysis: twins, eligibility of conditional attributes, kappa per pair."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from persona_lab.agreement import check_attributes, twin_pairs
from persona_lab.agreement._loo import loo_kappas
from persona_lab.errors import PersonaLabError
from persona_lab.personas import parse_persona, read_personas, table_from_personas


@pytest.fixture(scope="module")
def released(shared) -> pd.DataFrame:
    return table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"), 0)


def test_twins_differ_by_exactly_the_attribute(released) -> None:
    pairs, eligible = twin_pairs(released, ["religion", "fertility"], n_pairs=5, base_size=3, seed=0)
    # only 2 of the 100 released personas have a fertility line ("Post-menopausal", "Has given birth to 2
    # children"): the conditional attribute gets 2 pairs, religion (every persona has it) the 5 asked for
    assert pairs.groupby("attribute").size().to_dict() == {"fertility": 2, "religion": 5}
    texts = released.set_index("persona_id")["text"]
    for row in pairs.itertuples():
        without = parse_persona(row.text_without).attributes()
        with_ = parse_persona(row.text_with).attributes()
        assert len(without) == 3 and len(with_) == 4
        assert set(with_) - set(without) == {row.attribute} and with_[row.attribute] == row.value
        source = parse_persona(texts[row.persona_id]).attributes()
        assert all(source[k] == v for k, v in with_.items())  # the persona's own lines
        assert row.text_with.splitlines() == [
            ln for ln in texts[row.persona_id].splitlines() if ln.split(": ")[0] in with_
        ]
        assert all("Not applicable" not in v for v in with_.values())
    assert eligible == {"religion": 100, "fertility": 2}
    again, _ = twin_pairs(released, ["religion", "fertility"], n_pairs=5, base_size=3, seed=0)
    pd.testing.assert_frame_equal(pairs, again)
    other, _ = twin_pairs(released, ["religion", "fertility"], n_pairs=5, base_size=3, seed=1)
    assert not other.equals(pairs)


def test_conditional_attribute_with_few_eligible_personas(released) -> None:
    pairs, eligible = twin_pairs(released, ["ability to speak english"], n_pairs=40, seed=0)
    n = eligible["ability to speak english"]
    assert len(pairs) == n < 40  # every eligible persona once, no more
    assert pairs["value"].map(lambda v: not v.startswith("Not applicable")).all()


def test_unknown_attribute_is_an_error() -> None:
    with pytest.raises(PersonaLabError, match="'agee' is not a PERSONA attribute"):
        check_attributes(["age", "agee"])


def test_kappa_per_pair_by_hand() -> None:
    pairs = pd.DataFrame(
        {"attribute": ["age", "age"], "pair": [0, 1], "persona_id": ["p1", "p2"], "value": ["30", "70"]}
    )
    rows = []
    # pair 0 over q1-q4: without = w w h h, with = w h h h -> the 2 x 2 case: kappa 1/2
    # pair 1: both twins always choose "with": one class only
    for pair, twin, letters in [
        (0, "without", "wwhh"),
        (0, "with", "whhh"),
        (1, "without", "hhhh"),
        (1, "with", "hhhh"),
    ]:
        for k, letter in enumerate(letters):
            rows.append(
                {
                    "attribute": "age",
                    "pair": pair,
                    "twin": twin,
                    "prompt_id": f"q{k}",
                    "choice": "without" if letter == "w" else "with",
                    "failure": "",
                }
            )
    rows.append(
        {
            "attribute": "age",
            "pair": 0,
            "twin": "with",
            "prompt_id": "q9",
            "choice": None,
            "failure": "timeout: x",
        }
    )
    out = loo_kappas(pairs, pd.DataFrame(rows), 4, n_boot=100, level=0.95, seed=0).set_index("pair")
    assert out.loc[0, "kappa"] == 0.5 and out.loc[0, "n_items"] == 4 and out.loc[0, "reason"] == ""
    assert math.isnan(out.loc[1, "kappa"]) and out.loc[1, "reason"] == "one class only"
    assert out.loc[0, "low"] <= 0.5 <= out.loc[0, "high"]


def test_baseline_answers_skip_only_failed_originals() -> None:
    feedback = pd.DataFrame(
        {
            "persona_id": ["a", "b", "a", "b", "c", "a"],
            "prompt_id": ["q1", "q1", "q2", "q3", "q4", "q5"],
            "original": ["o1", "o1", "o2", "o3", None, "o5"],
            "failure": [
                "identical: the revision repeats the original",  # the original is fine: kept
                "",
                "original call timeout: no answer",
                "degenerate: original echoes the instruction",
                "",  # no original text
                "degenerate: critique repeats the answer",  # kept
            ],
        }
    )
    from persona_lab.agreement._loo import usable_originals

    assert usable_originals(feedback)[["prompt_id", "original"]].values.tolist() == [
        ["q1", "o1"],
        ["q5", "o5"],
    ]
