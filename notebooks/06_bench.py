import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    import os
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from persona_lab import bench, charts, prompts
    from persona_lab.config import BenchConfig, load_config
    from persona_lab.errors import PersonaLabError
    from persona_lab.io import read_table
    from persona_lab.llm import run_requests

    RUN_DIR = Path(os.environ.get("PERSONA_LAB_RUN", "runs/tiny"))
    CACHE_DIR = Path(os.environ.get("PERSONA_LAB_RUNS", "runs")) / "notebook_bench"
    INTERSECTIONS = {
        "women": {"sex": ["Female"]},
        "men": {"sex": ["Male"]},
        "women aged 18-34": {"sex": ["Female"], "age": ["18-34"]},
        "men aged 18-34": {"sex": ["Male"], "age": ["18-34"]},
        "aged 65+": {"age": ["65+"]},
    }
    LOO_CHOICES = ["age", "sex", "race", "income", "education", "religion", "political views", "lifestyle"]


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 6 · PERSONA Bench: can a model personalize subtly?

    The benchmark half of PERSONA (Castricato et al., 2024, Sec. 5). A **model under test** answers a
    question for a persona; a **critic** model then decides whether the answer *still needs revision* to be
    correctly and subtly personalized for that persona. Accuracy is the share of answers that need no revision.
    The model answers in four **modes**:

    | mode | what the model sees and writes | paper |
    |---|---|---|
    | baseline | the question only, no persona | about 5 % for every model |
    | output only | persona + question; the answer only | |
    | chain of thought | persona + question; step-by-step reasoning, then the answer | |
    | persona summary | persona + question; a summary of the relevant parts of the persona, then the answer | best for every model |

    Each answer is a JSON object, so the answer stays apart from the reasoning or summary: **the critic reads the
    answer only.** Answers that say nothing (empty, an echo of the instructions, the question repeated) are
    recorded failures and score 0; a critic that gives no usable verdict leaves the item unscored. Both the model
    under test and the critic are any backend (`local`, `openai:gpt-4o`, `anthropic:claude-sonnet-4-5`, a vLLM
    server), configured apart.

    The figures below come from the run directory's `bench.parquet` when it has one; choose models, modes, k and
    intersections and press **Run the bench** to make a fresh one (every call goes through a response cache).
    """)
    return


@app.cell
def _():
    run_dir_input = mo.ui.text(value=str(RUN_DIR), label="run directory", full_width=True)
    run_dir_input
    return (run_dir_input,)


@app.cell
def _(run_dir_input):
    run_dir = Path(run_dir_input.value.strip() or str(RUN_DIR))
    try:
        personas_table = read_table(run_dir / "personas.parquet", table="personas")
        prompts_table = read_table(run_dir / "prompts.parquet", table="prompts")
        source_note = f"personas and prompts of `{run_dir}`"
    except PersonaLabError:
        personas_table = None
        prompts_table = prompts.load_prompts(None).assign(kept=True, split="heldout")
        source_note = (
            f"`{run_dir}` has no personas yet: run `persona-lab reproduce --preset tiny --run-dir {run_dir}` "
            "(the bench needs the personas stage's table)"
        )
    existing = None
    if (run_dir / "bench.parquet").exists():
        existing = read_table(run_dir / "bench.parquet", table="bench")
    mo.md(
        f"Source: {source_note}. "
        + (
            f"Existing bench: **{len(existing):,}** answers."
            if existing is not None
            else "No bench.parquet yet."
        )
    )
    return existing, personas_table, prompts_table, run_dir


@app.cell
def _():
    models_input = mo.ui.text(
        value="local", label="models under test (comma-separated specs)", full_width=True
    )
    critic_input = mo.ui.text(value="local", label="critic", full_width=True)
    modes_pick = mo.ui.multiselect(
        options=list(bench.MODE_NAMES), value=list(bench.MODE_NAMES), label="modes"
    )
    n_items = mo.ui.slider(1, 50, value=3, label="items (persona, prompt)", show_value=True)
    k_slider = mo.ui.slider(1, 16, value=4, label="pass@k: samples per item (k = 1..n)", show_value=True)
    passk_items = mo.ui.slider(0, 20, value=2, label="pass@k items", show_value=True)
    inter_pick = mo.ui.multiselect(options=list(INTERSECTIONS), value=["women", "men"], label="intersections")
    loo_pick = mo.ui.multiselect(options=LOO_CHOICES, value=["age", "sex"], label="leave-one-out attributes")
    words = mo.ui.slider(10, 200, step=10, value=30, label="answer words", show_value=True)
    run_button = mo.ui.run_button(label="Run the bench")
    mo.vstack(
        [
            mo.hstack([models_input, critic_input], widths=[2, 1]),
            mo.hstack([modes_pick, n_items, words], justify="start", gap=2),
            mo.hstack([k_slider, passk_items], justify="start", gap=2),
            mo.hstack([inter_pick, loo_pick], justify="start", gap=2),
            run_button,
        ]
    )
    return (
        critic_input,
        inter_pick,
        k_slider,
        loo_pick,
        models_input,
        modes_pick,
        n_items,
        passk_items,
        run_button,
        words,
    )


@app.cell
def _(
    critic_input,
    inter_pick,
    k_slider,
    loo_pick,
    models_input,
    modes_pick,
    n_items,
    passk_items,
    personas_table,
    prompts_table,
    words,
):
    _models = [m.strip() for m in models_input.value.split(",") if m.strip()]
    _section = BenchConfig.model_validate(
        load_config("tiny").bench.model_dump()
        | {
            "models": _models,
            "critic": critic_input.value.strip() or None,
            "modes": list(modes_pick.value),
            "n_samples": n_items.value,
            "pass_at_k_items": passk_items.value,
            "pass_at_k_samples": k_slider.value,
            "max_k": k_slider.value,
            "intersections": {name: INTERSECTIONS[name] for name in inter_pick.value},
            "loo_attributes": list(loo_pick.value),
            "answer_words": words.value,
        }
    )
    bench_config = load_config("tiny").model_copy(update={"bench": _section})
    config_error = None
    plan = None
    try:
        bench.check_config(bench_config)
        if personas_table is not None:
            bench.check_personas(bench_config, bench.bench_personas(personas_table, _section, limit=False))
            _items = bench.select_items(
                bench.bench_personas(personas_table, _section),
                bench.bench_prompts(prompts_table, _section),
                _section.n_samples,
                bench_config.seed,
            )
            plan = bench.plan_table(bench.bench_tasks(_items, bench_config), bench_config)
    except PersonaLabError as _exc:
        config_error = str(_exc)
    if config_error:
        _view = mo.callout(mo.md(f"**This configuration is refused:** `{config_error}`"), kind="danger")
    elif plan is None:
        _view = mo.md("No personas: nothing to plan.")
    else:
        _view = mo.vstack(
            [
                mo.md(
                    f"**Plan:** {int(plan['calls'].sum()):,} calls, at most "
                    f"{int(plan['max_output_tokens'].sum()):,} output tokens; the critic reads a placeholder answer "
                    "here, its real input is known after the answers."
                ),
                mo.ui.table(plan, selection=None),
            ]
        )
    _view
    return bench_config, config_error


@app.cell
def _(bench_config, config_error, personas_table, prompts_table, run_button):
    fresh = None
    if run_button.value and config_error is None and personas_table is not None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)

        def _send(requests, spec, desc):
            return run_requests(
                requests, spec, cache=CACHE_DIR / "llm_cache.sqlite", config=bench_config.llm, desc=desc
            )

        fresh = bench.run_bench(personas_table, prompts_table, bench_config, _send)
    mo.md(
        f"Fresh run: **{len(fresh.table):,}** answers, {int(fresh.table['score'].notna().sum()):,} scored."
        if fresh is not None
        else "*Press **Run the bench** to call the models (the figures show the run directory's bench).*"
    )
    return (fresh,)


@app.cell
def _(bench_config, existing, fresh, run_dir):
    if fresh is not None:
        shown = fresh.table
        shown_config = bench_config.bench
        summaries = fresh.summaries
    else:
        shown = existing
        _run_cfg = run_dir / "config.toml"
        shown_config = load_config(None, _run_cfg).bench if _run_cfg.exists() else bench_config.bench
        summaries = None
        if shown is not None and (run_dir / "bench_summaries.parquet").exists():
            summaries = read_table(run_dir / "bench_summaries.parquet", table="bench_summaries")
    _local = shown is not None and shown["model"].astype(str).str.startswith("local").any()
    subtitle = "local SmolLM2-135M: proves the pipeline, not the science" if _local else ""
    mo.stop(shown is None, mo.md("*No bench answers to show yet.*"))
    accuracy = bench.mode_accuracy(shown, shown_config)
    passk = bench.pass_at_k_table(shown, shown_config)
    mo.vstack(
        [
            mo.md("## Fig. 10 · accuracy per model and mode (error bars: ±1 bootstrap SE)"),
            charts.bench_modes_chart(accuracy, subtitle=subtitle),
            mo.ui.table(accuracy, selection=None),
            mo.md(
                "## Fig. 12 · pass@k\n\nAn item passes at k when one of k answers needs no revision. Solid: the "
                "unbiased estimator 1 − C(n−c, k)/C(n, k) from all n answers of an item; dashed: the "
                "paper's any-of-the-first-k rate."
            ),
            charts.pass_at_k_chart(passk, subtitle=subtitle),
        ]
    )
    return accuracy, passk, shown, shown_config, subtitle, summaries


@app.cell
def _(personas_table, shown, shown_config, subtitle, summaries):
    _parts = []
    if summaries is not None and len(summaries):
        _dropped = bench.dropped_attribute_counts(summaries)
        _parts += [
            mo.md("## Fig. 11 · attributes the persona summaries drop"),
            charts.summary_dropped_chart(_dropped, subtitle=subtitle),
        ]
    if (shown["experiment"] == "leave_one_out").any():
        _parts += [
            mo.md("## Leave-one-out: the baseline drops every listed attribute"),
            charts.bench_leave_one_out_chart(
                bench.leave_one_out_table(shown, shown_config), subtitle=subtitle
            ),
        ]
    if personas_table is not None and shown_config.intersections:
        _inter = bench.intersection_table(shown, personas_table, shown_config)
        _parts += [
            mo.md("## Accuracy per demographic intersection"),
            charts.bench_intersections_chart(_inter, subtitle=subtitle),
        ]
    subtlety = bench.cot_subtlety(shown, shown_config)
    _parts += [
        mo.md("## Too on-the-nose? Chain of thought vs direct answers"),
        charts.cot_subtlety_chart(subtlety, subtitle=subtitle),
    ]
    mo.vstack(_parts)
    return (subtlety,)


@app.cell
def _(shown):
    answer_pick = mo.ui.dropdown(
        options={
            f"{i}: {r.model} · {r.mode} · {r.persona_id} · {r.prompt_id} · sample {r.sample}": i
            for i, r in enumerate(shown.itertuples())
        },
        value=None,
        label="an answer",
        full_width=True,
    )
    mo.vstack(
        [
            mo.md("## Individual answers and the critic's verdicts"),
            mo.ui.table(
                shown[
                    [
                        "experiment",
                        "model",
                        "mode",
                        "variant",
                        "persona_id",
                        "question",
                        "answer",
                        "needs_revision",
                        "critic_rationale",
                        "failure",
                    ]
                ],
                selection=None,
                page_size=8,
            ),
            answer_pick,
        ]
    )
    return (answer_pick,)


@app.cell
def _(answer_pick, shown):
    mo.stop(answer_pick.value is None, mo.md("*Pick an answer to read it whole.*"))
    _row = shown.iloc[int(answer_pick.value)]
    _verdict = (
        "no verdict"
        if pd.isna(_row["needs_revision"])
        else ("needs revision" if bool(_row["needs_revision"]) else "no revision needed (score 1)")
    )
    mo.md(
        f"""
    **Question:** {_row["question"]}

    **Persona shown to the model** ({_row["variant"]}):

    ```
    {_row["persona"] or "(none: baseline mode)"}
    ```

    **Reasoning or summary** (the critic never sees it): {_row["reasoning"] or "—"}

    **Answer:** {"—" if pd.isna(_row["answer"]) else _row["answer"]}

    **Critic:** {_verdict}. {_row["critic_rationale"]}

    **Failure:** {_row["failure"] or "none"}
    """
    )
    return


if __name__ == "__main__":
    app.run()
