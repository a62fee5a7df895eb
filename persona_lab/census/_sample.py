"""Draw persons from decoded PUMS microdata (a :class:`~persona_lab.census.CensusSource`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES
from persona_lab.errors import PersonaLabError

Weighting = Literal["pwgtp", "none"]


def sampling_probabilities(frame: pd.DataFrame, weighting: Weighting) -> np.ndarray:
    """Selection probability of each row: proportional to ``weight`` (PWGTP) or uniform.

    ``"pwgtp"`` makes the sample mirror the population the survey represents (each person record
    stands for PWGTP people); ``"none"`` draws records uniformly, which over-represents groups the ACS
    samples at higher rates and is what PERSONA's released personas resemble (Castricato et al. 2024, Sec. 3.1).
    """
    n = len(frame)
    if n == 0:
        raise PersonaLabError("the persona frame is empty; nothing to sample from")
    if weighting == "none":
        return np.full(n, 1.0 / n)
    if weighting != "pwgtp":
        raise PersonaLabError(f"unknown weighting {weighting!r}; use 'pwgtp' or 'none'")
    w = frame["weight"].to_numpy(dtype=float)
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        files = (
            frame.attrs.get("source_files") or sorted(frame["state"].astype(str).unique())
            if "state" in frame
            else []
        )
        where = f"the PUMS records of {', '.join(map(str, files))}" if files else "the persona frame"
        raise PersonaLabError(
            f"{where}: column PWGTP (weight) must hold finite, non-negative person weights with a positive sum; "
            "check the files, or sample records uniformly with weighting 'none' (--weighting none)"
        )
    return w / w.sum()


@dataclass(frozen=True)
class PumsSource:
    """Persons drawn from a persona frame of PUMS records, with or without the person weights.

    Draws are with replacement (the frame is a sample of a population far larger than any persona
    set) by inverse-CDF lookup of uniform numbers (:meth:`draw_indices`), so the same seed gives the
    same persons on every machine (NumPy's ``Generator`` streams are platform independent).

    Attributes:
        frame: A persona frame (:func:`load_persona_frame`).
        weighting: ``"pwgtp"`` (probability proportional to PWGTP, the default) or ``"none"``.
        weights: Sampling weights that replace those of ``weighting`` (one per row, e.g. the weights raked to
            national margins, :func:`~persona_lab.census.rake_weights`); the frame's ``weight`` column keeps
            PWGTP, which the drawn persons carry.
    """

    frame: pd.DataFrame
    weighting: Weighting = "pwgtp"
    weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    _p: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [
            c for c in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS) if c not in self.frame
        ]
        if missing:
            raise PersonaLabError(
                f"persona frame lacks column {missing[0]!r}; build it with load_persona_frame"
            )
        if self.weights is None:
            p = sampling_probabilities(self.frame, self.weighting)
        else:
            w = np.asarray(self.weights, dtype=float)
            if w.shape != (len(self.frame),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise PersonaLabError(
                    f"weights: expected {len(self.frame)} finite, non-negative sampling weights (one per frame "
                    f"row) with a positive sum"
                )
            p = w / w.sum()
        object.__setattr__(self, "_p", p)

    @property
    def probabilities(self) -> np.ndarray:
        """Selection probability of each frame row."""
        return self._p

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` persons (rows of the frame, with replacement), index reset to ``0..n-1``."""
        if n < 0:
            raise PersonaLabError(f"cannot sample {n} persons; n must be >= 0")
        return self.frame.iloc[self.draw_indices(n, rng)].reset_index(drop=True)

    def draw_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Row positions of ``n`` draws: inverse-CDF lookup of ``rng.random(n)`` in the cumulative
        probabilities (``searchsorted`` on the right, so zero-probability rows are never hit).

        Written out rather than ``rng.choice(p=...)`` so the mapping from the seed to the persons is
        fixed by this code, not by a NumPy version.
        """
        if n < 0:
            raise PersonaLabError(f"cannot sample {n} persons; n must be >= 0")
        cdf = np.cumsum(self._p)
        u = rng.random(n) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def weighted_marginal(frame: pd.DataFrame, column: str, weighting: Weighting = "pwgtp") -> pd.Series:
    """Share of each value of ``column`` in the population (``pwgtp``) or among the records (``none``).

    ``None`` values count as the category ``"<none>"``.
    """
    p = sampling_probabilities(frame, weighting)
    values = frame[column].astype(object).where(frame[column].notna(), "<none>")
    return pd.Series(p, index=frame.index).groupby(values.to_numpy()).sum().sort_index()


def total_variation(p: pd.Series, q: pd.Series) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` over the union of categories."""
    keys = p.index.union(q.index)
    return float(0.5 * (p.reindex(keys, fill_value=0.0) - q.reindex(keys, fill_value=0.0)).abs().sum())
