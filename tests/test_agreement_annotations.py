"""Human annotations: the study design, majority votes, the app's store, CSV import with validation."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from persona_lab.agreement import (
    CHOICES,
    app_judgments,
    load_assignments,
    majority_vote,
    open_assignment,
    read_annotations_csv,
    save_answer,
    study_design,
    vote_summary,
)
from persona_lab.errors import PersonaLabError


def feedback_table() -> pd.DataFrame:
    """Feedback rows as the feedback stage writes them: 3 personas; p3's second pair failed."""
    rows = [
        ("p1", "q1", ""),
        ("p1", "q2", ""),
        ("p1", "q3", ""),
        ("p2", "q1", ""),
        ("p2", "q2", ""),
        ("p2", "q4", ""),
        ("p3", "q1", ""),
        ("p3", "q5", "degenerate: revision echoes the instruction"),
    ]
    return pd.DataFrame(
        {
            "persona_id": [r[0] for r in rows],
            "prompt_id": [r[1] for r in rows],
            "split": "train",
            "original": [f"original answer to {r[1]}" for r in rows],
            "revision": [None if r[2] else f"revision of {r[1]} for {r[0]}" for r in rows],
            "chosen": [None if r[2] else f"revision of {r[1]} for {r[0]}" for r in rows],
            "rejected": [None if r[2] else f"original answer to {r[1]}" for r in rows],
            "failure": [r[2] for r in rows],
        }
    )


PROMPTS = pd.DataFrame(
    {"prompt_id": [f"q{i}" for i in range(1, 6)], "text": [f"Question {i}?" for i in range(1, 6)]}
)


def test_study_design_prefers_shared_questions_and_skips_failures() -> None:
    study = study_design(feedback_table(), PROMPTS, n_personas=2, n_questions=2, seed=0)
    # p1 and p2 have 3 usable pairs each (p3 has 1): they are the study; q1 and q2 are shared by both
    assert sorted(study["persona_id"].unique()) == ["p1", "p2"]
    assert sorted(study.loc[study["persona_id"] == "p1", "prompt_id"]) == ["q1", "q2"]
    assert sorted(study.loc[study["persona_id"] == "p2", "prompt_id"]) == ["q1", "q2"]
    assert study.loc[study["prompt_id"] == "q1", "prompt"].iloc[0] == "Question 1?"
    assert set(study.groupby("persona_id")["position"].apply(sorted).map(tuple)) == {(0, 1)}
    again = study_design(feedback_table(), PROMPTS, n_personas=2, n_questions=2, seed=0)
    pd.testing.assert_frame_equal(study, again)
    all3 = study_design(feedback_table(), PROMPTS, n_personas=5, n_questions=5, seed=0)
    assert len(all3) == 7 and "q5" not in set(all3["prompt_id"])  # the failed pair never enters the study
    with pytest.raises(PersonaLabError, match="lacks column"):
        study_design(feedback_table().drop(columns="failure"), PROMPTS, n_personas=1, n_questions=1)


def votes(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["annotator", "persona_id", "prompt_id", "choice"])


def test_majority_vote_three_of_four_reports_ties() -> None:
    r, o = "revision", "original"
    labels = votes(
        [
            *[(f"h{i}", "p1", "q1", c) for i, c in enumerate([r, r, r, o])],  # 3 : 1 -> revision
            *[(f"h{i}", "p1", "q2", c) for i, c in enumerate([r, r, o, o])],  # 2 : 2 -> tie
            *[(f"h{i}", "p1", "q3", c) for i, c in enumerate([o, o, r])],  # 2 : 1 -> no majority (needs 3)
            *[(f"h{i}", "p1", "q4", c) for i, c in enumerate([o, o])],  # 2 votes -> too few
            *[(f"h{i}", "p1", "q5", c) for i, c in enumerate([o, o, o, o])],  # 4 : 0 -> original
        ]
    )
    out = majority_vote(labels, min_votes=3, choices=CHOICES).set_index("prompt_id")
    assert out.loc["q1", "choice"] == r and out.loc["q1", "status"] == "majority"
    assert out.loc["q2", "choice"] is None and out.loc["q2", "status"] == "tie"
    assert out.loc["q3", "choice"] is None and out.loc["q3", "status"] == "no majority"
    assert out.loc["q4", "choice"] is None and out.loc["q4", "status"] == "too few votes"
    assert out.loc["q5", "choice"] == o and out.loc["q5", "votes_original"] == 4
    assert out.loc["q1", ["n_votes", "top_votes", "votes_revision", "votes_original"]].tolist() == [
        4,
        3,
        3,
        1,
    ]
    assert vote_summary(out.reset_index()) == {"majority": 2, "tie": 1, "no majority": 1, "too few votes": 1}
    # configurable: 2 of 3 makes q3 a majority; a tie stays a tie whatever the threshold
    two = majority_vote(labels, min_votes=2, choices=CHOICES).set_index("prompt_id")
    assert two.loc["q3", "choice"] == o and two.loc["q2", "status"] == "tie" and two.loc["q4", "choice"] == o
    with pytest.raises(PersonaLabError, match="voted twice"):
        majority_vote(votes([("h1", "p1", "q1", r), ("h1", "p1", "q1", o)]))


def study_two() -> pd.DataFrame:
    return study_design(feedback_table(), PROMPTS, n_personas=2, n_questions=3, seed=0)


def test_assignments_give_personas_evenly_save_atomically_and_resume(tmp_path) -> None:
    study = study_two()
    first = open_assignment(tmp_path, "alice", study, raters_per_persona=2)
    second = open_assignment(tmp_path, "bob", study, raters_per_persona=2)
    third = open_assignment(tmp_path, "carol", study, raters_per_persona=2)
    # the persona with the fewest annotators first, ties in the study's order
    personas = list(pd.unique(study["persona_id"]))
    assert [first.persona_id, second.persona_id, third.persona_id] == [personas[0], personas[1], personas[0]]
    assert first.questions == tuple(
        study[study["persona_id"] == personas[0]].sort_values("position")["prompt_id"]
    )
    assert all(set(o) == set(CHOICES) for o in first.orders)
    q0, q1 = first.questions[:2]
    save_answer(tmp_path, "alice", q0, "revision", "Short and to the point.")
    after = save_answer(tmp_path, "alice", q1, "original", "I like details")
    assert after.next_index == 2
    reopened = open_assignment(
        tmp_path, "alice", study, raters_per_persona=2
    )  # a reload: the stored assignment
    assert reopened == after and reopened.next_index == 2
    stored = json.loads((tmp_path / "annotations" / "alice.json").read_text())
    assert [a["choice"] for a in stored["answers"]] == ["revision", "original"]
    assert stored["answers"][0]["rationale"] == "Short and to the point."
    assert not list((tmp_path / "annotations").glob("*.tmp"))  # nothing half-written left behind
    with pytest.raises(PersonaLabError, match="already answered"):
        save_answer(tmp_path, "alice", q0, "original")
    with pytest.raises(PersonaLabError, match="not one of annotator"):
        save_answer(tmp_path, "alice", "q999", "original")
    with pytest.raises(PersonaLabError, match="expected one of revision, original"):
        save_answer(tmp_path, "alice", first.questions[2], "A")
    with pytest.raises(PersonaLabError, match="annotator id"):
        open_assignment(tmp_path, "../etc/passwd", study)
    table = app_judgments(tmp_path)
    assert table[["annotator", "persona_id", "prompt_id", "choice", "kind", "source"]].values.tolist() == [
        ["alice", first.persona_id, q0, "revision", "human", "app"],
        ["alice", first.persona_id, q1, "original", "human", "app"],
    ]
    assert table["order_shown"].iloc[0] == ",".join(first.orders[0])


def test_concurrent_answers_lose_nothing(tmp_path) -> None:
    study = study_two()
    names = [f"a{i}" for i in range(6)]
    assignments = {n: open_assignment(tmp_path, n, study, raters_per_persona=3) for n in names}

    def answer_all(name: str) -> None:
        for q in assignments[name].questions:
            save_answer(tmp_path, name, q, "revision", f"{name} on {q}")

    threads = [threading.Thread(target=answer_all, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(app_judgments(tmp_path)) == sum(len(s.questions) for s in assignments.values()) == 18
    assert sorted(s.persona_id for s in load_assignments(tmp_path)).count(assignments["a0"].persona_id) == 3


PROLIFIC = """PROLIFIC_PID,persona_id,prompt_id,choice,rationale,completed_at
5f1a,{p},{q0},revision,"Shorter, and it sounds like me.",2024-05-01T10:00
5f1a,{p},{q1},original,I want the detail,2024-05-01T10:01
"""


def test_csv_import_reads_a_prolific_export(tmp_path) -> None:
    study = study_two()
    p = study["persona_id"].iloc[0]
    qs = list(study.loc[study["persona_id"] == p, "prompt_id"])
    path = tmp_path / "prolific.csv"
    path.write_text(PROLIFIC.format(p=p, q0=qs[0], q1=qs[1]))
    out = read_annotations_csv(path, study)
    assert out[["annotator", "prompt_id", "choice"]].values.tolist() == [
        ["5f1a", qs[0], "revision"],
        ["5f1a", qs[1], "original"],
    ]
    assert out["rationale"].iloc[0] == "Shorter, and it sounds like me." and set(out["source"]) == {
        "csv:prolific.csv"
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("annotator,persona_id,prompt_id\nh1,{p},{q}\n", r"missing column\(s\) \['choice'\]"),
        (
            "annotator,persona_id,prompt_id,choice\nh1,{p},{q},revision\nh2,pX,{q},revision\n",
            r"row 2: persona_id 'pX' is not a persona of this study",
        ),
        (
            "annotator,persona_id,prompt_id,choice\nh1,{p},q999,revision\n",
            r"row 1: prompt_id 'q999' is not a question of persona",
        ),
        (
            "annotator,persona_id,prompt_id,choice\nh1,{p},{q},revision\nh1,{p},{q},original\n",
            r"row 2: annotator 'h1' already labelled persona .* in row 1",
        ),
        (
            "annotator,persona_id,prompt_id,choice\nh1,{p},{q},B\n",
            r"row 1: choice 'B' is not one of revision, original",
        ),
        ("annotator,persona_id,prompt_id,choice\n,{p},{q},revision\n", r"row 1: empty annotator id"),
    ],
)
def test_csv_import_errors_name_the_row(tmp_path, body: str, message: str) -> None:
    study = study_two()
    p = study["persona_id"].iloc[0]
    q = study.loc[study["persona_id"] == p, "prompt_id"].iloc[0]
    path = tmp_path / "bad.csv"
    path.write_text(body.format(p=p, q=q))
    with pytest.raises(PersonaLabError, match=message):
        read_annotations_csv(path, study)
