"""Read ACS PUMS person files as the Census Bureau distributes them.

Accepted inputs: ``psam_pNN.csv`` (one state), the ``csv_pXX.zip`` that holds it, the national
``csv_pus.zip`` (several ``psam_pus*.csv`` members), or a folder of such files. Only the columns the
persona frame needs are read, every one as text, so codes keep their leading zeros (``SCHL`` "01",
``POBP`` "006"), as the data dictionary writes them for type-C variables.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from persona_lab.census._states import FIPS_STATE
from persona_lab.errors import PersonaLabError

PERSON_COLUMNS: tuple[str, ...] = (
    "SERIALNO",
    "SPORDER",
    "ST",
    "PWGTP",
    "AGEP",
    "SEX",
    "RAC1P",
    "RAC2P",
    "ANC1P",
    "LANX",
    "LANP",
    "ENG",
    "SCHL",
    "ESR",
    "COW",
    "INDP",
    "OCCP",
    "PINCP",
    "MAR",
    "POBP",
    "CIT",
    "MIL",
    "DIS",
    "HICOV",
    "FER",
    "DEAR",
    "DEYE",
    "DREM",
)
"""Person-file columns read for every year (the relationship column is added per year)."""


def relationship_column(year: int) -> str:
    """The relationship-to-reference-person variable: ``RELP`` up to 2018, ``RELSHIPP`` from 2019.

    Source: the 2018 and 2019 PUMS data dictionaries (2019 replaced RELP by RELSHIPP, which splits
    spouses and unmarried partners by same-/opposite-sex).
    """
    return "RELP" if year <= 2018 else "RELSHIPP"


def columns_for_year(year: int) -> tuple[str, ...]:
    """All person-file columns :func:`read_pums` reads for ``year``."""
    return (*PERSON_COLUMNS, relationship_column(year))


def _expand(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("psam_p*.csv"), *p.glob("csv_p*.zip")])
            if not found:
                raise PersonaLabError(f"{p}: folder holds no psam_p*.csv or csv_p*.zip PUMS person files")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise PersonaLabError("no PUMS files given; pass psam_pNN.csv or csv_pXX.zip paths")
    return out


Opener = Callable[[], IO[bytes]]


@contextmanager
def _members(path: Path) -> Iterator[list[tuple[str, Opener]]]:
    """Yield (display name, opener of a binary stream) for each person CSV in ``path`` (CSV or zip)."""
    if not path.is_file():
        raise PersonaLabError(f"{path}: no such PUMS file")
    if path.stat().st_size == 0:
        raise PersonaLabError(f"{path}: the file is empty; download it again")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise PersonaLabError(
                f"{path}: not a readable zip ({exc}); the download is probably truncated, delete it and "
                f"download it again"
            ) from exc
        with zf:
            names = [n for n in zf.namelist() if Path(n).name.lower().startswith("psam_p")]
            names = [n for n in names if n.lower().endswith(".csv")]
            if not names:
                raise PersonaLabError(
                    f"{path}: zip holds no psam_p*.csv person file (members: {', '.join(zf.namelist()[:5])}); "
                    f"is this a PUMS person zip (csv_pXX.zip, not csv_hXX.zip)?"
                )
            yield [(f"{path}!{n}", partial(zf.open, n)) for n in names]
    else:

        def opener() -> IO[bytes]:
            return open(path, "rb")

        yield [(str(path), opener)]


def _read_member(name: str, opener: Opener, columns: tuple[str, ...], year: int) -> pd.DataFrame:
    try:
        with opener() as f:
            header = f.readline().decode("latin-1").strip()
        if not header:
            raise PersonaLabError(f"{name}: the file is empty; download it again")
        present = [h.strip().strip('"') for h in header.split(",")]
        missing = [c for c in columns if c not in present]
        if missing:
            hint = ""
            if "RELP" in missing and "RELSHIPP" in present:
                hint = " (it has RELSHIPP: ACS 2019 or later data?)"
            elif "RELSHIPP" in missing and "RELP" in present:
                hint = " (it has RELP: ACS 2018 or earlier data?)"
            raise PersonaLabError(
                f"{name}: column {missing[0]} is missing ({len(missing)} of the {len(columns)} columns "
                f"needed for ACS {year} person files are missing){hint}; pass an unmodified PUMS person "
                f"file of {year}"
            )
        with opener() as f:
            table = pacsv.read_csv(
                f,
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(columns),
                    column_types={c: pa.string() for c in columns},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise PersonaLabError(
            f"{name}: cannot decompress ({exc}); the zip is truncated or corrupt, download it again"
        ) from exc
    except pa.ArrowInvalid as exc:
        raise PersonaLabError(f"{name}: not a readable PUMS CSV ({exc}); download it again") from exc
    except OSError as exc:
        raise PersonaLabError(f"{name}: cannot read ({exc}); download it again") from exc
    df = table.to_pandas()
    if df.empty:
        raise PersonaLabError(f"{name}: has a header but no person records")
    bad_year = ~df["SERIALNO"].str.startswith(str(year))
    if bad_year.any():
        i = int(bad_year.to_numpy().argmax())
        serial = df["SERIALNO"].iloc[i]
        raise PersonaLabError(
            f"{name}: row {i + 2} has SERIALNO {serial!r}, not an ACS {year} record; pass the year of "
            f"the data (serial numbers start with it)"
        )
    return df


def read_pums(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    year: int,
) -> pd.DataFrame:
    """Read the persona-relevant columns of ACS 1-year PUMS person files into one population.

    Args:
        paths: ``psam_pNN.csv`` files, ``csv_pXX.zip`` files, or folders holding them; several states
            are concatenated into one population.
        year: ACS data year; it selects the relationship column (``RELP`` / ``RELSHIPP``) and is
            checked against the ``SERIALNO`` prefix of every record.

    Returns:
        One row per person with the columns of :func:`columns_for_year` as strings exactly as written
        in the files (blank = ``""``), plus ``PWGTP`` as float, ``state`` (postal abbreviation from
        ``ST``) and ``source_file`` (the file each row came from, for error messages).

    Raises:
        PersonaLabError: For an empty, truncated or non-PUMS file, a missing column, or records of
            another year; the message names the file.
    """
    columns = columns_for_year(year)
    frames: list[pd.DataFrame] = []
    for path in _expand(paths):
        with _members(path) as members:
            for name, opener in members:
                df = _read_member(name, opener, columns, year)
                df["source_file"] = name
                frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    unknown = ~out["ST"].isin(list(FIPS_STATE))
    if unknown.any():
        row = out[unknown].iloc[0]
        raise PersonaLabError(f"{row['source_file']}: column ST has unknown state code {row['ST']!r}")
    out["state"] = out["ST"].map(FIPS_STATE)
    weight = pd.to_numeric(out["PWGTP"], errors="coerce")
    if weight.isna().any() or (weight < 0).any():
        row = out[weight.isna() | (weight < 0)].iloc[0]
        raise PersonaLabError(
            f"{row['source_file']}: column PWGTP has {row['PWGTP']!r} for SERIALNO {row['SERIALNO']} "
            f"person {row['SPORDER']}; expected a non-negative integer person weight"
        )
    out["PWGTP"] = weight.astype(float)
    dup = out.duplicated(["SERIALNO", "SPORDER"])
    if dup.any():
        row = out[dup].iloc[0]
        raise PersonaLabError(
            f"{row['source_file']}: person {row['SERIALNO']}/{row['SPORDER']} appears twice; "
            f"was the same state passed twice?"
        )
    out["source_file"] = out["source_file"].astype("category")
    return out
