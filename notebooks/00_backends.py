import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")

with app.setup:
    import os
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from persona_lab.errors import PersonaLabError
    from persona_lab.llm import (
        DEFAULT_PRICES,
        LLMFailure,
        LLMRequest,
        ResponseCache,
        estimate_cost,
        get_backend,
        run_requests,
    )

    CACHE_DIR = Path(os.environ.get("PERSONA_LAB_RUNS", "runs")) / "notebook_backends"


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 0 · LLM backends

    Every stage of the pipeline (persona enrichment, prompt filtering, critiques and revisions, role-play
    judgments, PERSONA Bench) talks to a language model through **one interface**: a chat request in, a
    response or a recorded failure out. The backend is named by a single string:

    | spec | what it is |
    |---|---|
    | `local` | llama.cpp running SmolLM2-135M-Instruct on the CPU (the embedded default; weak, free, offline) |
    | `openai:gpt-4o-mini` | the OpenAI API (key from `OPENAI_API_KEY`) |
    | `anthropic:claude-haiku-4-5` | the Anthropic API (key from `ANTHROPIC_API_KEY`) |
    | `openai:MODEL@http://127.0.0.1:8000/v1` | any OpenAI-compatible server: vLLM, Ollama, llama.cpp server |

    Every answer goes into the run's response cache (`llm_cache.sqlite`): asking the same thing again costs
    nothing and returns the same answer, and a crashed run resumes where it stopped.
    """)
    return


@app.cell
def _():
    backend_choice = mo.ui.dropdown(
        options=[
            "local",
            "openai:gpt-4o-mini",
            "openai:gpt-4o",
            "anthropic:claude-haiku-4-5",
            "anthropic:claude-sonnet-4-5",
        ],
        value="local",
        label="backend",
    )
    custom_spec = mo.ui.text(
        placeholder="openai:MODEL@http://127.0.0.1:8000/v1", label="or a spec", full_width=True
    )
    system_text = mo.ui.text_area(
        value="You are a 47-year-old teacher from Ohio who values fairness. Answer in one sentence.",
        label="system prompt",
        full_width=True,
    )
    prompt_text = mo.ui.text_area(
        value="Should schools teach personal finance?", label="prompt", full_width=True
    )
    max_tokens = mo.ui.slider(8, 256, step=8, value=48, label="max tokens", show_value=True)
    send = mo.ui.run_button(label="Send")
    mo.vstack(
        [
            mo.hstack([backend_choice, custom_spec], widths=[1, 2]),
            system_text,
            prompt_text,
            mo.hstack([max_tokens, send]),
        ]
    )
    return backend_choice, custom_spec, max_tokens, prompt_text, send, system_text


@app.cell
def _(backend_choice, custom_spec, max_tokens, prompt_text, system_text):
    spec = custom_spec.value.strip() or backend_choice.value
    request = LLMRequest.chat(
        prompt_text.value, system=system_text.value or None, max_tokens=max_tokens.value
    )
    return request, spec


@app.cell
def _(request, send, spec):
    # In the editor nothing is sent until the button is pressed; run as a script, it sends right away.
    mo.stop(mo.running_in_notebook() and not send.value, mo.md("Press **Send** to ask the backend."))
    try:
        backend = get_backend(spec)
    except PersonaLabError as exc:
        backend = None
        backend_problem = str(exc)
    else:
        backend_problem = ""
    if backend is None:
        first = again = None
    else:
        with ResponseCache(CACHE_DIR) as cache:
            (first,) = run_requests([request], backend, cache=cache, desc="ask")
            (again,) = run_requests([request], backend, cache=cache, progress=False)
    return again, backend_problem, first


@app.cell
def _(again, backend_problem, first, spec):
    def _row(label, r):
        if isinstance(r, LLMFailure):
            return {"call": label, "answer": f"failed ({r.kind}): {r.reason}"}
        return {
            "call": label,
            "answer": r.text.strip(),
            "from cache": r.cached,
            "latency s": round(r.latency_s, 3),
            "input tokens": r.usage.input_tokens,
            "output tokens": r.usage.output_tokens,
            "cost USD": r.cost_usd,
        }

    if backend_problem:
        answer_view = mo.callout(
            mo.md(f"**The backend `{spec}` is not available here.** {backend_problem}"), kind="warn"
        )
    else:
        answer_view = mo.vstack(
            [
                mo.md(f"**{first.model if not isinstance(first, LLMFailure) else spec}** answered:"),
                mo.ui.table(pd.DataFrame([_row("ask", first), _row("ask again", again)]), selection=None),
                mo.md(
                    "The second row is the same request asked again: it is replayed from the response cache "
                    f"in `{CACHE_DIR}` (no call, no cost). The first row is also a replay if you asked before."
                ),
            ]
        )
    answer_view
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## What would a stage cost?

    PERSONA's feedback stage asks one critique, one revision and one judgment per (persona, prompt) pair.
    The estimate below prices a hypothetical stage with the request above as its template: input tokens from
    the text (characters / 4, or tiktoken when installed), output at most `max tokens` per call, at the
    list prices in `persona_lab/llm/_cost.py` (local and self-hosted models cost 0).
    """)
    return


@app.cell
def _():
    n_personas = mo.ui.slider(10, 1586, step=1, value=100, label="personas", show_value=True)
    n_prompts = mo.ui.slider(1, 3868, step=1, value=50, label="prompts per persona", show_value=True)
    batch = mo.ui.checkbox(label="batch API (50 %)")
    mo.hstack([n_personas, n_prompts, batch], justify="start", gap=2)
    return batch, n_personas, n_prompts


@app.cell
def _(batch, n_personas, n_prompts, request, spec):
    _calls = n_personas.value * n_prompts.value
    _models = list(
        dict.fromkeys(
            [
                spec,
                "openai:gpt-4o-mini",
                "openai:gpt-4o",
                "anthropic:claude-haiku-4-5",
                "anthropic:claude-sonnet-4-5",
            ]
        )
    )
    _rows = []
    for _m in _models:
        try:
            _est = estimate_cost([request] * _calls, _m, batch=batch.value)
        except PersonaLabError as _exc:
            _rows.append({"backend": _m, "calls": _calls, "note": str(_exc)})
            continue
        _rows.append(
            {
                "backend": _m,
                "calls": _est.calls,
                "input tokens": _est.input_tokens,
                "output tokens (max)": _est.output_tokens,
                "USD (max)": round(_est.usd, 4) if _est.priced else None,
            }
        )
    cost_table = pd.DataFrame(_rows)
    mo.vstack(
        [
            mo.ui.table(cost_table, selection=None),
            mo.md(f"Priced models: {', '.join(sorted(DEFAULT_PRICES))}."),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
