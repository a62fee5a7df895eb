"""The ``persona-lab`` command line: run stages, inspect and compare runs. The commands of single stages (personas,
llm, elephants) live in ``persona_lab.commands``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from persona_lab.errors import user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


INCOMPLETE_EXIT = 3
"""Exit code of a run that finished but is incomplete (a stage produced an empty or partial result)."""


def _config(
    preset: str | None,
    config: Path | None,
    run_dir: Path | None,
    run_name: str | None,
    backend: str | None,
    seed: int | None,
    sets: list[str],
    retry_failures: bool,
) -> Any:
    """The run configuration: the run directory's own ``config.toml`` when it has one and neither a preset nor a
    config file is given, else the preset (default tiny), then ``--config``, then the flags and ``--set``."""
    from persona_lab.config import deep_merge, load_config, parse_set

    overrides: dict[str, Any] = {"seed": seed}
    if run_dir is not None:
        overrides |= {"name": run_dir.name, "runs_dir": run_dir.parent}
    elif run_name is not None:
        overrides["name"] = run_name
    llm: dict[str, Any] = {}
    if backend:
        llm["backend"] = backend
    if retry_failures:
        llm["retry_failures"] = True
    if llm:
        overrides["llm"] = llm
    overrides = deep_merge(overrides, parse_set(sets))
    existing = run_dir / "config.toml" if run_dir is not None else None
    if preset is None and config is None and existing is not None and existing.exists():
        return load_config(None, existing, **overrides)
    return load_config(preset or "tiny", config, **overrides)  # type: ignore[arg-type]


def _run(
    stages: list[str] | None,
    preset: str | None,
    config: Path | None,
    run_dir: Path | None,
    run_name: str | None,
    backend: str | None,
    seed: int | None,
    sets: list[str],
    figures: Path,
    dry_run: bool,
    force: bool,
    retry_failures: bool,
) -> None:
    cfg = _config(preset, config, run_dir, run_name, backend, seed, sets, retry_failures)
    if dry_run:
        from persona_lab.pipeline import estimate_run

        typer.echo(f"dry run of preset {cfg.preset} on {cfg.llm.backend} (upper bounds; nothing is called)")
        table = estimate_run(cfg, stages)
        typer.echo(
            table.to_string(index=False, na_rep="n/a (no price)", formatters={"usd": "${:,.4f}".format})
        )
        return
    from persona_lab.pipeline import run_stages

    summary = run_stages(cfg, stages, figures_dir=figures, force=force)
    if not summary["complete"]:
        reasons = (
            "; ".join(f"{k}: {v}" for k, v in summary["incomplete"].items()) or "some stages did not run"
        )
        typer.echo(f"incomplete run ({reasons}); see {cfg.run_dir / 'summary.json'}", err=True)
        raise typer.Exit(INCOMPLETE_EXIT)


_PRESET = typer.Option(
    None,
    help="Configuration preset: tiny (minutes on 2 CPU cores) or paper. Default tiny, "
    "or the run directory's own config.toml when it has one.",
)
_CONFIG = typer.Option(None, help="TOML file overriding the preset.")
_RUN_DIR = typer.Option(None, "--run-dir", help="Run directory (default runs/<name>).")
_NAME = typer.Option(None, "--name", help="Run name: the run directory is runs/<name>.")
_BACKEND = typer.Option(None, help="LLM backend spec, e.g. local, openai:gpt-4o.")
_SEED = typer.Option(None, help="Master seed.")
_SET = typer.Option([], "--set", help="Override one setting, e.g. --set prompts.n_topics=5 (repeatable).")
_FIGURES = typer.Option(Path("figures"), help="Where the figures are written.")
_DRY = typer.Option(False, "--dry-run", help="Print each stage's LLM calls, tokens and cost; call nothing.")
_FORCE = typer.Option(False, "--force", help="Rerun the selected stages even when they are done.")
_RETRY = typer.Option(
    False, "--retry-failures", help="Resend calls that failed before (default: replay them as failures)."
)


@app.command()
@user_errors
def reproduce(
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    run_dir: Path | None = _RUN_DIR,
    run_name: str | None = _NAME,
    backend: str | None = _BACKEND,
    seed: int | None = _SEED,
    sets: list[str] = _SET,
    figures: Path = _FIGURES,
    dry_run: bool = _DRY,
    force: bool = _FORCE,
    retry_failures: bool = _RETRY,
) -> None:
    """Run every stage into a run directory and regenerate every figure (the main job)."""
    _run(
        None, preset, config, run_dir, run_name, backend, seed, sets, figures, dry_run, force, retry_failures
    )


@app.command()
@user_errors
def run(
    stages: list[str] = typer.Argument(None, help="Stages to run (default: all); see `persona-lab stages`."),
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    run_dir: Path | None = _RUN_DIR,
    run_name: str | None = _NAME,
    backend: str | None = _BACKEND,
    seed: int | None = _SEED,
    sets: list[str] = _SET,
    figures: Path = _FIGURES,
    dry_run: bool = _DRY,
    force: bool = _FORCE,
    retry_failures: bool = _RETRY,
) -> None:
    """Run some stages (and any upstream stage that is not done); a stage that is done is skipped."""
    _run(
        stages or None,
        preset,
        config,
        run_dir,
        run_name,
        backend,
        seed,
        sets,
        figures,
        dry_run,
        force,
        retry_failures,
    )


@app.command("stages")
@user_errors
def stages_cmd(
    run_dir: Path | None = _RUN_DIR,
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    sets: list[str] = _SET,
    figures: Path = _FIGURES,
) -> None:
    """List the stages with their inputs, outputs, fingerprints and state (done, stale, missing) in a run."""
    from persona_lab.pipeline import stage_states

    cfg = _config(preset, config, run_dir, None, None, None, sets, False)
    table = stage_states(cfg, cfg.run_dir, figures)
    typer.echo(f"stages of {cfg.run_dir} (fingerprints under its configuration)")
    typer.echo(
        table[["stage", "state", "fingerprint", "seconds", "llm_calls"]].to_string(index=False, na_rep="-")
    )
    for row in table.itertuples(index=False):
        typer.echo(f"{row.stage}: reads {row.reads or '-'}; writes {row.writes}")


@app.command()
@user_errors
def compare(
    run_a: Path = typer.Argument(..., help="A run directory."),
    run_b: Path = typer.Argument(..., help="Another run directory."),
) -> None:
    """Compare two runs (an ablation): the configuration difference, the stages it made stale, and each stage's
    summary numbers side by side."""
    from persona_lab.pipeline import compare_runs

    diff = compare_runs(run_a, run_b)
    typer.echo(f"configuration: a = {run_a}, b = {run_b}")
    typer.echo(diff.config.to_string(index=False) if len(diff.config) else "  (identical)")
    typer.echo(f"stages the difference makes stale: {', '.join(diff.stale) or 'none'}")
    typer.echo(diff.numbers.to_string(index=False, na_rep="-") if len(diff.numbers) else "no summary numbers")


@app.command("export-notebooks")
@user_errors
def export_notebooks(
    out: Path = typer.Option(Path("notebooks/ipynb"), help="Directory for the .ipynb files."),
    notebooks: Path = typer.Option(Path("notebooks"), help="Directory of the marimo notebooks."),
) -> None:
    """Export every marimo notebook to a Jupyter .ipynb with its outputs (needs the ``jupyter`` extra)."""
    from persona_lab.notebooks import export_ipynb

    for path in export_ipynb(notebooks, out):
        typer.echo(f"wrote {path}")


census_app = typer.Typer(no_args_is_help=True, help="ACS PUMS files: download and cache.")
app.add_typer(census_app, name="census")


@census_app.command("download")
@user_errors
def census_download(
    states: list[str] = typer.Argument(..., help="State abbreviations, e.g. VT WY."),
    year: int = typer.Option(2018, help="ACS year (1-year files)."),
    mirror: Path | None = typer.Option(None, help="Local directory tried before the Census Bureau."),
    cache_dir: Path | None = typer.Option(None, help="Download cache (default ~/.cache/persona_lab)."),
) -> None:
    """Fetch the PUMS person zips and the data dictionary into the cache (checksummed)."""
    from persona_lab.census import download_dictionary, download_pums

    for path in [
        *download_pums(year, states, cache_dir, mirror),
        download_dictionary(year, cache_dir, mirror),
    ]:
        typer.echo(str(path))


def _register() -> None:
    from persona_lab.commands.elephants import elephants_app
    from persona_lab.commands.llm import llm_app
    from persona_lab.commands.personas import personas

    app.command()(user_errors(personas))
    app.add_typer(llm_app, name="llm")
    app.add_typer(elephants_app, name="elephants")


_register()


def main() -> None:  # pragma: no cover
    sys.exit(app())
