"""One way to open the census source of a run: :func:`open_source` (the pipeline, the CLI and notebook 01).

PERSONA (Castricato et al. 2024, Sec. 3.1) draws its personas from the ACS PUMS. A run names its source in
:class:`~persona_lab.config.CensusConfig`: PUMS files (``pums``), states to fetch (``states``), or neither (the
embedded census model); how records are weighted (``weighting``); and which population the personas stand for
(``population``: the source's own states, or the United States through raking to the published national
margins, :mod:`persona_lab.census._raking`). :func:`open_source` turns that into an :class:`OpenedSource`: the
:class:`~persona_lab.census.CensusSource` to draw personas from, the words that say what it is, and the census
table of Fig. 13, built only when asked for (a dry run never draws it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from persona_lab.census._schema import CensusSource

if TYPE_CHECKING:
    from persona_lab.census._raking import RakingReport
    from persona_lab.config import CensusConfig

CENSUS_TABLE_DRAWS = 100_000
"""Draws of the embedded census model that stand in for the microdata in Fig. 13 (population ``states``)."""

Population = Literal["states", "national"]


@dataclass(frozen=True)
class OpenedSource:
    """A run's census source and what to say about it.

    Attributes:
        source: What personas are drawn from (``source.sample(n, rng)``).
        kind: ``"pums"`` (microdata records) or ``"model"`` (the embedded census model).
        label: A short name for figure subtitles: source, year, states or nation (``"ACS 2018 PUMS (VT, WY),
            12,176 person records"``, ``"embedded census model (ACS 2018, 12 states) raked to US national
            margins"``).
        description: One sentence for reports: the population, the year, the source and the weighting.
        population: ``"states"`` or ``"national"``.
        year: ACS year of the source.
        states: The states the source's records (or the model's fit) come from.
        weighting: How records are weighted when personas are drawn (``"pwgtp"``, ``"none"``, ``"pwgtp raked
            to the ACS 2018 national margins"``, ...).
        weight_column: The census table's weight column for Fig. 13 (``None``: each row counts once).
        raking: The raking report (population ``national``), else ``None``.
    """

    source: CensusSource
    kind: Literal["pums", "model"]
    label: str
    description: str
    population: Population
    year: int
    states: tuple[str, ...]
    weighting: str
    weight_column: str | None
    raking: RakingReport | None = None
    _table: Callable[[], pd.DataFrame] = field(default=lambda: pd.DataFrame(), repr=False, compare=False)
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def census_table(self) -> pd.DataFrame:
        """The census side of Fig. 13, built on the first call: the PUMS persona frame (weighted by
        :attr:`weight_column`), or draws of the embedded model (:data:`CENSUS_TABLE_DRAWS` with the run's
        seed + 1; raked: the model's raked reference draws, weighted by their raking weights)."""
        with self._lock:
            if "table" not in self._cache:
                self._cache["table"] = self._table()
            return self._cache["table"]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: source, population, year, states, weighting and the raking report."""
        out: dict[str, Any] = {
            "source": self.label,
            "description": self.description,
            "kind": self.kind,
            "population": self.population,
            "year": self.year,
            "states": list(self.states),
            "weighting": self.weighting,
        }
        if self.raking is not None:
            out["raking"] = self.raking.to_dict()
        return out


def open_source(
    cfg: CensusConfig,
    seed: int = 0,
    *,
    dictionary: str | os.PathLike[str] | None = None,
) -> OpenedSource:
    """Open the census source ``cfg`` names (:class:`~persona_lab.config.CensusConfig`).

    * ``cfg.pums`` files, else ``cfg.states`` (fetched from ``cfg.mirror``, the cache or the Census Bureau):
      PUMS records decoded into a persona frame and drawn with ``cfg.weighting``;
    * neither: the embedded census model (already the PWGTP-weighted population of its 12 states).

    With ``cfg.population == "national"`` the records' weights (PWGTP, or equal weights with ``weighting =
    "none"``), or the model's joint, are raked to the ACS 2018 national margins (:func:`rake_weights`); raking
    refuses a margin the source cannot reach.

    Args:
        cfg: The census section of the run configuration.
        seed: The run's master seed; the embedded model's Fig. 13 draws use ``seed + 1``.
        dictionary: The PUMS data dictionary file for ``cfg.pums`` (default: found next to the files, shipped
            with the package for 2018, 2019 and 2021, cached, or downloaded).

    Raises:
        PersonaLabError: unreadable files, a dictionary of another year, national margins for another year,
            or an unreachable margin.
    """
    if cfg.pums or cfg.states:
        return _open_pums(cfg, dictionary)
    return _open_model(cfg, seed)


def _state_list(states: tuple[str, ...]) -> str:
    return ", ".join(states)


def _open_pums(cfg: CensusConfig, dictionary: str | os.PathLike[str] | None) -> OpenedSource:
    from persona_lab.census._decode import load_persona_frame, load_states
    from persona_lab.census._margins import load_national_margins
    from persona_lab.census._sample import PumsSource

    margins = load_national_margins(cfg.year) if cfg.population == "national" else None
    options: dict[str, Any] = {"detail": cfg.detail, "group_quarters": cfg.group_quarters}
    if cfg.pums:
        frame = load_persona_frame(cfg.pums, cfg.year, dictionary, **options)
    else:
        frame = load_states(cfg.year, cfg.states, mirror=cfg.mirror, **options)
    states = tuple(sorted(str(s) for s in frame["state"].unique()))
    label = f"ACS {cfg.year} PUMS ({_state_list(states)}), {len(frame):,} person records"
    weighting_words = "PWGTP person weights" if cfg.weighting == "pwgtp" else "each record equally"
    if margins is None:
        return OpenedSource(
            source=PumsSource(frame, weighting=cfg.weighting),
            kind="pums",
            label=label,
            description=(
                f"population: the combined population of {_state_list(states)} in {cfg.year}; source: "
                f"{len(frame):,} ACS {cfg.year} 1-year PUMS person records; weighting: {weighting_words}"
            ),
            population="states",
            year=cfg.year,
            states=states,
            weighting=cfg.weighting,
            weight_column="weight",
            _table=lambda: frame,
        )
    from persona_lab.census._raking import rake_frame

    fit = rake_frame(frame, cfg.weighting, year=cfg.year, margins=margins)
    raked = frame.assign(raked_weight=fit.weights)
    base = "PWGTP" if cfg.weighting == "pwgtp" else "equal record weights"
    return OpenedSource(
        source=PumsSource(raked, weighting=cfg.weighting, weights=fit.weights),
        kind="pums",
        label=f"{label}, raked to US national margins (ACS {margins.year})",
        description=(
            f"population: the United States in {margins.year} (national margins: {margins.source}); source: "
            f"{len(frame):,} ACS {cfg.year} 1-year PUMS person records of {_state_list(states)}; weighting: "
            f"{base} raked to the national margins (effective sample size {fit.report.ess_after:,.0f})"
        ),
        population="national",
        year=cfg.year,
        states=states,
        weighting=f"{cfg.weighting} raked to the ACS {margins.year} national margins",
        weight_column="raked_weight",
        raking=fit.report,
        _table=lambda: raked,
    )


def _open_model(cfg: CensusConfig, seed: int) -> OpenedSource:
    from persona_lab.census._model import load_embedded_model

    model = load_embedded_model()
    meta = model.metadata
    year = int(meta.get("year", cfg.year))
    states = tuple(str(s) for s in meta.get("states", ()))
    fitted_to = f"{len(states)} states" if states else "its source states"
    if cfg.population == "states":
        return OpenedSource(
            source=model,
            kind="model",
            label=f"embedded census model (ACS {year}, {fitted_to})",
            description=(
                f"population: the combined population of {_state_list(states)} in {year}; source: the embedded "
                f"census model fitted to their ACS {year} 1-year PUMS records; weighting: PWGTP (the model is the "
                f"weighted population)"
            ),
            population="states",
            year=year,
            states=states,
            weighting="pwgtp (the embedded model is the weighted population)",
            weight_column=None,
            _table=lambda: model.sample(CENSUS_TABLE_DRAWS, np.random.default_rng(seed + 1)),
        )
    from persona_lab.census._margins import load_national_margins
    from persona_lab.census._raking import RakedModel

    margins = load_national_margins(year)
    raked = RakedModel.build(model, margins)
    return OpenedSource(
        source=raked,
        kind="model",
        label=f"embedded census model (ACS {year}, {fitted_to}) raked to US national margins",
        description=(
            f"population: the United States in {margins.year} (national margins: {margins.source}); source: the "
            f"embedded census model fitted to the ACS {year} PUMS records of {_state_list(states)}; weighting: "
            f"the model's PWGTP-weighted joint raked to the national margins"
        ),
        population="national",
        year=year,
        states=states,
        weighting=f"pwgtp, the model's joint raked to the ACS {margins.year} national margins",
        weight_column="raked_weight",
        raking=raked.report,
        _table=lambda: raked.reference.assign(raked_weight=raked.fit.weights),
    )
