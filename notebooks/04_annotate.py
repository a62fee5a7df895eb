import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="persona_lab: annotate")

with app.setup:
    import html
    import os
    from pathlib import Path

    import marimo as mo

    from persona_lab.agreement import (
        annotator_instructions,
        load_run_study,
        open_assignment,
        save_answer,
    )
    from persona_lab.errors import PersonaLabError

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
    # Which answer would this person prefer?

    PERSONA (Castricato et al. 2024, Sec. 4) asks people to **role-play** a persona and choose, for each
    question, the answer that persona would prefer, with a short justification; models then do the same and
    the two are compared with Cohen's kappa. This page is that study for the run directory it was started
    with. Serve it to a room with `marimo run notebooks/04_annotate.py -- --run-dir runs/<name>`: each person
    enters an id (e.g. their Prolific id), gets one persona and answers its questions one at a time. Every
    answer is saved to `runs/<name>/annotations/<id>.json` as it is given.
    """)
    return


@app.cell
def _():
    try:
        run = load_run_study(RUN_DIR)
        load_error = None
    except PersonaLabError as _exc:
        run = None
        load_error = str(_exc)
    mo.stop(
        run is None,
        mo.callout(mo.md(f"This annotation page has no study to show: `{load_error}`"), kind="danger"),
    )
    mo.stop(
        run.study.empty,
        mo.callout(
            mo.md(f"`{RUN_DIR}` has no usable feedback pair yet: run the feedback stage, then reload."),
            kind="warn",
        ),
    )
    texts = run.personas.drop_duplicates("persona_id").set_index("persona_id")["text"]
    raters_per_persona = run.config.agreement.raters_per_persona
    return raters_per_persona, run, texts


@app.cell
def _():
    id_form = mo.ui.text(placeholder="e.g. your Prolific id", label="Your annotator id").form(
        submit_button_label="Start", bordered=False
    )
    id_form
    return (id_form,)


@app.cell
def _(id_form, raters_per_persona, run):
    mo.stop(
        id_form.value is None,
        mo.md("*Enter your id to begin (the same id later resumes where you stopped).*"),
    )
    try:
        assignment = open_assignment(RUN_DIR, id_form.value, run.study, raters_per_persona=raters_per_persona)
        assignment_error = None
    except PersonaLabError as _exc:
        assignment = None
        assignment_error = str(_exc)
    mo.stop(assignment is None, mo.callout(mo.md(f"`{assignment_error}`"), kind="danger"))
    annotator = assignment.annotator
    return annotator, assignment


@app.cell
def _(assignment, texts):
    _lines = [line.partition(": ") for line in str(texts[assignment.persona_id]).splitlines() if line.strip()]
    _rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, _, v in _lines
    )
    mo.vstack(
        [
            mo.md(annotator_instructions(len(assignment.questions))),
            mo.md(f"### The person you role-play\n\n<table id='persona-profile'>{_rows}</table>"),
        ]
    )
    return


@app.cell
def _():
    get_saved, set_saved = mo.state(0)
    return get_saved, set_saved


@app.cell
def _(annotator, get_saved, run, assignment):
    get_saved()  # rerun after every saved answer
    current = open_assignment(RUN_DIR, annotator, run.study)  # the stored assignment: what is on disk
    index = current.next_index
    total = len(current.questions)
    if index is None:
        question = None
        answer_form = None
        _view = mo.callout(
            mo.md(
                f"**All {total} questions answered. Thank you!** Your answers are saved; you can close this page."
            ),
            kind="success",
        )
    else:
        question = current.questions[index]
        order = current.orders[index]
        _row = run.study[
            (run.study["persona_id"] == assignment.persona_id) & (run.study["prompt_id"] == question)
        ].iloc[0]
        _answers = {"revision": str(_row["revision"]), "original": str(_row["original"])}
        answer_form = (
            mo.md("**This person would prefer** {choice}\n\n**Why?** {rationale}")
            .batch(
                choice=mo.ui.radio(options={"Answer 1": order[0], "Answer 2": order[1]}, inline=True),
                rationale=mo.ui.text_area(
                    placeholder="In this person's voice: why this answer?", full_width=True
                ),
            )
            .form(
                submit_button_label="Save and continue",
                clear_on_submit=True,
                validate=lambda v: (
                    None
                    if v and v.get("choice") and str(v.get("rationale", "")).strip()
                    else "Choose an answer and say why."
                ),
            )
        )
        _view = mo.vstack(
            [
                mo.md(f"<span id='progress'>Question {index + 1} of {total}</span>"),
                mo.Html(f"<progress value='{index}' max='{total}' style='width:100%'></progress>"),
                mo.md(f"### {html.escape(str(_row['prompt']))}"),
                mo.hstack(
                    [
                        mo.vstack([mo.md("**Answer 1**"), mo.md(html.escape(_answers[order[0]]))]),
                        mo.vstack([mo.md("**Answer 2**"), mo.md(html.escape(_answers[order[1]]))]),
                    ],
                    widths="equal",
                    gap=2,
                ),
                answer_form,
            ]
        )
    _view
    return answer_form, question


@app.cell
def _(annotator, answer_form, question, set_saved):
    mo.stop(answer_form is None or answer_form.value is None)
    save_answer(RUN_DIR, annotator, question, answer_form.value["choice"], answer_form.value["rationale"])
    set_saved(lambda n: n + 1)
    return


if __name__ == "__main__":
    app.run()
