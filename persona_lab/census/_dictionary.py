"""The ACS PUMS data dictionary (CSV form): code -> label per variable, keyed by survey year.

The Census Bureau publishes one dictionary per ACS year as ``PUMS_Data_Dictionary_{year}.csv`` with two
kinds of rows (see the "PUMS Data Dictionary" section of the ACS PUMS User Guide)::

    NAME,AGEP,N,2,"Age"
    VAL,AGEP,N,2,0,0,"Under 1 year"
    VAL,AGEP,N,2,1,99,"1 to 99 years (Top-coded)"
    NAME,SCHL,C,2,"Educational attainment"
    VAL,SCHL,C,2,"bb","bb","N/A (less than 3 years old)"
    VAL,SCHL,C,2,"01","01","No schooling completed"

``NAME`` rows declare a variable (type ``C`` = character code, ``N`` = numeric; field length). ``VAL``
rows give a code (``lo == hi``) or an inclusive range (``lo..hi``) and its label. A code written as ``b``
repeated to the field length (``b``, ``bb``, ``bbbb``) stands for a blank field in the data files.

Variables and labels change between years (the relationship variable is ``RELP`` in 2018 and
``RELSHIPP`` from 2019; ``CIT`` 1 reads "Born in the U.S." in 2019 and "Born in the United States" in
2021), so data of one year must be decoded with that year's dictionary.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

DICTIONARY_FILE = "PUMS_Data_Dictionary_{year}.csv"
"""The Census Bureau's file name for the CSV data dictionary of an ACS year."""

SHIPPED_DICTIONARY_DIR = Path(__file__).resolve().parent / "data"
"""The Census Bureau's data dictionaries shipped with the package (public domain), byte for byte."""

SHIPPED_DICTIONARY_YEARS: tuple[int, ...] = (2018, 2019, 2021)
"""ACS years whose data dictionary ships with the package, so their PUMS files decode offline."""

_FILE_YEAR = re.compile(r"PUMS_Data_Dictionary_(\d{4})", re.IGNORECASE)


@dataclass(frozen=True)
class CodeRange:
    """An inclusive range of codes sharing one label (``VAL`` rows with ``lo != hi``)."""

    lo: str
    hi: str
    label: str

    def contains(self, code: str) -> bool:
        """Whether ``code`` lies in ``lo..hi`` (numerically if all three are integers, else as text)."""
        try:
            return int(self.lo) <= int(code) <= int(self.hi)
        except ValueError:
            if len(code) != len(self.lo):
                return False
            return self.lo <= code <= self.hi


@dataclass(frozen=True)
class Variable:
    """One PUMS variable: its declaration and its code -> label map.

    Attributes:
        name: Variable name as in the data file header (e.g. ``"SCHL"``).
        type: ``"C"`` (character code, compare as text with leading zeros) or ``"N"`` (numeric).
        length: Field length; a blank field is written ``"b" * length`` in the dictionary.
        description: The ``NAME`` row's description.
        codes: Exact codes (``lo == hi`` rows) -> label, including the blank code if listed.
        ranges: Ranges (``lo != hi`` rows) in dictionary order.
    """

    name: str
    type: Literal["C", "N"]
    length: int
    description: str
    codes: Mapping[str, str] = field(default_factory=dict)
    ranges: tuple[CodeRange, ...] = ()

    @property
    def blank(self) -> str:
        """The dictionary's code for a blank field (``"bb"`` for a 2-character variable)."""
        return "b" * self.length

    def normalize(self, code: str) -> str:
        """The dictionary form of a raw field: blank -> ``"b" * length``; type C digits zero-padded.

        Official files keep leading zeros (``"01"``); files re-saved by spreadsheet programs often
        drop them (``"1"``), so an all-digit type-C code shorter than the field is left-padded.
        """
        code = code.strip()
        if code == "":
            return self.blank
        if self.type == "C" and code.isdigit() and len(code) < self.length:
            return code.zfill(self.length)
        return code

    def label(self, code: str) -> str:
        """The label of a (normalized) code; ``KeyError`` if the dictionary does not list it."""
        hit = self.codes.get(code)
        if hit is not None:
            return hit
        if code != self.blank:
            for r in self.ranges:
                if r.contains(code):
                    return r.label
        raise KeyError(code)


@dataclass(frozen=True)
class DataDictionary:
    """All variables of one year's PUMS data dictionary.

    Attributes:
        year: ACS data year the dictionary describes (read from its ``SERIALNO`` codes, else its name).
        variables: Variable name -> :class:`Variable`.
        source: The file it was parsed from (``None`` if built in memory).
    """

    year: int
    variables: Mapping[str, Variable]
    source: Path | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __getitem__(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            raise PersonaLabError(
                f"{self._where()}: the {self.year} PUMS data dictionary has no variable {name}; "
                f"use the dictionary of the data's own year"
            ) from None

    def label(self, name: str, code: str) -> str:
        """Label of one raw code of variable ``name`` (normalized first); PersonaLabError if unknown."""
        var = self[name]
        norm = var.normalize(code)
        try:
            return var.label(norm)
        except KeyError:
            raise PersonaLabError(
                f"{self._where()}: code {norm!r} of {name} is not in the {self.year} data dictionary"
            ) from None

    def decode(
        self,
        name: str,
        values: pd.Series,
        *,
        file: str | os.PathLike[str] | pd.Series | None = None,
    ) -> pd.Series:
        """Map raw codes of variable ``name`` to their labels, vectorized over unique codes.

        Args:
            name: Variable name.
            values: Raw string codes as read from a PUMS file (blank = ``""``).
            file: The data file the values came from, or a Series (aligned with ``values``) naming
                each row's file; named in the error message.

        Raises:
            PersonaLabError: If a code is not in this year's dictionary; the message names the file,
                the column, the year and the code (never a silent NaN).
        """
        var = self[name]
        text = values.astype(str)
        codes, uniques = pd.factorize(text, sort=False)
        labels: list[str] = []
        for raw in uniques:
            norm = var.normalize(raw)
            try:
                labels.append(var.label(norm))
            except KeyError:
                if isinstance(file, pd.Series):
                    where = f"{file[text == raw].iloc[0]}: "
                elif file is not None:
                    where = f"{file}: "
                else:
                    where = ""
                raise PersonaLabError(
                    f"{where}column {name} has code {norm!r} that the {self.year} PUMS data dictionary "
                    f"({self._where()}) does not list; check that the data are ACS {self.year} and that "
                    f"the dictionary is for the same year"
                ) from None
        return pd.Series(np.asarray(labels, dtype=object)[codes], index=values.index, dtype=object)

    def normalize(self, name: str, values: pd.Series) -> pd.Series:
        """Raw codes of ``name`` in dictionary form (blank -> ``"bb…"``, zero-padded), vectorized."""
        var = self[name]
        uniques = pd.unique(values.astype(str))
        return values.astype(str).map({u: var.normalize(u) for u in uniques})

    def _where(self) -> str:
        return str(self.source) if self.source is not None else f"PUMS data dictionary {self.year}"


def parse_dictionary(text: str, *, source: Path | None = None, year: int | None = None) -> DataDictionary:
    """Parse the text of a CSV PUMS data dictionary.

    Args:
        text: The file content.
        source: Path named in error messages.
        year: The ACS year, if known; otherwise read from the ``SERIALNO`` codes (``2019HU0000001``)
            or the file name.

    Raises:
        PersonaLabError: On an empty file, a malformed row (named by line number) or an unknown year.
    """
    where = str(source) if source is not None else "PUMS data dictionary"
    if not text.strip():
        raise PersonaLabError(f"{where}: the data dictionary is empty; download it again")
    decls: dict[str, tuple[str, int, str]] = {}
    codes: dict[str, dict[str, str]] = {}
    ranges: dict[str, list[CodeRange]] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        kind = row[0].strip()
        if kind == "NAME" and len(row) >= 5:
            name, vtype, length = row[1].strip(), row[2].strip(), row[3].strip()
            if vtype not in ("C", "N") or not length.isdigit():
                raise PersonaLabError(
                    f"{where}: line {lineno}: NAME row for {name} has type {vtype!r} and length {length!r}; "
                    f"expected type C or N and an integer length"
                )
            decls.setdefault(name, (vtype, int(length), row[4].strip()))
            codes.setdefault(name, {})
            ranges.setdefault(name, [])
        elif kind == "VAL" and len(row) >= 7:
            name = row[1].strip()
            lo, hi, label = row[4].strip(), row[5].strip(), row[6].strip()
            if name not in decls:
                raise PersonaLabError(f"{where}: line {lineno}: VAL row for {name} before its NAME row")
            vtype, width, _ = decls[name]
            if lo == hi:
                # Codes are stored in the form Variable.normalize gives data codes (2021 writes some
                # type-C codes as " 1" for "01").
                if vtype == "C" and lo.isdigit() and len(lo) < width:
                    lo = lo.zfill(width)
                codes[name].setdefault(lo, label)
            else:
                rng = CodeRange(lo, hi, label)
                if rng not in ranges[name]:
                    ranges[name].append(rng)
        else:
            raise PersonaLabError(
                f"{where}: line {lineno}: expected a NAME row (5 fields) or a VAL row (7 fields), "
                f"got {len(row)} fields starting {row[0][:20]!r}; is this the CSV data dictionary?"
            )
    if not decls:
        raise PersonaLabError(f"{where}: no NAME rows; is this the CSV PUMS data dictionary?")
    if year is None:
        year = _infer_year(ranges.get("SERIALNO", []), source)
    if year is None:
        raise PersonaLabError(
            f"{where}: cannot tell the ACS year (no SERIALNO codes, no year in the file name); "
            f"pass the year explicitly"
        )
    variables = {
        n: Variable(n, vt, ln, desc, codes[n], tuple(ranges[n]))  # type: ignore[arg-type]
        for n, (vt, ln, desc) in decls.items()
    }
    return DataDictionary(year=year, variables=variables, source=source)


def _infer_year(serial_ranges: list[CodeRange], source: Path | None) -> int | None:
    for r in serial_ranges:
        if r.lo[:4].isdigit():
            return int(r.lo[:4])
    if source is not None:
        m = _FILE_YEAR.search(source.name)
        if m:
            return int(m.group(1))
    return None


def read_dictionary(path: str | os.PathLike[str]) -> DataDictionary:
    """Parse a CSV PUMS data dictionary file (see :func:`parse_dictionary`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PersonaLabError(f"{p}: cannot read the data dictionary ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_dictionary(text, source=p)


def dictionary_candidates(year: int, near: list[Path] | None = None) -> list[Path]:
    """Where :func:`load_dictionary` looks for ``PUMS_Data_Dictionary_{year}.csv``, in order.

    Next to each PUMS file and in its parent directory, then the copy shipped with the package (years
    :data:`SHIPPED_DICTIONARY_YEARS`), then the download cache.
    """
    from persona_lab.census._download import resolve_cache_dir

    name = DICTIONARY_FILE.format(year=year)
    out: list[Path] = []
    for p in near or []:
        folder = p if p.is_dir() else p.parent
        for d in (folder, folder.parent):
            if d / name not in out:
                out.append(d / name)
    if year in SHIPPED_DICTIONARY_YEARS:
        out.append(SHIPPED_DICTIONARY_DIR / name)
    out.append(resolve_cache_dir() / str(year) / name)
    return out


def load_dictionary(
    path_or_year: str | os.PathLike[str] | int,
    *,
    near: list[str | os.PathLike[str]] | None = None,
    download: bool = True,
) -> DataDictionary:
    """Load the PUMS data dictionary of a year, or from a file.

    Resolution for a year: a ``PUMS_Data_Dictionary_{year}.csv`` next to the PUMS files given in
    ``near`` (or in their parent directory); the copy shipped with persona_lab (the public-domain
    dictionaries of :data:`SHIPPED_DICTIONARY_YEARS`, so those years decode offline); the download cache
    (``$PERSONA_LAB_CACHE`` or ``~/.cache/persona_lab``); else a download from the Census Bureau
    (``download=True``). Whichever file is found must describe ``year`` (checked on its ``SERIALNO`` rows).

    Args:
        path_or_year: A dictionary file path, or an ACS year such as ``2019``.
        near: PUMS files (or folders) whose folder may hold the dictionary.
        download: Fetch the dictionary from the Census Bureau when no local copy exists.

    Raises:
        PersonaLabError: If the file is missing or malformed, or no copy is found and the download
            fails (the message says where to put the file).
    """
    if isinstance(path_or_year, int | np.integer) and not isinstance(path_or_year, bool):
        year = int(path_or_year)
        candidates = dictionary_candidates(year, [Path(p) for p in near or []])
        for c in candidates:
            if c.is_file():
                d = read_dictionary(c)
                _check_year(d, year)
                return d
        looked = ", ".join(dict.fromkeys(str(c.parent) for c in candidates))
        advice = (
            f"put the Census Bureau's {DICTIONARY_FILE.format(year=year)} next to the PUMS files or in "
            f"{candidates[-1].parent}, or pass it as the dictionary (`persona-lab personas --dictionary FILE`); "
            f"persona_lab ships the dictionaries of {', '.join(map(str, SHIPPED_DICTIONARY_YEARS))}"
        )
        if not download:
            raise PersonaLabError(
                f"no {DICTIONARY_FILE.format(year=year)} found (looked in: {looked}); {advice}"
            )
        from persona_lab.census._download import download_dictionary

        try:
            path = download_dictionary(year)
        except PersonaLabError as exc:
            reason = exc.__cause__ or exc
            raise PersonaLabError(
                f"no {DICTIONARY_FILE.format(year=year)} found (looked in: {looked}) and the download from "
                f"the Census Bureau failed ({reason}); {advice}"
            ) from exc
        d = read_dictionary(path)
        _check_year(d, year)
        return d
    if isinstance(path_or_year, bool):
        raise PersonaLabError(f"{path_or_year!r} is neither an ACS year nor a data dictionary file")
    return read_dictionary(path_or_year)


def _check_year(d: DataDictionary, year: int) -> None:
    if d.year != year:
        raise PersonaLabError(
            f"{d.source}: this data dictionary describes ACS {d.year}, not {year}; "
            f"use {DICTIONARY_FILE.format(year=year)}"
        )
