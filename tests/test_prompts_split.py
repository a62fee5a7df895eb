"""Train / held-out split: scaled sizes, Hamilton apportionment by topic, seeding, sklearn cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from persona_lab.errors import PersonaLabError
from persona_lab.prompts import split_prompts
from persona_lab.prompts._split import largest_remainder, scaled_split_sizes


def test_scaled_split_sizes():
    assert scaled_split_sizes(3868, 3000, 868) == (3000, 868)
    assert scaled_split_sizes(4620, 3000, 868) == (3000, 868)  # surplus is left unused
    assert scaled_split_sizes(60, 3000, 868) == (46, 14)  # floor(60 * 3000 / 3868) = floor(46.53)
    assert scaled_split_sizes(1, 3000, 868) == (0, 1)
    assert scaled_split_sizes(0, 3000, 868) == (0, 0)
    with pytest.raises(PersonaLabError):
        scaled_split_sizes(10, -1, 5)


def test_largest_remainder_hand_computed():
    # 7 of 10 over sizes 6/3/1: quotas 4.2, 2.1, 0.7 -> floors 4, 2, 0 (6); the last unit goes to the
    # largest fraction (0.7) -> 4, 2, 1.
    assert list(largest_remainder(np.array([6, 3, 1]), 7)) == [4, 2, 1]
    # 3 more over capacities 2/1/0 (what is left): quotas 1.8, 0.9, 0.3 -> floors 1, 0, 0; fractions
    # 0.9 > 0.8 > 0.3 -> group 1 then group 0 -> 2, 1, 0.
    assert list(largest_remainder(np.array([6, 3, 1]), 3, capacity=np.array([2, 1, 0]))) == [2, 1, 0]
    assert list(largest_remainder(np.array([1, 1]), 0)) == [0, 0]
    with pytest.raises(PersonaLabError):
        largest_remainder(np.array([1, 1]), 3)


def _kept(sizes: dict[int, int]) -> pd.DataFrame:
    rows = [(t, i) for t, n in sizes.items() for i in range(n)]
    return pd.DataFrame(
        {
            "prompt_id": [f"t{t}_{i:03d}" for t, i in rows],
            "topic": pd.array([t for t, _ in rows], dtype="Int64"),
            "kept": True,
        }
    )


def test_split_is_stratified_by_topic_hand_computed():
    df = _kept({0: 6, 1: 3, 2: 1})
    out = split_prompts(df, n_train=7, n_heldout=3, seed=0)
    counts = out.groupby(["topic", "split"]).size().unstack(fill_value=0)
    assert counts.loc[0].to_dict() == {"heldout": 2, "train": 4}
    assert counts.loc[1].to_dict() == {"heldout": 1, "train": 2}
    assert counts.loc[2].to_dict() == {"heldout": 0, "train": 1}


def test_split_scales_down_and_leaves_unkept_rows_out():
    df = _kept({0: 30, 1: 20, 2: 10})
    df = pd.concat(
        [df, pd.DataFrame({"prompt_id": ["z"], "topic": pd.array([pd.NA], dtype="Int64"), "kept": [False]})]
    )
    out = split_prompts(df, 3000, 868, seed=3)
    assert out["split"].value_counts().to_dict() == {"train": 46, "heldout": 14}
    assert out.loc[out["prompt_id"] == "z", "split"].iloc[0] is None
    # Per topic: train quotas 23.0, 15.3, 7.7 -> 23, 15, 7 (+1 to the 0.67 fraction) = 23, 15, 8.
    train = out[out["split"] == "train"].groupby("topic").size().to_dict()
    assert train == {0: 23, 1: 15, 2: 8}


def test_split_is_seeded_and_independent_of_row_order():
    df = _kept({0: 40, 1: 25})
    a = split_prompts(df, 30, 10, seed=1).set_index("prompt_id")["split"]
    b = split_prompts(df.sample(frac=1, random_state=9), 30, 10, seed=1).set_index("prompt_id")["split"]
    c = split_prompts(df, 30, 10, seed=2).set_index("prompt_id")["split"]
    assert a.equals(b.loc[a.index])
    assert not a.equals(c)
    assert a.value_counts().to_dict() == {"train": 30, "heldout": 10, "unused": 25}


def test_split_agrees_with_sklearn_stratified_counts():
    # scikit-learn's stratified train_test_split apportions per class too; counts agree within one prompt.
    rng = np.random.default_rng(0)
    topics = rng.choice(8, size=500, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    df = pd.DataFrame({"prompt_id": [f"p{i:03d}" for i in range(500)], "topic": topics, "kept": True})
    out = split_prompts(df, 388, 112, seed=0)
    ours = out[out["split"] == "train"].groupby("topic").size()
    tr, _ = train_test_split(df, train_size=388, test_size=112, stratify=df["topic"], random_state=0)
    theirs = tr.groupby("topic").size()
    assert (ours - theirs).abs().max() <= 1
    assert ours.sum() == 388


def test_split_without_topics_uses_one_stratum():
    df = pd.DataFrame({"prompt_id": list("abcde"), "kept": True})
    out = split_prompts(df, 3, 2, seed=0)
    assert sorted(out["split"]) == ["heldout", "heldout", "train", "train", "train"]
    with pytest.raises(PersonaLabError, match="no 'kept' column"):
        split_prompts(df.drop(columns="kept"), 3, 2, seed=0)
