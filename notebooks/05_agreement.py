import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    import os
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from persona_lab import agreement, charts
    from persona_lab.errors import PersonaLabError
    from persona_lab.io import read_table

    def _cli_run_dir() -> str | None:
        """``--run-dir`` after ``marimo run notebook.py --``; None outside a marimo runtime (a plain import)."""
        try:
            return mo.cli_args().get("run-dir")
        except Exception:  # marimo raises ContextNotInitializedError when no runtime is running
            return None

    RUN_DIR = Path(_cli_run_dir() or os.environ.get("PERSONA_LAB_RUN_DIR") or Path("runs") / "tiny")


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 5 · Agreement: do models choose as the people they role-play?

    PERSONA (Castricato et al. 2024, Sec. 4) asks 80 people to role-play 20 personas (4 per persona, 10
    questions each) and to pick, for each question, the answer the persona would prefer; models role-play the
    same personas. Agreement is **Cohen's kappa**, `(p_o - p_e) / (1 - p_e)`: the share of questions on which two
    raters chose alike, corrected for the agreement their own choice rates would give by chance (0 = chance,
    1 = perfect). The paper reports GPT-4's kappas with people mostly between 0.6 and 0.8.

    This notebook reads a run directory in which the agreement stage has run (`persona-lab run agreement`)
    and recomputes everything from its `judgments.parquet`: change the models, the personas or the vote
    threshold and every figure and table follows. Human labels come from the annotation app
    (`notebooks/04_annotate.py`) or from CSV imports.
    """)
    return


@app.cell
def _():
    try:
        judgments = read_table(RUN_DIR / "judgments.parquet", table="judgments")
        study = read_table(RUN_DIR / "agreement" / "study.parquet", table="agreement/study")
        personas = read_table(RUN_DIR / "personas.parquet", table="personas")
        loo_kappa = read_table(RUN_DIR / "agreement" / "loo_kappa.parquet", table="agreement/loo_kappa")
        read_error = None
    except PersonaLabError as _exc:
        read_error = str(_exc)
    mo.stop(
        read_error is not None,
        mo.callout(
            mo.md(
                f"`{RUN_DIR}` has no agreement results yet (`{read_error}`). Run `persona-lab run agreement "
                f"--run-dir {RUN_DIR}` first, or start this notebook with `-- --run-dir runs/<name>`."
            ),
            kind="warn",
        ),
    )
    models = list(pd.unique(judgments.loc[judgments["kind"] == "model", "annotator"]))
    study_personas = list(pd.unique(study["persona_id"].astype(str)))
    n_people = judgments.loc[judgments["kind"] == "human", "annotator"].nunique()
    mo.md(
        f"Run `{RUN_DIR}`: **{len(study_personas)} personas**, {len(study)} persona-question pairs, "
        f"**{len(models)} model annotators** ({', '.join(models) or 'none'}), **{n_people} people**; "
        f"{int((judgments['failure'] != '').sum())} of {len(judgments)} judgments are recorded failures."
    )
    return judgments, loo_kappa, models, personas, study, study_personas


@app.cell
def _(models, study_personas):
    pick_models = mo.ui.multiselect(options=models, value=models, label="model annotators")
    pick_personas = mo.ui.multiselect(options=study_personas, value=study_personas, label="personas")
    min_votes = mo.ui.slider(1, 5, value=3, label="votes the people's label needs", show_value=True)
    n_boot = mo.ui.slider(50, 2000, step=50, value=200, label="bootstrap replicates", show_value=True)
    mo.vstack(
        [
            mo.hstack([pick_models, pick_personas], justify="start", gap=2),
            mo.hstack([min_votes, n_boot], justify="start", gap=2),
        ]
    )
    return min_votes, n_boot, pick_models, pick_personas


@app.cell
def _(judgments, min_votes, n_boot, pick_models, pick_personas):
    chosen = judgments[
        judgments["persona_id"].astype(str).isin(pick_personas.value)
        & ((judgments["kind"] == "human") | judgments["annotator"].isin(pick_models.value))
    ]
    panels = agreement.kappa_panels(
        chosen, pick_personas.value, pick_models.value, min_votes=min_votes.value, n_boot=n_boot.value
    )
    return chosen, panels


@app.cell(hide_code=True)
def _(panels):
    mo.md(f"""
    ## People vs models (Figs. 6-7)

    One heatmap per model: cell (i, j) is the kappa between the people's label for persona i (majority vote)
    and the model role-playing persona j, pooled with the mirror pair so the matrix is symmetric; the
    **diagonal** (same persona) is what matters. The last panel is the ceiling: people against people (on the
    diagonal, the annotators of the same persona). {"" if panels.has_human else "**This run has no human labels yet, so the people panels say so.**"}
    """)
    return


@app.cell
def _(panels):
    _names = [*panels.human_vs_model(), agreement.PEOPLE + " vs " + agreement.PEOPLE]
    mo.vstack(
        [
            charts.kappa_heatmaps_figure(
                panels.table, _names, panels.personas, title="People vs model (Fig. 6)"
            ),
            charts.kappa_histograms_figure(panels.table, _names, title="Kappas of Fig. 6 (Fig. 7)"),
        ]
    )
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Model vs model (Figs. 8-9)

    The same panels between model annotators. Two temperatures or two samplings of one model measure how
    consistent the model is with itself, not agreement between different models.
    """)
    return


@app.cell
def _(panels):
    _names = panels.model_vs_model() or ["model vs model"]
    _missing = ("Pick at least two model annotators.",)
    mo.vstack(
        [
            charts.kappa_heatmaps_figure(
                panels.table, _names, panels.personas, title="Model vs model (Fig. 8)", missing=_missing
            ),
            charts.kappa_histograms_figure(
                panels.table, _names, title="Kappas of Fig. 8 (Fig. 9)", missing=_missing
            ),
        ]
    )
    return


@app.cell
def _(models):
    reference = mo.ui.dropdown(options=["human", *models], value="human", label="compare the models with")
    grouping = mo.ui.multiselect(
        options=["Age", "Sex", "Race", "Education", "Personal income", "Marital status", "Political lean"],
        value=["Age", "Sex", "Race", "Education", "Political lean"],
        label="persona groups",
    )
    mo.hstack([reference, grouping], justify="start", gap=2)
    return grouping, reference


@app.cell
def _(chosen, grouping, min_votes, n_boot, personas, pick_models, reference):
    ref = agreement.reference_labels(
        chosen, pick_models.value, reference=reference.value, min_votes=min_votes.value
    )
    groups_table = charts.persona_groups(personas)
    by_group = agreement.group_kappas(
        chosen, ref, groups_table, grouping.value, pick_models.value, n_boot=n_boot.value
    )
    regression = agreement.agreement_regression(chosen, ref, groups_table, grouping.value)
    mo.vstack(
        [
            mo.md(
                f"## Who do the models imitate well?\n\nReference: **{ref.note}**. Kappa per persona group, with "
                "95 % bootstrap intervals over questions:"
            ),
            charts.group_kappa_chart(by_group),
            mo.ui.table(by_group.round(3), selection=None, page_size=12),
        ]
    )
    return by_group, ref, regression


@app.cell
def _(regression):
    mo.vstack(
        [
            mo.md(
                "### Logistic regression of agreement on persona attributes\n\n"
                f"`{regression.formula or 'not fitted'}` over **{regression.n}** judgments (statsmodels `Logit`); "
                "odds ratios above 1 mean the model agrees with the reference more often for that group than for "
                "the reference group. Judgments of one persona are not independent: read the intervals as "
                "descriptive." + (f"\n\n**Note:** {regression.note}" if regression.note else "")
            ),
            mo.ui.table(regression.table.round(4), selection=None),
        ]
    )
    return


@app.cell
def _(chosen, ref, study):
    drill = agreement.disagreements(chosen, ref, study)
    picked = mo.ui.table(
        drill[["persona_id", "prompt_id", "annotator", "choice", "reference_choice"]],
        selection="single",
        label="Disagreements: click a row",
        page_size=8,
    )
    mo.vstack(
        [
            mo.md(
                f"## Disagreements\n\n{len(drill)} items where a model's label differs from the reference."
            ),
            picked,
        ]
    )
    return drill, picked


@app.cell
def _(drill, personas, picked):
    mo.stop(picked.value is None or len(picked.value) == 0, mo.md("*Click a disagreement to read it.*"))
    _row = drill.loc[picked.value.index[0]]
    _persona = personas.set_index("persona_id").loc[_row["persona_id"], "text"]
    mo.vstack(
        [
            mo.md(f"**Question:** {_row['prompt']}"),
            mo.hstack(
                [
                    mo.vstack([mo.md("**Revision** (for this persona)"), mo.md(str(_row["revision"]))]),
                    mo.vstack([mo.md("**Original** (no persona)"), mo.md(str(_row["original"]))]),
                ],
                widths="equal",
                gap=2,
            ),
            mo.md(
                f"**{_row['annotator']}** chose the **{_row['choice']}**: _{_row['rationale'] or '(no justification)'}_  \n"
                f"**{_row['reference']}** chose the **{_row['reference_choice']}**: "
                f"_{_row['reference_rationales'] or '(no justification)'}_"
            ),
            mo.accordion({"the persona": mo.md(f"```\n{_persona}```")}),
        ]
    )
    return


@app.cell
def _(loo_kappa):
    mo.vstack(
        [
            mo.md(
                "## Leave-one-out (Fig. 5)\n\nPersona twins with 3 and 3+1 attributes judge the same questions; "
                "a low kappa between the twins means the added attribute changed their choices."
            ),
            charts.leave_one_out_chart(loo_kappa),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
