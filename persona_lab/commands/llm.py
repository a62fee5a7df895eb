"""Check a backend, estimate a stage's cost, summarize a run's response cache (``persona-lab llm``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from persona_lab.errors import PersonaLabError, user_errors

if TYPE_CHECKING:
    from persona_lab.llm import LLMRequest

llm_app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def ping_request() -> LLMRequest:
    """The tiny request ``persona-lab llm ping`` sends (prompt ``prompts/ping.txt``, at most 8 tokens)."""
    from persona_lab.llm import LLMRequest
    from persona_lab.templates import load_template

    text = load_template("persona_lab.llm", "prompts/ping.txt")
    return LLMRequest.chat(text.strip(), max_tokens=8, temperature=0.0)


@llm_app.command()
@user_errors
def ping(
    backend: str = typer.Option(
        "local", "--backend", "-b", help="Backend spec, e.g. local, openai:gpt-4o-mini."
    ),
    run_dir: Path | None = typer.Option(
        None, help="Run directory whose response cache to use (none: no cache)."
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.001, help="Seconds to wait for the answer (one attempt, no retries)."
    ),
) -> None:
    """Send one tiny request; print backend, model, latency, tokens, cost and whether it came from the cache."""
    from persona_lab.config import LLMConfig
    from persona_lab.llm import LLMFailure, ResponseCache, get_backend, run_requests

    # a diagnostic: one attempt within the timeout, and a failure reported as it is (never replayed)
    cfg = LLMConfig(timeout_s=timeout, max_retries=0, retry_failures=True)
    be = get_backend(backend, config=cfg)
    cache = ResponseCache(run_dir) if run_dir is not None else None
    try:
        (result,) = run_requests([ping_request()], be, cache=cache, config=cfg, progress=False)
    finally:
        if cache is not None:
            cache.close()
    if isinstance(result, LLMFailure):
        hint = f"; raise --timeout (now {timeout:g} s)" if result.kind == "timeout" else ""
        raise PersonaLabError(f"backend {backend!r}: the ping failed ({result.kind}: {result.reason}){hint}")
    u = result.usage
    typer.echo(f"backend  {result.backend}")
    typer.echo(f"model    {result.model}")
    typer.echo(f"answer   {result.text.strip()!r}")
    typer.echo(f"latency  {result.latency_s:.3f} s")
    typer.echo(f"tokens   {u.input_tokens} in ({u.cached_input_tokens} prompt-cached), {u.output_tokens} out")
    typer.echo(f"cost     ${result.cost_usd:.6f}")
    typer.echo(f"cached   {'yes (replayed from the response cache)' if result.cached else 'no'}")


@llm_app.command()
@user_errors
def estimate(
    backend: str = typer.Option(..., "--backend", "-b", help="Backend spec or model, e.g. openai:gpt-4o."),
    calls: int = typer.Option(..., min=0, help="Number of requests in the stage."),
    prompt_chars: int = typer.Option(2000, min=0, help="Characters of prompt per request."),
    max_tokens: int = typer.Option(256, min=1, help="max_tokens per request (the output upper bound)."),
    batch: bool = typer.Option(False, help="Price at the batch APIs' 50 % discount."),
) -> None:
    """Estimate the cost of a hypothetical stage: CALLS requests of PROMPT_CHARS characters each."""
    from persona_lab.llm import LLMRequest, estimate_cost

    req = LLMRequest.chat("x" * prompt_chars, max_tokens=max_tokens)
    est = estimate_cost([req] * calls, backend, batch=batch)
    typer.echo(str(est))
    typer.echo(est.note)


@llm_app.command()
@user_errors
def stats(run_dir: Path = typer.Argument(..., help="Run directory (or its llm_cache.sqlite).")) -> None:
    """Summarize a run's response cache: responses, failures by kind, tokens and cost per model."""
    from persona_lab.llm import CACHE_FILENAME, ResponseCache

    path = run_dir / CACHE_FILENAME if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise PersonaLabError(
            f"{path}: no response cache here; pass the run directory of a run that called an LLM"
        )
    with ResponseCache(path) as cache:
        resp = cache.responses()
        fails = cache.failures()
    if resp.empty:
        typer.echo("no responses")
    else:
        per = resp.groupby(["backend", "model"]).agg(
            responses=("key", "size"),
            input_tokens=("input_tokens", "sum"),
            cached_input_tokens=("cached_input_tokens", "sum"),
            output_tokens=("output_tokens", "sum"),
            cost_usd=("cost_usd", "sum"),
        )
        typer.echo(per.to_string())
    typer.echo(
        f"failures: {len(fails)}" + (f" {fails['kind'].value_counts().to_dict()}" if len(fails) else "")
    )
