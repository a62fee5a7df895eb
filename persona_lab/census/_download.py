"""Fetch ACS PUMS person files and data dictionaries from the Census Bureau, cached on disk.

URL patterns (verified against the Census Bureau's FTP tree, see the ACS PUMS User Guide, "ACS FTP
Site"):

* person files: ``https://www2.census.gov/programs-surveys/acs/data/pums/{year}/1-Year/csv_p{st}.zip``
  (``st`` = lower-case postal abbreviation; the zip holds ``psam_p{fips}.csv``);
* data dictionaries: ``https://www2.census.gov/programs-surveys/acs/tech_docs/pums/data_dict/
  PUMS_Data_Dictionary_{year}.csv``.

Files are cached under ``$PERSONA_LAB_CACHE`` (default ``~/.cache/persona_lab``) as
``pums/{year}/csv_p{st}.zip`` with a ``.sha256`` sidecar written after a complete download; a cached
file whose content no longer matches its sidecar is fetched again. A file without a sidecar was put there
by hand (as the offline error message suggests; downloads land atomically, never half-written) and is used
as it is. A local mirror directory (a copy of the Census Bureau tree, or a flat folder of the same file
names) is used before the network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

from persona_lab.census._states import state_abbr
from persona_lab.errors import PersonaLabError
from persona_lab.io import atomic_path

CENSUS_PUMS_URL = "https://www2.census.gov/programs-surveys/acs/data/pums"
"""Root of the Census Bureau's PUMS data tree."""

CENSUS_DICTIONARY_URL = "https://www2.census.gov/programs-surveys/acs/tech_docs/pums/data_dict"
"""Folder of the Census Bureau's PUMS data dictionaries."""

TIMEOUT_S = 60.0


def resolve_cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The download cache: ``override``, else ``$PERSONA_LAB_CACHE``, else ``~/.cache/persona_lab``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("PERSONA_LAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "persona_lab"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify_cached(path: Path) -> bool:
    """True if ``path`` exists and matches the digest in its ``.sha256`` sidecar."""
    side = _sidecar(path)
    if not path.is_file() or not side.is_file():
        return False
    recorded = side.read_text(encoding="utf-8").split()
    return bool(recorded) and recorded[0] == sha256_file(path)


def _cached(path: Path) -> bool:
    """True if ``path`` can be used without a download: it matches its sidecar, or has none (put by hand)."""
    if not path.is_file():
        return False
    return not _sidecar(path).is_file() or verify_cached(path)


def fetch(url: str, dest: Path, *, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically and write its SHA-256 sidecar.

    Raises:
        PersonaLabError: When the server answers with an error or cannot be reached (offline); the
            message names the URL and what to do instead.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out, length=1 << 20)
            expected = resp.headers.get("Content-Length")
            if expected is not None and tmp.stat().st_size != int(expected):
                raise PersonaLabError(
                    f"{url}: download interrupted ({tmp.stat().st_size} of {expected} bytes); try again"
                )
    except urllib.error.HTTPError as exc:
        raise PersonaLabError(
            f"{url}: the server answered HTTP {exc.code} ({exc.reason}); check the year and state, "
            f"or download the file by hand to {dest}"
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PersonaLabError(
            f"{url}: cannot download ({reason}); are you offline? Download the file by hand to {dest}, "
            f"or name a local copy of the Census Bureau's files (`persona-lab census download --mirror DIR`, "
            f"or census.mirror in the run configuration)"
        ) from exc
    _sidecar(dest).write_text(f"{sha256_file(dest)}  {dest.name}\n", encoding="utf-8")
    return dest


def _from_mirror(mirror: str | os.PathLike[str] | None, relative: Iterable[str]) -> Path | None:
    if mirror is None:
        return None
    root = Path(mirror)
    if not root.is_dir():
        raise PersonaLabError(f"{root}: mirror directory does not exist")
    for rel in relative:
        p = root / rel
        if p.is_file():
            return p
    return None


def _check_zip(path: Path, fips_member: str) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise PersonaLabError(f"{path}: not a readable zip ({exc}); delete it and download again") from exc
    if fips_member not in names:
        raise PersonaLabError(f"{path}: zip has no {fips_member} (members: {', '.join(names[:5])})")


def download_pums(
    year: int,
    states: str | Iterable[str],
    cache_dir: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    *,
    base_url: str = CENSUS_PUMS_URL,
) -> list[Path]:
    """Fetch the 1-year ACS PUMS person zips of ``states`` for ``year``; return their local paths.

    Order of sources per state: ``mirror`` (``{mirror}/{year}/1-Year/csv_p{st}.zip`` or
    ``{mirror}/csv_p{st}.zip``), a cached copy (checked against its sidecar when it has one), then
    ``{base_url}/{year}/1-Year/csv_p{st}.zip``.

    Args:
        year: ACS year, e.g. ``2019``.
        states: Postal abbreviations or FIPS codes (``"VT"``, ``["vt", "56"]``).
        cache_dir: Cache root (default ``$PERSONA_LAB_CACHE`` or ``~/.cache/persona_lab``).
        mirror: A local directory holding the same files.
        base_url: Root of the PUMS tree (tests point it at a local server).

    Returns:
        One ``csv_p{st}.zip`` path per state, in the order given; read them with :func:`read_pums`.
    """
    from persona_lab.census._states import STATE_FIPS

    if isinstance(states, str):
        states = [states]
    root = resolve_cache_dir(cache_dir)
    out: list[Path] = []
    for st in states:
        abbr = state_abbr(st)
        name = f"csv_p{abbr.lower()}.zip"
        member = f"psam_p{STATE_FIPS[abbr]}.csv"
        local = _from_mirror(mirror, [f"{year}/1-Year/{name}", name])
        if local is not None:
            _check_zip(local, member)
            out.append(local)
            continue
        dest = root / "pums" / str(year) / name
        if not _cached(dest):
            fetch(f"{base_url.rstrip('/')}/{year}/1-Year/{name}", dest)
        try:
            _check_zip(dest, member)
        except PersonaLabError:
            dest.unlink(missing_ok=True)  # never keep a bad download in the cache
            _sidecar(dest).unlink(missing_ok=True)
            raise
        out.append(dest)
    return out


def download_dictionary(
    year: int,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    *,
    base_url: str = CENSUS_DICTIONARY_URL,
) -> Path:
    """Fetch ``PUMS_Data_Dictionary_{year}.csv`` (mirror, cache, then the Census Bureau).

    The cached copy lives at ``{cache}/{year}/PUMS_Data_Dictionary_{year}.csv``, where
    :func:`load_dictionary` finds it.
    """
    name = f"PUMS_Data_Dictionary_{year}.csv"
    local = _from_mirror(mirror, [f"{year}/{name}", name])
    if local is not None:
        return local
    dest = resolve_cache_dir(cache_dir) / str(year) / name
    if not _cached(dest):
        fetch(f"{base_url.rstrip('/')}/{name}", dest)
    return dest
