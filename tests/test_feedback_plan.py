"""PERSONA's sampling plan of feedback pairs, its scaling rule and calls per pair; no model is called."""

from __future__ import annotations

import pandas as pd
import pytest

from persona_lab.errors import PersonaLabError
from persona_lab.feedback import calls_per_pair, describe_plan, persona_rng, sampling_plan, scaled_sizes

PERSONAS = [f"p{i:05d}" for i in range(1, 1587)]
TRAIN = [f"t{i:04d}" for i in range(3000)]
HELDOUT = [f"h{i:03d}" for i in range(868)]


@pytest.fixture(scope="module")
def paper_plan() -> pd.DataFrame:
    return sampling_plan(PERSONAS, TRAIN, HELDOUT, seed=0)


def test_the_papers_plan_has_317200_pairs_200_per_persona(paper_plan: pd.DataFrame) -> None:
    assert list(paper_plan.columns) == ["persona_id", "prompt_id", "split"]
    assert len(paper_plan) == 317_200
    counts = paper_plan["split"].value_counts().to_dict()
    assert counts == {"train": 158_600, "test_seen": 79_300, "test_unseen": 79_300}
    assert counts["test_seen"] + counts["test_unseen"] == 158_600
    per_persona = paper_plan.groupby("persona_id").size()
    assert len(per_persona) == 1586 and set(per_persona) == {200}
    per_split = paper_plan.groupby(["persona_id", "split"]).size().unstack()
    assert set(per_split["train"]) == {100} and set(per_split["test_seen"]) == {50}
    assert set(per_split["test_unseen"]) == {50}


def test_seen_prompts_are_train_prompts_and_unseen_ones_held_out(paper_plan: pd.DataFrame) -> None:
    by_split = {s: set(g["prompt_id"]) for s, g in paper_plan.groupby("split")}
    assert by_split["train"] <= set(TRAIN)
    assert by_split["test_seen"] <= set(TRAIN)
    assert by_split["test_unseen"] <= set(HELDOUT)
    assert not paper_plan.duplicated(["persona_id", "prompt_id"]).any()
    # 1,586 personas x 150 draws from 3,000 train prompts: every train prompt is used (P(unused) ~ e^-79)
    assert len(by_split["train"] | by_split["test_seen"]) == 3000
    assert len(by_split["test_unseen"]) == 868
    assert describe_plan(paper_plan, _paper_config())["prompts"] == 3868


def _paper_config():
    from persona_lab.config import load_config

    return load_config("paper")


def test_calls_per_pair_of_the_papers_plan(paper_plan: pd.DataFrame) -> None:
    counts = describe_plan(paper_plan, _paper_config())
    assert counts["calls_per_pair"] == pytest.approx(2 + 3868 / 317_200)
    assert round(counts["calls_per_pair"], 3) == 2.012
    assert round(calls_per_pair(3868, 317_200, single_call=True), 3) == 1.012
    assert calls_per_pair(4, 8, rounds=2) == 4.5


def test_the_plan_is_seeded_and_a_personas_draws_do_not_depend_on_the_others(
    paper_plan: pd.DataFrame,
) -> None:
    small = sampling_plan(PERSONAS[:3], TRAIN, HELDOUT, seed=0)
    first3 = paper_plan[paper_plan["persona_id"].isin(PERSONAS[:3])].reset_index(drop=True)
    pd.testing.assert_frame_equal(small, first3)
    other = sampling_plan(PERSONAS[:3], TRAIN, HELDOUT, seed=1)
    assert not other["prompt_id"].equals(small["prompt_id"])
    # the draws are numpy's choice without replacement on the persona's own generator
    rng = persona_rng(0, "p00001")
    seen = rng.choice(3000, size=150, replace=False)
    assert small["prompt_id"].iloc[:150].tolist() == [TRAIN[i] for i in seen]


def test_small_runs_are_scaled_down_proportionally() -> None:
    assert scaled_sizes((100, 50, 50), 3000, 868) == (100, 50, 50)
    assert scaled_sizes((100, 50, 50), 8, 2) == (4, 2, 2)  # f = min(8/150, 2/50) = 1/25
    assert scaled_sizes((100, 50, 50), 100, 868) == (66, 33, 33)  # f = 100/150 = 2/3, rounded down
    assert scaled_sizes((100, 50, 50), 2, 0) == (1, 1, 0)  # no held-out prompts: no unseen pairs
    assert scaled_sizes((1, 1, 1), 1, 5) == (1, 0, 1)  # one train prompt serves the train pair only
    assert scaled_sizes((1, 1, 1), 5, 5) == (1, 1, 1)
    plan = sampling_plan(["a", "b"], [f"t{i}" for i in range(8)], ["h0", "h1"], seed=0)
    assert plan["split"].value_counts().to_dict() == {"train": 8, "test_seen": 4, "test_unseen": 4}
    assert plan.groupby("persona_id").size().to_dict() == {"a": 8, "b": 8}


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(PersonaLabError, match="persona id 'a' occurs twice"):
        sampling_plan(["a", "b", "a"], TRAIN, HELDOUT)
    with pytest.raises(PersonaLabError, match="prompt 't0001' is both a train and a held-out prompt"):
        sampling_plan(["a"], TRAIN, ["t0001"])
    with pytest.raises(PersonaLabError, match="expected three pair counts"):
        scaled_sizes((100, 50), 10, 10)
