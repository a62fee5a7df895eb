"""Refit the embedded census model: ``python -m persona_lab.census.fit_model``.

Reads ACS PUMS person files (by default the 12 states of 2018 in the shared development data:
``psam_p*.csv`` and the Census Bureau's ``csv_p*.zip``), decodes them into a persona frame with
:func:`persona_lab.census.load_persona_frame`, fits :func:`persona_lab.census._model.fit_census_model`
and writes only its parameters to ``data/census_model.json``, atomically.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from persona_lab.census._model import EMBEDDED_MODEL_PATH, CensusModel, fit_census_model
from persona_lab.errors import PersonaLabError
from persona_lab.paths import shared_data_dir

app = typer.Typer(add_completion=False, help=__doc__)


def default_pums_files(root: Path | None = None) -> list[Path]:
    """The PUMS person files under ``<shared data>/pums``: every ``psam_p*.csv`` and ``zips/csv_p*.zip``."""
    base = (root or shared_data_dir()) / "pums"
    files = sorted(base.glob("psam_p*.csv")) + sorted((base / "zips").glob("csv_p*.zip"))
    if not files:
        raise PersonaLabError(
            f"{base}: no PUMS person files (psam_p*.csv or zips/csv_p*.zip); pass them with --pums"
        )
    return files


def refit(
    pums: list[Path] | None = None,
    *,
    year: int = 2018,
    k: int = 10,
    out: Path = EMBEDDED_MODEL_PATH,
) -> CensusModel:
    """Fit the census model to PUMS files and write it to ``out``; returns the fitted model."""
    from persona_lab.census import load_persona_frame

    files = list(pums) if pums else default_pums_files()
    missing = [str(p) for p in files if not Path(p).exists()]
    if missing:
        raise PersonaLabError(
            f"{missing[0]}: no such PUMS file; pass existing psam_pNN.csv or csv_pXX.zip files"
        )
    frame = load_persona_frame(files, year)
    states = sorted(str(s) for s in frame["state"].unique())
    model = fit_census_model(
        frame,
        k=k,
        metadata={
            "survey": "American Community Survey (ACS) 1-year Public Use Microdata Sample, person records",
            "year": year,
            "states": states,
            "source_files": [p.name for p in files],
            "persona_frame": "persona_lab.census.load_persona_frame(files, year), detail='coarse'",
            "represents": f"the combined population of {', '.join(states)} in {year} (weighted by PWGTP); "
            "not the United States as a whole",
        },
    )
    model.save(out)
    return model


@app.command()
def main(
    pums: list[Path] = typer.Option(
        None, help="PUMS person files (psam_pNN.csv or csv_pXX.zip); default: the 12 shared 2018 states."
    ),
    year: int = typer.Option(2018, help="ACS year of the files (selects the data dictionary)."),
    k: int = typer.Option(10, help="Small-cell threshold in unweighted records."),
    out: Path = typer.Option(EMBEDDED_MODEL_PATH, help="Where to write the model parameters (JSON)."),
) -> None:
    """Fit the embedded census model and write its parameters."""
    start = time.perf_counter()
    try:
        model = refit(pums or None, year=year, k=k, out=out)
    except PersonaLabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    meta = model.metadata
    size = out.stat().st_size
    typer.echo(
        f"wrote {out} ({size / 1024:.0f} KiB): {meta['records']} records of {', '.join(meta['states'])} "
        f"({meta['year']}), {len(model.network.nodes) + 1} nodes, k={k}, {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
