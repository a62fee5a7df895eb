"""The kappa panels of Figs. 6-9 from a real-shaped annotation CSV, per-group kappas, disagreements, the
regression, and the figures' human panels (drawn, or saying there are no human labels)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from persona_lab import charts
from persona_lab.agreement import (
    PEOPLE,
    Reference,
    agreement_regression,
    disagreements,
    group_kappas,
    human_votes,
    kappa_panels,
    read_annotations_csv,
    reference_labels,
)

REV, ORIG = "revision", "original"
QUESTIONS = ["q1", "q2", "q3", "q4"]
STUDY = pd.DataFrame(
    [
        {
            "persona_id": p,
            "prompt_id": q,
            "position": i,
            "prompt": f"{q}?",
            "original": f"o {q}",
            "revision": f"r {p} {q}",
        }
        for p in ("p1", "p2")
        for i, q in enumerate(QUESTIONS)
    ]
)
# People: four per persona. Per question (h1..h4 / h5..h8):
#   p1: q1 r r r o -> r;  q2 o o o r -> o;  q3 r r o o -> tie;  q4 r r r r -> r
#   p2: q1 o o o o -> o;  q2 r r r o -> r;  q3 o o o r -> o;    q4 r o r r -> r
VOTES = {
    "p1": {"q1": "rrro", "q2": "ooor", "q3": "rroo", "q4": "rrrr"},
    "p2": {"q1": "oooo", "q2": "rrro", "q3": "ooor", "q4": "rorr"},
}
MODELS = {
    "m1": {"p1": "roro", "p2": "orrr"},  # p1: q1 r, q2 o, q3 r, q4 o; p2: o r r r
    "m2": {"p1": "rrro", "p2": "oorr"},
}


def prolific_csv(path) -> None:
    lines = ["PROLIFIC_PID,STUDY_ID,persona_id,prompt_id,choice,rationale,started_datetime"]
    for p, per_q in VOTES.items():
        offset = 0 if p == "p1" else 4
        for q, letters in per_q.items():
            for k, letter in enumerate(letters):
                choice = REV if letter == "r" else ORIG
                lines.append(
                    f'5f{offset + k:02d}aa,S1,{p},{q},{choice},"As this person, I prefer the {choice}.",'
                    "2024-05-01T10:00:00Z"
                )
    path.write_text("\n".join(lines) + "\n")


def model_rows() -> pd.DataFrame:
    rows = []
    for a, per_p in MODELS.items():
        for p, letters in per_p.items():
            for q, letter in zip(QUESTIONS, letters, strict=True):
                rows.append(
                    {
                        "annotator": a,
                        "kind": "model",
                        "persona_id": p,
                        "prompt_id": q,
                        "choice": REV if letter == "r" else ORIG,
                        "order_shown": "revision,original",
                        "rationale": f"{a} on {q}",
                        "failure": "",
                        "raw": "",
                        "source": "model",
                    }
                )
    # a failed judgment never counts
    rows.append(
        {
            "annotator": "m1",
            "kind": "model",
            "persona_id": "p1",
            "prompt_id": "q9",
            "choice": None,
            "order_shown": "",
            "rationale": "",
            "failure": "degenerate: justification empty",
            "raw": "{}",
            "source": "model",
        }
    )
    return pd.DataFrame(rows)


@pytest.fixture
def judgments(tmp_path) -> pd.DataFrame:
    path = tmp_path / "prolific_export.csv"
    prolific_csv(path)
    humans = read_annotations_csv(path, STUDY)
    assert len(humans) == 32 and humans["annotator"].nunique() == 8
    return pd.concat([humans, model_rows()], ignore_index=True)


def cell(panels, name: str, a: str, b: str) -> float:
    t = panels.table
    row = t[(t["panel"] == name) & (t["persona_a"] == a) & (t["persona_b"] == b)]
    assert len(row) == 1, (name, a, b)
    return float(row["kappa"].iloc[0])


def test_majority_vote_of_the_csv(judgments) -> None:
    votes = human_votes(judgments, min_votes=3).set_index(["persona_id", "prompt_id"])
    assert votes["status"].tolist() == ["majority", "majority", "tie", "majority"] + ["majority"] * 4
    assert votes.loc[("p1", "q3"), "choice"] is None  # the 2 : 2 tie has no label
    assert votes["choice"].tolist() == [REV, ORIG, None, REV, ORIG, REV, ORIG, REV]


def test_panels_by_hand(judgments) -> None:
    panels = kappa_panels(judgments, ["p1", "p2"], ["m1", "m2"], min_votes=3, n_boot=200, seed=0)
    assert panels.has_human
    hm = "people vs m1"
    # people p1 (q1 r, q2 o, q4 r) vs m1 p1 (r, o, o): p_o 2/3, p_e 4/9 -> kappa 2/5
    assert cell(panels, hm, "p1", "p1") == pytest.approx(0.4, abs=1e-12)
    # people p2 (o r o r) vs m1 p2 (o r r r): p_o 3/4, p_e 1/2 -> 1/2
    assert cell(panels, hm, "p2", "p2") == pytest.approx(0.5, abs=1e-12)
    # pooled (people p1, m1 p2) on q1 q2 q4 + (people p2, m1 p1) on q1-q4: n 7, agree 1,
    # people side r 4 o 3, model side r 4 o 3: kappa = (7*1 - 25) / (49 - 25) = -3/4
    assert cell(panels, hm, "p1", "p2") == pytest.approx(-0.75, abs=1e-12)
    assert (
        (panels.table["panel"] == hm)
        & (panels.table["persona_a"] == "p2")
        & (panels.table["persona_b"] == "p1")
    ).sum() == 0
    # people vs people: every ordered pair of individual annotators. p1 per question (r, o): (3,1) (1,3) (2,2) (4,0):
    # agreements 6 + 6 + 4 + 12 = 28 of 48 pairs; each side r 3*10, o 3*6 -> kappa = (48*28 - 1224) / (2304 - 1224) = 1/9
    assert cell(panels, "people vs people", "p1", "p1") == pytest.approx(1 / 9, abs=1e-12)
    # p2: (0,4) (3,1) (1,3) (3,1): agreements 12 + 6 + 6 + 6 = 30; sides r 21, o 27 -> (1440 - 1170) / 1134 = 5/21
    assert cell(panels, "people vs people", "p2", "p2") == pytest.approx(5 / 21, abs=1e-12)
    # p1 x p2: 64 pairs, agreements 4 + 6 + 8 + 12 = 30; sides r 40 o 24 / r 28 o 36 -> (1920 - 1984) / 2112 = -1/33
    assert cell(panels, "people vs people", "p1", "p2") == pytest.approx(-1 / 33, abs=1e-12)
    # m1 p1 (r o r o) vs m2 p1 (r r r o): p_o 3/4, p_e 1/2 -> 1/2
    assert cell(panels, "m1 vs m2", "p1", "p1") == pytest.approx(0.5, abs=1e-12)
    assert set(panels.table["panel"]) == {"people vs m1", "people vs m2", "people vs people", "m1 vs m2"}
    t = panels.table
    defined = t[np.isfinite(t["kappa"].astype(float)) & np.isfinite(t["low"].astype(float))]
    assert (
        (defined["low"] <= defined["kappa"] + 1e-12) & (defined["kappa"] <= defined["high"] + 1e-12)
    ).all()


def test_figures_draw_the_human_panels(judgments, tmp_path) -> None:
    panels = kappa_panels(judgments, ["p1", "p2"], ["m1", "m2"], min_votes=3, n_boot=50)
    names = [*panels.human_vs_model(), "people vs people"]
    fig6 = charts.kappa_heatmaps_figure(panels.table, names, panels.personas, title="Fig. 6")
    spec = json.dumps(fig6.to_dict())
    assert "No human labels" not in spec and spec.count('"rect"') >= 6  # 3 heatmaps x (defined + undefined)
    assert '"domain": [-1, 1]' in spec
    fig7 = charts.kappa_histograms_figure(panels.table, names, title="Fig. 7")
    assert "No human labels" not in json.dumps(fig7.to_dict())
    charts.save_figure(fig6, "fig06_test", tmp_path)
    assert (tmp_path / "fig06_test.svg").stat().st_size > 1000


def test_without_human_labels_the_figures_say_so() -> None:
    panels = kappa_panels(model_rows(), ["p1", "p2"], ["m1", "m2"], min_votes=3, n_boot=50)
    assert not panels.has_human and set(panels.table["panel"]) == {"m1 vs m2"}
    assert panels.notes["people vs m1"] == "no human labels in this run"
    names = [*panels.human_vs_model(), "people vs people"]
    for fig in (
        charts.kappa_heatmaps_figure(panels.table, names, panels.personas, title="Fig. 6"),
        charts.kappa_histograms_figure(panels.table, names, title="Fig. 7"),
    ):
        spec = fig.to_dict()
        said = [c["title"]["text"] for c in spec["concat"] if c["mark"]["type"] == "text"]
        assert said == names  # both model panels and the people panel say it, none is dropped or filled
        assert "No human labels in this run." in json.dumps(spec["datasets"])
    ref = reference_labels(model_rows(), ["m1", "m2"])
    assert ref.name == "m1" and ref.note.startswith("no human labels")


def personas_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "persona_id": ["p1", "p2"],
            "age": [30, 70],
            "sex": ["Female", "Male"],
            "race": ["White alone"] * 2,
            "education": ["Bachelor's degree"] * 2,
            "income": [1.0, 2.0],
            "marital status": ["Married"] * 2,
            "political views": ["Progressive Democrat", "Conservative Republican"],
        }
    )


def test_group_kappas_and_disagreements_by_hand(judgments) -> None:
    ref = reference_labels(judgments, ["m1", "m2"], min_votes=3)
    assert ref.name == PEOPLE and len(ref.labels) == 7
    groups = charts.persona_groups(personas_table())
    assert groups.set_index("persona_id").loc["p2", ["Age", "Sex", "Political lean"]].tolist() == [
        "65+",
        "Male",
        "right",
    ]
    out = group_kappas(judgments, ref, groups, ["Sex"], ["m1", "m2"], n_boot=100).set_index(
        ["annotator", "group"]
    )
    # m1 over the 7 labelled items: agree 5; reference r 4 o 3, m1 r 4 o 3 -> (35 - 25) / (49 - 25) = 5/12
    assert out.loc[("m1", "all personas"), "kappa"] == pytest.approx(5 / 12, abs=1e-12)
    assert out.loc[("m1", "Female"), "kappa"] == pytest.approx(0.4, abs=1e-12)  # = the Fig. 6 diagonal of p1
    assert out.loc[("m1", "Male"), "kappa"] == pytest.approx(0.5, abs=1e-12)
    assert out.loc[("m1", "Female"), "n_items"] == 3 and out.loc[("m1", "Male"), "n_personas"] == 1
    drill = disagreements(judgments, ref, STUDY)
    mine = drill[drill["annotator"] == "m1"]
    assert mine[["persona_id", "prompt_id", "choice", "reference_choice"]].values.tolist() == [
        ["p1", "q4", ORIG, REV],
        ["p2", "q3", REV, ORIG],
    ]
    assert (
        "I prefer the revision" in mine["reference_rationales"].iloc[0]
        and mine["revision"].iloc[0] == "r p1 q4"
    )


def test_regression_recovers_a_known_odds_ratio() -> None:
    # 10 women and 10 men personas, 20 questions each: the model agrees with the reference on 18 of 20 questions
    # of every woman and 10 of 20 of every man. One binary predictor: the logit MLE is the empirical log odds, so
    # the odds ratio men vs women is (100/100) / (180/20) = 1/9.
    persons = [f"w{i}" for i in range(10)] + [f"m{i}" for i in range(10)]
    rows, refs = [], []
    for p in persons:
        agree_n = 18 if p.startswith("w") else 10
        for k in range(20):
            ref = REV if k % 2 else ORIG
            refs.append({"persona_id": p, "prompt_id": f"q{k}", "choice": ref})
            choice = ref if k < agree_n else (ORIG if ref == REV else REV)
            rows.append(
                {
                    "annotator": "m",
                    "kind": "model",
                    "persona_id": p,
                    "prompt_id": f"q{k}",
                    "choice": choice,
                    "failure": "",
                }
            )
    groups = pd.DataFrame({"persona_id": persons, "Sex": ["Female"] * 10 + ["Male"] * 10})
    res = agreement_regression(
        pd.DataFrame(rows), Reference("people", pd.DataFrame(refs), ""), groups, ["Sex"]
    )
    assert res.n == 400 and res.note == ""
    male = res.table.set_index("term").loc["Sex: Male (vs Female)"]
    assert male["odds_ratio"] == pytest.approx(1 / 9, rel=1e-6)
    assert male["low"] < 1 / 9 < male["high"] < 1 and male["p_value"] < 1e-6
    assert res.table.set_index("term").iloc[0]["odds_ratio"] == pytest.approx(
        9.0, rel=1e-6
    )  # intercept: 180/20
    # no variation: a clear note, no table
    same = agreement_regression(
        pd.DataFrame(rows[:18]), Reference("people", pd.DataFrame(refs), ""), groups, ["Sex"]
    )
    assert same.table.empty and same.note == "no variation: every judgment agrees with the reference"


def test_leave_one_out_figure_lists_every_attribute() -> None:
    kappa = pd.DataFrame(
        {
            "attribute": ["age", "age"],
            "pair": [0, 1],
            "value": ["30", "70"],
            "kappa": [0.5, float("nan")],
            "n_items": [3, 3],
        }
    )
    spec = json.dumps(charts.leave_one_out_chart(kappa, eligible={"age": 12, "political views": 0}).to_dict())
    assert "age (1 of 2 pairs defined)" in spec and "political views (no eligible persona)" in spec
    empty = charts.leave_one_out_chart(kappa.iloc[:0]).to_dict()
    assert "No leave-one-out pairs in this run" in json.dumps(empty)
