import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    from pathlib import Path

    import marimo as mo

    from persona_lab import census, charts, personas
    from persona_lab.paths import shared_data_dir


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 1 · Personas from the census

    PERSONA (Castricato et al., 2024) grounds its synthetic users in the **American Community Survey Public Use
    Microdata Sample** (ACS PUMS): each persona starts as a real, anonymised census record (age, sex, race,
    education, income, household, ...), then gets procedural traits (Big Five personality levels, a religion drawn
    from published US shares, seed quirks, core values and mannerisms) and finally a handful of open-ended fields
    written by an LLM. Before any LLM sees a profile, deterministic **consistency rules** throw out impossible
    draws (a married 7-year-old, a veteran under 17) and redraw them.

    Choose where the census records come from, how many personas to draw and the seed. Everything below follows.
    """)
    return


@app.cell
def _():
    _pums_dir = shared_data_dir() / "pums"
    pums_files = sorted([*_pums_dir.glob("psam_p*.csv"), *(_pums_dir / "zips").glob("csv_p*.zip")])
    source_choice = mo.ui.dropdown(
        options=["embedded census model", "PUMS files"] if pums_files else ["embedded census model"],
        value="embedded census model",
        label="census source",
    )
    n_slider = mo.ui.slider(100, 5000, step=100, value=1000, label="personas", show_value=True)
    seed_input = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    weighting = mo.ui.radio(
        options={"person weight PWGTP": "pwgtp", "unweighted rows (as PERSONA)": "none"},
        value="person weight PWGTP",
        label="PUMS sampling",
    )
    mo.hstack([source_choice, n_slider, seed_input, weighting], justify="start", gap=2)
    return n_slider, pums_files, seed_input, source_choice, weighting


@app.cell
def _(pums_files, seed_input, source_choice, weighting):
    from persona_lab.config import CensusConfig as _CensusConfig

    _chosen = pums_files if source_choice.value == "PUMS files" else []
    opened = census.open_source(
        _CensusConfig(pums=_chosen, year=2018, weighting=weighting.value), seed=int(seed_input.value)
    )
    source = opened.source
    census_frame = opened.census_table()
    census_weight = opened.weight_column
    mo.md(f"Census source: {opened.label}. {opened.description[0].upper()}{opened.description[1:]}.")
    return census_frame, census_weight, source


@app.cell
def _(n_slider, seed_input, source):
    persona_table, report = personas.generate_personas(source, n_slider.value, seed=int(seed_input.value))
    mo.md(f"""
    ## Consistency rules

    ```
    {report.summary()}
    ```

    PERSONA's LLM consistency check rejected about **8.5 %** of profiles, yet the released data still holds 31
    minors (of 185) with a positive income: a deterministic layer in front of the LLM catches those for free.
    """)
    return persona_table, report


@app.cell
def _(report):
    mo.ui.table(report.to_frame(), selection=None, label="draws rejected per rule")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Personas as PERSONA text

    PERSONA serialises a persona as one `key: value` line per attribute in a fixed order; the five optional census
    attributes (fertility, hearing, vision, cognitive difficulty, English ability) appear only when they apply.
    The open-ended fields are empty here: the LLM enrichment stage writes them.
    """)
    return


@app.cell
def _(persona_table):
    pick = mo.ui.slider(0, len(persona_table) - 1, value=0, label="persona", show_value=True)
    pick
    return (pick,)


@app.cell
def _(persona_table, pick):
    _row = persona_table.iloc[pick.value]
    mo.hstack(
        [
            mo.md(f"**{_row['persona_id']}** ({_row['split']})\n\n```text\n{_row['text']}\n```"),
            mo.ui.table(
                persona_table[["persona_id", "age", "sex", "race", "education", "income", "split"]],
                selection=None,
                page_size=12,
            ),
        ],
        widths=[1, 1.4],
    )
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Personas against the census (Fig. 2 vs Fig. 13)

    PERSONA says its persona demographics (Fig. 2) "correlate strongly" with the census (Fig. 13). Here the claim
    is a number: the total variation distance (TVD, half the summed absolute difference of shares; 0 = identical)
    per panel. Bars are the personas, black ticks the census. Sampling noise alone gives a TVD of roughly
    `0.5·sqrt(2/(πN))·Σ√p`, so expect a few hundredths at N = 1,000 and under 0.02 at N = 20,000.
    """)
    return


@app.cell
def _(census_frame, census_weight, persona_table):
    tvd = charts.panel_tvd(persona_table, census_frame, census_weight)
    mo.ui.table(tvd.round(4).rename_axis("panel").reset_index(name="TVD"), selection=None)
    return


@app.cell
def _(census_frame, census_weight, persona_table):
    charts.demographics_comparison_chart(persona_table, census_frame, census_weight)
    return


@app.cell
def _(persona_table):
    charts.persona_demographics_chart(persona_table)
    return


@app.cell
def _(census_frame, census_weight):
    charts.census_demographics_chart(census_frame, census_weight)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## LLM enrichment (PERSONA App. A, steps 3-4)

    An LLM writes the seven open-ended attributes (job description, quirks, mannerisms, personal time, lifestyle,
    ideology, political views) from the census profile, Big Five, religion and the seeds drawn above, in one
    structured call per persona; a second call judges whether the profile is self-consistent. The default `local`
    backend (SmolLM2-135M through llama.cpp) proves the plumbing, not the prose: for real personas choose e.g.
    `openai:gpt-4o` or `anthropic:claude-sonnet-4-5` (keys from the environment). Answers are cached in
    `runs/notebook/llm_cache.sqlite`, so pressing the button again costs nothing.
    """)
    return


@app.cell
def _():
    backend_input = mo.ui.text(value="local", label="backend", full_width=False)
    k_slider = mo.ui.slider(1, 8, value=2, label="personas to enrich", show_value=True)
    enrich_button = mo.ui.run_button(label="Enrich with the LLM")
    mo.hstack([backend_input, k_slider, enrich_button], justify="start", gap=2)
    return backend_input, enrich_button, k_slider


@app.cell
def _(backend_input, enrich_button, k_slider, persona_table):
    mo.stop(not enrich_button.value, mo.md("*Press the button to call the LLM.*"))
    _before = persona_table.head(k_slider.value)
    _after = personas.enrich_personas(
        _before, backend_input.value, cache=Path("runs/notebook"), progress=True
    )
    _flags = personas.check_quality(_after).summary()
    mo.vstack(
        [
            mo.ui.table(personas.enrichment_before_after(_before, _after), selection=None, page_size=14),
            mo.md(f"Quality checks on these personas: `{_flags}`"),
            mo.md(f"```text\n{_after.iloc[0]['text']}\n```"),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
