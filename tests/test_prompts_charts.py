"""Fig. 3 charts: funnel and topic bars built from small hand-made tables, and a rendered PNG."""

from __future__ import annotations

import pandas as pd

from persona_lab.charts import funnel_chart, prompt_topics_chart, prompt_topics_figure, save_figure
from persona_lab.charts._prompts import PAPER_COUNTS, _topic_counts
from persona_lab.prompts import funnel_counts


def _prompts() -> pd.DataFrame:
    # 6 prompts: 4 kept in two topics (3 "Faith" - 2 train, 1 heldout; 1 "Work" train), 2 dropped.
    return pd.DataFrame(
        {
            "prompt_id": list("abcdef"),
            "kept": [True, True, True, True, False, False],
            "dropped_at": [None, None, None, None, "question_mark", "min_words"],
            "topic_name": ["Faith", "Faith", "Work", "Faith", None, None],
            "split": ["train", "heldout", "train", "train", None, None],
        }
    )


def test_topic_counts_and_shares():
    topics = pd.DataFrame({"topic_name": ["Faith", "Work"], "name_source": ["llm", "tfidf"]})
    counts = _topic_counts(_prompts(), topics).set_index(["topic_name", "split"])
    assert counts.loc[("Faith", "train"), "n"] == 2 and counts.loc[("Faith", "heldout"), "n"] == 1
    assert counts.loc[("Faith", "train"), "share"] == 0.75  # 3 of 4 kept prompts
    assert counts.loc[("Work", "train"), "label"] == "Work *"  # a TF-IDF name is marked


def test_funnel_chart_orders_stages_and_marks_reference():
    funnel = funnel_counts(_prompts())
    assert funnel["count"].tolist() == [6, 5, 4, 4]
    spec = funnel_chart(funnel, reference={"loaded": 6}).to_dict()
    bars, text, ticks = spec["layer"]
    assert bars["encoding"]["y"]["sort"] == ["loaded", "contains '?'", "enough words", "unique"]
    values = spec["datasets"][text["data"]["name"]]
    assert [v["text"] for v in values] == ["6 (100%)", "5 (83%)", "4 (67%)", "4 (67%)"]
    assert ticks["mark"]["type"] == "tick"


def test_topics_chart_sorted_by_size_and_figure_caption():
    spec = prompt_topics_chart(_prompts()).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["Faith", "Work"]
    fig = prompt_topics_figure(_prompts()).to_dict()
    assert fig["title"]["text"].startswith("Fig. 3")
    assert fig["title"]["subtitle"] == "4 kept prompts; split 3 train / 1 held-out."
    assert PAPER_COUNTS == {"loaded": 8011, "controversial": 3868}


def test_figure_renders_to_png_and_svg(tmp_path):
    paths = save_figure(prompt_topics_figure(_prompts()), "fig03_prompt_topics", tmp_path, scale=1.0)
    assert {p.name for p in paths} == {"fig03_prompt_topics.svg", "fig03_prompt_topics.png"}
    assert (tmp_path / "fig03_prompt_topics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Fig. 3" in (tmp_path / "fig03_prompt_topics.svg").read_text(encoding="utf-8")
