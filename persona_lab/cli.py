"""The ``persona-lab`` command line. Each stage's commands live beside the stage (``<stage>/_cli.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from persona_lab.errors import user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
@user_errors
def reproduce(
    preset: str = typer.Option("tiny", help="Configuration preset: tiny (minutes on 2 CPU cores) or paper."),
    config: Path | None = typer.Option(None, help="TOML file overriding the preset."),
    backend: str | None = typer.Option(None, help="LLM backend spec, e.g. local, openai:gpt-4o."),
    run_name: str | None = typer.Option(None, "--name", help="Run name (runs/<name>)."),
    seed: int | None = typer.Option(None, help="Master seed."),
    figures: Path = typer.Option(Path("figures"), help="Where the figures are written."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print each stage's LLM calls, tokens and cost; call nothing."
    ),
) -> None:
    """Run every stage into a run directory and regenerate every figure (the main job)."""
    from persona_lab.config import load_config
    from persona_lab.pipeline import estimate_run
    from persona_lab.pipeline import reproduce as run

    overrides: dict[str, Any] = {"name": run_name, "seed": seed}
    if backend:
        overrides["llm"] = {"backend": backend}
    cfg = load_config(preset, config, **overrides)  # type: ignore[arg-type]
    if dry_run:
        typer.echo(f"dry run of preset {cfg.preset} on {cfg.llm.backend} (upper bounds; nothing is called)")
        table = estimate_run(cfg)
        typer.echo(
            table.to_string(index=False, na_rep="n/a (no price)", formatters={"usd": "${:,.4f}".format})
        )
        return
    run(cfg, figures_dir=figures)


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
    from persona_lab.personas._cli import personas

    app.command()(user_errors(personas))
    try:
        from persona_lab.llm._cli import llm_app
    except ImportError:  # pragma: no cover - during development only
        return
    app.add_typer(llm_app, name="llm")


_register()


def main() -> None:  # pragma: no cover
    sys.exit(app())
