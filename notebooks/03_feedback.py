import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    import os
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from persona_lab import charts, feedback
    from persona_lab.config import load_config
    from persona_lab.dpf import DPFItem, critique_and_revise, load_principle
    from persona_lab.errors import PersonaLabError
    from persona_lab.io import read_table
    from persona_lab.llm import Message

    DEFAULT_RUN = os.environ.get("PERSONA_LAB_RUN_DIR", "runs/tiny")
    CACHE_DIR = Path(os.environ.get("PERSONA_LAB_RUNS", "runs")) / "notebook_feedback"


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 3 · Feedback pairs: Direct Principle Feedback, one persona at a time

    A reward model for pluralistic alignment needs **preference pairs that differ by persona**: for the
    same question, the answer a retired farmer in Iowa prefers is not the one a student in Boston prefers.
    PERSONA (Castricato et al., 2024) makes such pairs with **Direct Principle Feedback** (DPF, from the
    same authors' *Suppressing Pink Elephants*), with the persona playing the role of the principle:

    1. **original**: the model answers the prompt *without* the persona. It depends only on the prompt, so
       it is written once per prompt and shared by every persona that gets the prompt;
    2. **critique**: the model reads the persona and the original and says, from the persona's point of
       view, where the answer resonates and where it does not (quoting both), then suggests changes:
       `EVALUATION: ... SUGGESTIONS: ...`; the persona is told to prefer short answers;
    3. **revision**: the model rewrites the original following the critique, *subtly* (never naming the
       persona's attributes) and shorter: `REVISED ANSWER: ...`;
    4. the **pair**: chosen = revision, rejected = original. No ranking step and no reward model are
       needed to make it, which is what separates DPF from RLAIF.

    Each persona gets **200 pairs**: 100 train pairs and 50 test pairs on train prompts ("seen"), and 50 test
    pairs on held-out prompts ("unseen"): 1,586 personas give **317,200 pairs**. A model role-playing the
    persona then chooses between the original and the revision, shown in random order; the paper reports
    that it chose the revision **96 %** of the time. Because revisions are shorter by construction, that
    number must be read beside the **length bias** below.

    Pick a run directory (default from `PERSONA_LAB_RUN_DIR`, else `runs/tiny`); everything below follows.
    """)
    return


@app.cell
def _():
    run_dir_input = mo.ui.text(value=DEFAULT_RUN, label="run directory", full_width=True)
    backend_input = mo.ui.dropdown(
        options=["local", "openai:gpt-4o-mini", "openai:gpt-4o", "anthropic:claude-haiku-4-5"],
        value="local",
        label="backend for new pairs",
    )
    tokens_input = mo.ui.slider(16, 512, step=16, value=96, label="max tokens per call", show_value=True)
    mo.vstack([run_dir_input, mo.hstack([backend_input, tokens_input], justify="start", gap=2)])
    return backend_input, run_dir_input, tokens_input


@app.cell
def _(run_dir_input):
    run_dir = Path(run_dir_input.value.strip() or DEFAULT_RUN)

    def _read(name: str) -> pd.DataFrame | None:
        try:
            return read_table(run_dir / f"{name}.parquet", table=name)
        except PersonaLabError:
            return None

    personas = _read("personas")
    prompts_table = _read("prompts")
    pairs_table = _read("feedback")
    run_config = (
        load_config(path=run_dir / "config.toml")
        if (run_dir / "config.toml").exists()
        else load_config("tiny")
    )
    _missing = [
        n
        for n, t in (("personas", personas), ("prompts", prompts_table), ("feedback", pairs_table))
        if t is None
    ]
    (
        mo.callout(
            mo.md(
                f"No {', '.join(_missing)} table in `{run_dir}`. Run `persona-lab reproduce --preset tiny` (or "
                f"`persona-lab run feedback --run-dir {run_dir}`) and reload; the paper's plan below needs no run."
            ),
            kind="warn",
        )
        if _missing
        else mo.md(
            f"Run `{run_dir}`: **{len(personas):,}** personas, **{len(pairs_table):,}** planned pairs."
        )
    )
    return pairs_table, personas, prompts_table, run_config, run_dir


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## The plan: who gets which prompt

    Personas and prompts are paired independently at random, with a generator seeded by the run's seed and
    the persona id, so a persona gets the same prompts however many other personas there are. No
    (persona, prompt) pair occurs twice. When a run has fewer prompts than the paper, the three sizes shrink
    by one factor so that the 2:1:1 proportions hold. Calls per pair: one original per prompt plus a
    critique and a revision per pair, **2 + prompts / pairs** (the paper's method makes 3).
    """)
    return


@app.cell
def _(personas, prompts_table, run_config):
    _paper = feedback.sampling_plan(
        [f"p{i:05d}" for i in range(1586)], [f"t{i}" for i in range(3000)], [f"h{i}" for i in range(868)]
    )
    _rows = [
        {
            "plan": "PERSONA (1,586 x 3,000 + 868 prompts)",
            **flat_counts(feedback.describe_plan(_paper, load_config("paper"))),
        }
    ]
    if personas is not None and prompts_table is not None:
        _train, _heldout = feedback.prompt_pools(prompts_table)
        _ours = feedback.sampling_plan(
            feedback.select_personas(personas, run_config.feedback.n_personas),
            _train,
            _heldout,
            seed=run_config.seed,
            sizes=feedback.pair_sizes(run_config),
        )
        _rows.append({"plan": "this run", **flat_counts(feedback.describe_plan(_ours, run_config))})
    plan_counts = pd.DataFrame(_rows)
    mo.ui.table(plan_counts, selection=None)
    return (plan_counts,)


@app.function
def flat_counts(counts: dict) -> dict:
    return {
        "pairs": counts["pairs"],
        "train": counts["by_split"]["train"],
        "test_seen": counts["by_split"]["test_seen"],
        "test_unseen": counts["by_split"]["test_unseen"],
        "per persona": counts["pairs_per_persona"],
        "prompts (originals)": counts["prompts"],
        "calls per pair": round(counts["calls_per_pair"], 3),
    }


@app.cell
def _(pairs_table):
    mo.stop(
        pairs_table is None, mo.md("*No feedback table yet: the pickers need a run with the feedback stage.*")
    )
    _ids = sorted(pairs_table["persona_id"].astype(str).unique())
    persona_pick = mo.ui.dropdown(options=_ids, value=_ids[0], label="persona")
    only_pairs = mo.ui.checkbox(value=False, label="only rows that became pairs")
    mo.hstack([persona_pick, only_pairs], justify="start", gap=2)
    return only_pairs, persona_pick


@app.cell
def _(only_pairs, pairs_table, persona_pick):
    _rows = pairs_table[pairs_table["persona_id"] == persona_pick.value]
    if only_pairs.value:
        _rows = _rows[_rows["failure"] == ""]
    mo.stop(_rows.empty, mo.md("*This persona has no such row.*"))
    _options = {f"{r.prompt_id} ({r.split}): {str(r.prompt)[:70]}": r.prompt_id for r in _rows.itertuples()}
    prompt_pick = mo.ui.dropdown(
        options=_options, value=next(iter(_options)), label="prompt", full_width=True
    )
    prompt_pick
    return (prompt_pick,)


@app.cell
def _(pairs_table, persona_pick, personas, prompt_pick):
    row = pairs_table[
        (pairs_table["persona_id"] == persona_pick.value) & (pairs_table["prompt_id"] == prompt_pick.value)
    ].iloc[0]
    persona_text = (
        str(personas.set_index("persona_id").loc[row["persona_id"], "text"]) if personas is not None else ""
    )

    def _box(title: str, text: object) -> object:
        body = "*(none)*" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
        return mo.vstack([mo.md(f"**{title}**"), mo.plain_text(body)])

    _verdict = (
        f"The role-playing persona saw **{row['order_shown'].replace(',', '** then **')}** and chose answer "
        f"**{row['verification_choice']}**: the **{row['verification']}**."
        if isinstance(row["verification"], str)
        else "Not verified" + (f": {row['verification_failure']}" if row["verification_failure"] else ".")
    )
    _status = (
        mo.callout(mo.md(f"No pair: `{row['failure']}` (raw texts are kept below)."), kind="warn")
        if row["failure"]
        else mo.callout(mo.md(_verdict), kind="success")
    )
    mo.vstack(
        [
            mo.md(f"**Prompt** ({row['split']}): {row['prompt']}"),
            _status,
            mo.hstack(
                [
                    _box("persona", persona_text),
                    _box("original (rejected)", row["original"]),
                    _box("critique", row["critique"] if row["critique"] else row["critique_raw"]),
                    _box("revision (chosen)", row["revision"] if row["revision"] else row["revision_raw"]),
                ],
                widths="equal",
                align="start",
            ),
        ]
    )
    return persona_text, row


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Verification and length bias

    The verifier is shown the two answers as A and B in a seeded random order, recorded per pair, and must
    answer with one letter (a closed choice, so even the small local model answers under a grammar). The
    **position bias** is how often the first-shown answer wins: 50 % for an unbiased judge. The figure splits
    the pairs by how much shorter the revision is: if the persona "chooses the revision" mostly when it is
    much shorter, a reward model trained on these pairs will learn length, not the persona.
    """)
    return


@app.cell
def _(pairs_table, run_config):
    mo.stop(pairs_table is None, mo.md("*No feedback table: no figure.*"))
    _rate = feedback.verification_rate(
        pairs_table, n_boot=run_config.feedback.bootstrap, seed=run_config.seed
    )
    _first = feedback.position_bias(pairs_table, n_boot=run_config.feedback.bootstrap, seed=run_config.seed)
    _failures = feedback.failure_counts(pairs_table)
    _pairs = len(feedback.pairs_only(pairs_table))
    _rate_text = (
        f"revision chosen **{_rate.share:.0%}** (95 % CI {_rate.low:.0%}-{_rate.high:.0%}, n = {_rate.n}; "
        f"PERSONA: 96 %); first-shown answer wins **{_first.share:.0%}**"
        if _rate.n
        else "no pair was verified"
    )
    mo.vstack(
        [
            mo.md(
                f"**{_pairs}** pairs of {len(pairs_table)} planned; failures by kind: {_failures or 'none'}; {_rate_text}."
            ),
            charts.feedback_length_bias_chart(
                pairs_table,
                backend=run_config.llm.backend,
                n_boot=run_config.feedback.bootstrap,
                seed=run_config.seed,
            ),
        ]
    )
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Make a pair yourself

    The button sends the selected persona's original to the backend above for a critique and a revision,
    through the same engine as the pipeline (`persona_lab.dpf.critique_and_revise`). Answers are cached in
    `runs/notebook_feedback/`, so pressing it twice costs nothing. The local SmolLM2-135M often echoes the
    instructions or skips the labels: those answers are recorded as failures with their raw text, never as
    pairs. It proves the pipeline, not the science.
    """)
    return


@app.cell
def _():
    make_button = mo.ui.run_button(label="Critique and revise")
    make_button
    return (make_button,)


@app.cell
def _(backend_input, make_button, persona_text, row, tokens_input):
    mo.stop(not make_button.value, mo.md("*Press **Critique and revise** to call the LLM.*"))
    from functools import partial

    from persona_lab.llm import ResponseCache, get_backend, run_requests

    _original = row["original"] if isinstance(row["original"], str) else ""
    mo.stop(not _original, mo.md("*This prompt has no usable original answer to revise.*"))
    _item = DPFItem(
        id=f"{row['persona_id']}/{row['prompt_id']}",
        context=(Message(role="user", content=str(row["prompt"])),),
        original=_original,
        variables={"persona": persona_text},
    )
    with ResponseCache(CACHE_DIR) as _cache:
        _run = partial(run_requests, backend=get_backend(backend_input.value), cache=_cache, progress=True)
        (made,) = critique_and_revise([_item], load_principle("persona"), _run, max_tokens=tokens_input.value)
    mo.vstack(
        [
            mo.md(f"Failure: `{made.failure}`" if made.failure else "**A pair.**"),
            mo.hstack(
                [
                    mo.vstack([mo.md("**critique**"), mo.plain_text(made.critique or made.critique_raw)]),
                    mo.vstack([mo.md("**revision**"), mo.plain_text(made.revision or made.revision_raw)]),
                ],
                widths="equal",
                align="start",
            ),
        ]
    )
    return (made,)


if __name__ == "__main__":
    app.run()
