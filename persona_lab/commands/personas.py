"""``persona-lab personas``: draw procedural personas into a personas table."""

from __future__ import annotations

from pathlib import Path

import typer

from persona_lab.errors import PersonaLabError


def personas(
    n: int = typer.Option(1586, "--n", help="Number of personas (PERSONA: 1586)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed and source give the same personas."),
    out: Path = typer.Option(..., "--out", help="Output personas table (.parquet), written atomically."),
    pums: list[Path] = typer.Option(
        [],
        "--pums",
        help="ACS PUMS person file (psam_pNN.csv or csv_pXX.zip); repeat for several states. "
        "Without it: the embedded census model.",
    ),
    year: int = typer.Option(
        2018, "--year", help="ACS year of the --pums files (selects the data dictionary)."
    ),
    weighting: str | None = typer.Option(
        None,
        "--weighting",
        help="With --pums: 'pwgtp' (default, person weights) or 'none' (rows uniformly, "
        "as PERSONA's release resembles).",
    ),
    dictionary: Path | None = typer.Option(
        None,
        "--dictionary",
        help="PUMS data dictionary CSV for --year (default: next to the files, or the copy shipped for "
        "2018, 2019 and 2021).",
    ),
    population: str = typer.Option(
        "states",
        "--population",
        help="'states': the population of the source's states; 'national': the source raked to the ACS 2018 "
        "margins of the United States.",
    ),
    n_train: int | None = typer.Option(None, "--n-train", help="Train personas (default: 1000/1586 of --n)."),
    from_text: Path | None = typer.Option(
        None,
        "--from-text",
        help="Import personas already in PERSONA's text format (a JSON list of persona "
        "strings, JSON Lines, or blank-line separated text) instead of drawing them; --n is ignored.",
    ),
) -> None:
    """Draw procedural personas (census draws, consistency rules, Big Five, religion, seeds) into a table."""
    from persona_lab.io import check_writable_dir, write_table
    from persona_lab.personas import generate_personas, table_from_personas

    if out.is_dir():
        raise PersonaLabError(
            f"--out {out} is a directory; give a file name such as {out / 'personas.parquet'}"
        )
    check_writable_dir(out.parent, f"--out {out}: its directory")

    if from_text is not None:
        if pums or weighting is not None or dictionary is not None:
            raise PersonaLabError(
                "--from-text imports finished personas; drop --pums, --weighting and --dictionary"
            )
        from persona_lab.personas import read_personas

        imported = table_from_personas(read_personas(from_text), seed, n_train=n_train, source=str(from_text))
        write_table(imported, out, table="personas")
        n_imported_train = int((imported["split"] == "train").sum())
        typer.echo(
            f"imported {len(imported)} personas from {from_text} ({n_imported_train} train, "
            f"{len(imported) - n_imported_train} test); no census draws, so no rejection rate"
        )
        typer.echo(f"wrote {out}")
        return

    if n < 1:
        raise PersonaLabError(f"--n must be at least 1, got {n}")
    if n_train is not None and not 0 <= n_train <= n:
        raise PersonaLabError(f"--n-train must be between 0 and --n={n}, got {n_train}")
    if weighting not in (None, "pwgtp", "none"):
        raise PersonaLabError(f"--weighting must be 'pwgtp' or 'none', got {weighting!r}")
    if population not in ("states", "national"):
        raise PersonaLabError(f"--population must be 'states' or 'national', got {population!r}")
    if not pums and (weighting is not None or dictionary is not None):
        raise PersonaLabError(
            "--weighting and --dictionary apply to --pums files only; the embedded census model is already "
            "weighted by PWGTP. Pass --pums FILE or drop them"
        )
    from persona_lab.census import open_source
    from persona_lab.config import CensusConfig

    census = CensusConfig.model_validate(
        {"pums": list(pums), "year": year, "weighting": weighting or "pwgtp", "population": population}
    )
    opened = open_source(census, seed, dictionary=dictionary)
    source = opened.source
    name = opened.label + (f", weighting {opened.weighting}" if pums else "")
    if opened.raking is not None:
        typer.echo(opened.raking.summary())
    table, report = generate_personas(source, n, seed, n_train=n_train, source_name=name)
    write_table(table, out, table="personas")
    typer.echo(report.summary())
    typer.echo(f"wrote {out}")
