"""The embedded census model: a Bayesian network of the persona-relevant PUMS variables.

The main job must draw personas offline, without a PUMS file. This module fits a compact statistical
model of the persona frame (see :mod:`persona_lab.census._schema`) from real PUMS microdata, stores only
its parameters (weighted conditional probability tables with small-cell suppression, never a record) in
``data/census_model.json``, and samples persona frames from it.

The network (a root of age band x sex and a Chow-Liu tree with a few second parents, weighted by PWGTP, with
small-cell suppression) is :mod:`persona_lab.census._network`; its statistics are
:mod:`persona_lab.census._stats`; the JSON document is :mod:`persona_lab.census._codec`. This module adds
what turns network draws into persona frames.

Numeric variables: ``age`` enters the network as age bands; a single year is drawn within the band
from the weighted single-year distribution of the band and the persona's education (when that pair
holds ``k`` records; else of the band), so grade levels and degrees agree with single years. ``income`` (PINCP) enters as bands: absent
(NaN; the PUMS loader already writes 0 for persons under 15), negative, exactly 0, and ten bands of
positive income cut at its weighted deciles; a dollar value is drawn within the band by linear
interpolation of the band's stored weighted quantiles (21 levels, fewer for small bands; the outermost
stored values are the ``k``-th smallest and largest record, so no single record's value is published).
Optional attributes that do not apply (``None``) are the category ``"<absent>"``
inside the network and ``None`` again on output.

Drawn incomes are values the Census Bureau could have published. The 2018 PUMS data dictionary marks every
income component "Rounded" (WAGP "$4 to 999999 (Rounded and top-coded)") and PINCP "Rounded components"; the rule, read off the 2018 microdata (every
positive WAGP of the 12 states obeys it), is $1-7 -> $4, $8-999 to the nearest $10, $1,000-49,999 to the
nearest $100, $50,000 and more to the nearest $1,000 (losses alike). A drawn dollar value is rounded by
that rule (:func:`round_income`), the value of a person with one income component, so it never reads
``149158``.

Draws come from a ``numpy.random.Generator`` only, so a seed reproduces a frame exactly on any machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.census._codec import decode, encode
from persona_lab.census._network import TreeNetwork, _draw, _labels, fit_tree_network
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES
from persona_lab.census._stats import weighted_quantiles
from persona_lab.errors import PersonaLabError
from persona_lab.io import write_text
from persona_lab.paths import DATA_DIR

__all__ = [
    "ABSENT",
    "AGE_BAND_STARTS",
    "EMBEDDED_MODEL_PATH",
    "ROOT",
    "CensusModel",
    "fit_census_model",
    "load_embedded_model",
    "round_income",
]

ABSENT = "<absent>"
"""Network category for an optional attribute that does not apply (``None`` in the persona frame)."""

EMBEDDED_MODEL_PATH = DATA_DIR / "census_model.json"
REFIT_COMMAND = "python -m persona_lab.census.fit_model"

AGE_BAND_STARTS: tuple[int, ...] = (
    0, 3, 5, 10, 15, 16, 17, 18, 20, 25, 30, 35, 40, 45, 51, 55, 60, 65, 70, 75, 80, 85,
)  # fmt: skip
"""First age of each age band. Besides five-year steps the bands split at every ACS universe threshold in
the PUMS data dictionary: 3 (SCHL), 5 (ENG, DREM), 15 (MAR, PINCP, FER), 16 (ESR, COW), 17 (MIL),
18 (adult), 51 (FER applies to women 15-50). The last band is 85-99 (AGEP is top-coded below 100)."""

INCOME_POSITIVE_BANDS = 10
"""Positive incomes are cut into this many bands at their weighted quantiles (deciles)."""


AGE_DETAIL = "education"
"""The attribute that single years of age are drawn conditionally on, within their band."""

ROOT = "age band x sex"
"""Name of the root node of the network (the joint of age band and sex)."""

# --------------------------------------------------------------------------------------------------------
# The census model: the network over the persona frame, plus age and income within their bands
# --------------------------------------------------------------------------------------------------------


def round_income(dollars: Any) -> np.ndarray:
    """Round dollar amounts as the ACS PUMS rounds each income component (see the module docstring).

    ``0`` stays ``0``; an amount of $1-7 becomes $4; $8-999 the nearest $10; $1,000-49,999 the nearest $100;
    $50,000 and more the nearest $1,000. Losses are rounded by their size (-$149,158 -> -$149,000) and NaN
    stays NaN. Halves round away from zero, so the result is a value the microdata could hold: $995 -> $1,000.
    Rounding never moves an amount across zero.
    """
    v = np.asarray(dollars, dtype=float)
    size = np.abs(v)
    step = np.where(size < 999.5, 10.0, np.where(size < 49_950.0, 100.0, 1000.0))
    rounded = np.floor(size / step + 0.5) * step
    rounded = np.where(size < 0.5, 0.0, np.where(size < 7.5, 4.0, rounded))
    return np.where(rounded == 0, 0.0, np.copysign(rounded, v))


def _age_band_labels(starts: Sequence[int], max_age: int) -> list[str]:
    ends = [s - 1 for s in starts[1:]] + [max_age]
    return [f"{a:02d}-{b:02d}" for a, b in zip(starts, ends, strict=True)]


def _income_band_labels(edges: Sequence[float]) -> list[str]:
    lows = [0.0, *edges]
    highs = [*edges, math.inf]
    return [
        f"p{i + 1:02d} ({lo:.0f}, {'inf' if math.isinf(hi) else f'{hi:.0f}'}]"
        for i, (lo, hi) in enumerate(zip(lows, highs, strict=True))
    ]


@dataclass(frozen=True)
class CensusModel:
    """A fitted census model: draws persona frames without microdata (implements ``CensusSource``).

    Attributes:
        network: The root + Chow-Liu tree network over the discretized persona attributes.
        age_band_starts: First age of each age band (see :data:`AGE_BAND_STARTS`).
        max_age: Largest age (AGEP top code).
        age_within_band: Per age band label, the single years and their weighted probabilities.
        age_within_band_education: The same per (age band, education) with at least ``k`` records:
            grade levels and degrees pin down single years that the bands leave open (a 10-14 year old in
            grade 9 is 14), so a persona's age agrees with its education as often as in the data. The
            key ``(band, "<absent>")`` pools a band's education levels with fewer than ``k`` records.
        income_edges: Upper edges of the positive income bands except the last (weighted quantiles).
        income_within_band: Per income band label, stored weighted quantiles at equally spaced levels.
        metadata: Provenance: survey, year, states, record count, suppression rule, refit command.
    """

    network: TreeNetwork
    age_band_starts: tuple[int, ...]
    max_age: int
    age_within_band: dict[str, tuple[np.ndarray, np.ndarray]]
    income_edges: tuple[float, ...]
    income_within_band: dict[str, np.ndarray]
    metadata: dict[str, Any]
    age_within_band_education: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )

    # -- discretization (shared by fitting, sampling and fidelity checks) --

    @property
    def age_band_labels(self) -> list[str]:
        return _age_band_labels(self.age_band_starts, self.max_age)

    def age_band(self, age: Any) -> pd.Series:
        """The model's age band label of each age (ints 0..max_age)."""
        return _age_bands(pd.Series(age), self.age_band_starts, self.max_age)

    def income_band(self, income: Any) -> pd.Series:
        """The model's income band label of each income (NaN: ``"<absent>"``)."""
        return _income_bands(pd.Series(income), self.income_edges)

    # -- sampling --

    def sample(
        self, n: int, rng: np.random.Generator, method: Literal["systematic", "iid"] = "systematic"
    ) -> pd.DataFrame:
        """Draw ``n`` personas as a persona frame.

        ``weight`` is 1.0, ``serialno`` is synthetic (``model-000001``, each persona its own household),
        ``state`` is ``"model"``. ``method`` is the network's sampling scheme (systematic by default).
        The same generator state gives the same frame on any machine.
        """
        if n < 0:
            raise PersonaLabError(f"cannot sample {n} personas: expected n >= 0")
        if n == 0:
            return _empty_frame()
        net = self.network
        codes = net.sample_indices(n, rng, method)
        band_labels = self.age_band_labels
        root_band = np.asarray([band_labels.index(c.split("|", 1)[0]) for c in net.root_categories])
        root_sex = np.asarray([c.split("|", 1)[1] for c in net.root_categories], dtype=object)
        band = root_band[codes[net.root]]
        nodes = {node.name: node for node in net.nodes}
        education = nodes[AGE_DETAIL].categories
        age = np.empty(n, dtype=np.int64)
        pair_key = band * len(education) + codes[AGE_DETAIL]
        for key in np.unique(pair_key):
            pos = np.flatnonzero(pair_key == key)
            b, e = band_labels[key // len(education)], education[key % len(education)]
            table = self.age_within_band_education
            ages, probs = table.get((b, e)) or table.get((b, ABSENT)) or self.age_within_band[b]
            cdf = np.cumsum(probs)[None, :]
            age[pos] = ages[_draw(cdf, np.zeros(len(pos), np.int64), rng.random(len(pos)))]
        income = np.full(n, np.nan)
        income_idx = codes["income"]
        for i in np.unique(income_idx):
            label = nodes["income"].categories[i]
            pos = np.flatnonzero(income_idx == i)
            if label == ABSENT:
                continue
            if label == "0":
                income[pos] = 0.0
                continue
            q = self.income_within_band[label]
            levels = np.linspace(0.0, 1.0, len(q))
            income[pos] = round_income(np.interp(rng.random(len(pos)), levels, q))
        out: dict[str, Any] = {"age": age, "sex": pd.Series(root_sex[codes[net.root]], dtype=object)}
        for col in CENSUS_ATTRIBUTES:
            if col == "income":
                out[col] = income
            elif col not in out:
                out[col] = _labels(nodes[col].categories, codes[col])
        for col in OPTIONAL_ATTRIBUTES:
            cats = [None if c == ABSENT else c for c in nodes[col].categories]
            out[col] = _labels(cats, codes[col])
        width = max(6, len(str(n)))
        out["weight"] = np.ones(n)
        out["serialno"] = pd.Series([f"model-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
        out["state"] = pd.Series(np.full(n, "model", dtype=object), dtype=object)
        return pd.DataFrame(out, columns=[*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS])

    # -- persistence --

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters: category labels, probabilities rounded to 7 decimals, no records."""
        return encode(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CensusModel:
        """Rebuild a model from :meth:`to_dict` output (probabilities as stored, checked to sum to 1)."""
        return cls(**decode(data))

    def save(self, path: str | Path) -> Path:
        """Write the parameters as JSON, atomically."""
        return write_text(path, json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CensusModel:
        """Read a model written by :meth:`save`; a missing or corrupt file is a ``PersonaLabError``."""
        p = Path(path)
        if not p.is_file():
            raise PersonaLabError(f"{p}: census model file is missing; refit it with `{REFIT_COMMAND}`")
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise PersonaLabError(
                f"{p}: not a valid census model ({type(exc).__name__}: {exc}); refit it with `{REFIT_COMMAND}`"
            ) from exc


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES)})
    frame["age"] = frame["age"].astype(np.int64)
    frame["income"] = frame["income"].astype(float)
    frame["weight"] = pd.Series(dtype=float)
    frame["serialno"] = pd.Series(dtype=object)
    frame["state"] = pd.Series(dtype=object)
    return frame


def _age_bands(age: pd.Series, starts: Sequence[int], max_age: int) -> pd.Series:
    a = pd.to_numeric(age, errors="coerce")
    if a.isna().any() or (a < 0).any() or (a > max_age).any():
        bad = age[a.isna() | (a < 0) | (a > max_age)].iloc[0]
        raise PersonaLabError(f"column 'age': value {bad!r} is not an age in 0..{max_age}")
    labels = np.asarray(_age_band_labels(starts, max_age), dtype=object)
    idx = np.searchsorted(np.asarray(starts), a.to_numpy(dtype=np.int64), side="right") - 1
    return pd.Series(labels[idx], index=age.index)


def _income_bands(income: pd.Series, edges: Sequence[float]) -> pd.Series:
    v = pd.to_numeric(income, errors="coerce").to_numpy(dtype=float)
    labels = np.asarray(_income_band_labels(edges), dtype=object)
    pos = labels[np.minimum(np.searchsorted(np.asarray(edges, dtype=float), v, side="left"), len(labels) - 1)]
    out = np.where(np.isnan(v), ABSENT, np.where(v < 0, "negative", np.where(v == 0, "0", pos)))
    return pd.Series(out, index=income.index, dtype=object)


def _network_table(frame: pd.DataFrame, model_age: Any, model_income: Any) -> pd.DataFrame:
    table = pd.DataFrame(index=frame.index)
    table[ROOT] = model_age(frame["age"]) + "|" + frame["sex"].astype(str)
    for col in CENSUS_ATTRIBUTES:
        if col in ("age", "sex"):
            continue
        table[col] = model_income(frame[col]) if col == "income" else frame[col].astype(str)
    for col in OPTIONAL_ATTRIBUTES:
        table[col] = frame[col].where(frame[col].notna(), ABSENT).astype(str)
    return table.reset_index(drop=True)


def _check_frame(frame: pd.DataFrame) -> None:
    required = (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, "weight")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PersonaLabError(
            f"persona frame: missing columns {missing}; build it with persona_lab.census.load_persona_frame"
        )
    if len(frame) == 0:
        raise PersonaLabError("persona frame: no records to fit the census model to")
    for col in (*CENSUS_ATTRIBUTES,):
        if col != "income" and frame[col].isna().any():
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise PersonaLabError(f"persona frame row {row}, column {col!r}: missing value, expected a label")
    w = pd.to_numeric(frame["weight"], errors="coerce")
    if w.isna().any() or (w < 0).any():
        raise PersonaLabError("persona frame column 'weight': expected non-negative numbers (PWGTP)")


def fit_census_model(
    frame: pd.DataFrame,
    *,
    k: int = 10,
    age_band_starts: Sequence[int] = AGE_BAND_STARTS,
    max_age: int = 99,
    income_quantile_levels: int = 21,
    second_parent_gain: float | None = 0.005,
    metadata: Mapping[str, Any] | None = None,
) -> CensusModel:
    """Fit the embedded census model to a persona frame (see the module docstring for every rule).

    Args:
        frame: A persona frame from ``load_persona_frame`` (weights = PWGTP).
        k: Small-cell threshold in unweighted records.
        age_band_starts: First age of each age band; must start at 0.
        max_age: Largest age.
        income_quantile_levels: Stored within-band income quantiles per band (at most; fewer when the band
            has under ``k`` records per level).
        second_parent_gain: Minimum held-out gain (nats per person) for a second parent; ``None``: a
            pure tree-augmented network (see :func:`fit_tree_network`).
        metadata: Provenance to store (survey, year, states); merged over the computed fields.

    Returns:
        The fitted :class:`CensusModel`.
    """
    _check_frame(frame)
    if age_band_starts[0] != 0 or list(age_band_starts) != sorted(set(age_band_starts)):
        raise PersonaLabError(f"age bands {list(age_band_starts)}: expected increasing starts beginning at 0")
    w = pd.to_numeric(frame["weight"]).to_numpy(dtype=float)
    starts = tuple(int(s) for s in age_band_starts)
    age_band = _age_bands(frame["age"], starts, max_age)  # a value that is no age: PersonaLabError
    age = pd.to_numeric(frame["age"]).astype(np.int64)

    income = pd.to_numeric(frame["income"], errors="coerce").to_numpy(dtype=float)
    positive = income > 0
    levels = np.arange(1, INCOME_POSITIVE_BANDS) / INCOME_POSITIVE_BANDS
    edges = tuple(float(np.round(e)) for e in weighted_quantiles(income[positive], w[positive], levels))
    income_band = _income_bands(pd.Series(income), edges)

    age_within: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label in _age_band_labels(starts, max_age):
        sel = (age_band == label).to_numpy()
        years = np.arange(int(label[:2]), int(label[3:]) + 1)
        counts = np.bincount(age.to_numpy()[sel] - years[0], weights=w[sel], minlength=len(years))
        if counts.sum() <= 0:
            counts = np.ones(len(years), dtype=float)
        age_within[label] = (years, counts / counts.sum())
    age_within_education: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    education = frame[AGE_DETAIL].astype(str).to_numpy()
    pairs = pd.Series(np.arange(len(frame))).groupby([age_band.to_numpy(), education])
    rare: dict[str, list[np.ndarray]] = {}
    for (label, level), idx in pairs:
        pos = idx.to_numpy()
        if len(pos) < k:
            rare.setdefault(str(label), []).append(pos)
            continue
        years = age_within[label][0]
        counts = np.bincount(age.to_numpy()[pos] - years[0], weights=w[pos], minlength=len(years))
        if counts.sum() > 0:
            age_within_education[(str(label), str(level))] = (years, counts / counts.sum())
    # Education levels with fewer than k records in a band share one pooled distribution of that band.
    for label, parts in rare.items():
        pos = np.concatenate(parts)
        years = age_within[label][0]
        counts = np.bincount(age.to_numpy()[pos] - years[0], weights=w[pos], minlength=len(years))
        if len(pos) >= k and counts.sum() > 0:
            age_within_education[(label, ABSENT)] = (years, counts / counts.sum())

    income_within: dict[str, np.ndarray] = {}
    for label in _income_band_labels(edges) + ["negative"]:
        sel = (income_band == label).to_numpy()
        vals, ws = income[sel], w[sel]
        if len(vals) == 0:
            continue
        n_levels = int(min(income_quantile_levels, max(2, len(vals) // k)))
        srt = np.sort(vals)
        kk = min(k, len(srt)) - 1
        lo, hi = srt[kk], srt[len(srt) - 1 - kk]
        income_within[label] = np.round(
            weighted_quantiles(np.clip(vals, min(lo, hi), max(lo, hi)), ws, np.linspace(0, 1, n_levels))
        )

    model_age = lambda a: _age_bands(a, starts, max_age)  # noqa: E731
    model_income = lambda v: _income_bands(v, edges)  # noqa: E731
    table = _network_table(frame, model_age, model_income)
    network = fit_tree_network(table, w, root=ROOT, k=k, second_parent_gain=second_parent_gain)
    meta: dict[str, Any] = {
        "description": "Embedded census model of the persona attributes: a Bayesian network (root = age "
        "band x sex, Chow-Liu tree on weighted conditional mutual information, second parents kept on "
        "held-out likelihood gain) of weighted conditional probability tables with small-cell suppression. "
        "Parameters only, no records.",
        "second_parent_min_gain_nats": second_parent_gain,
        "records": int(len(frame)),
        "weighted_population": float(w.sum()),
        "weight": "PWGTP",
        "suppression_k": k,
        "suppression_rule": f"categories with < {k} unweighted records are not published (as parents they "
        f"are pooled into one 'other' category); a conditional probability row is published only with "
        f">= {k} unweighted records, "
        "otherwise P(X|y) restricted to the support of P(X|age band, sex), else P(X|age band, sex), else P(X); "
        f"stored income quantiles exclude the {k - 1} most extreme records of each band",
        "age": "age bands split at the ACS universe thresholds 3, 5, 15, 16, 17, 18, 51 and every 5 years; "
        "single years drawn from each band's weighted single-year distribution",
        "income": "PINCP bands: negative, 0, weighted deciles of positive income; dollars interpolated "
        "between the band's stored weighted quantiles",
        "refit_command": REFIT_COMMAND,
    }
    meta.update(metadata or {})
    fitted = CensusModel(
        network=network,
        age_band_starts=starts,
        max_age=max_age,
        age_within_band=age_within,
        age_within_band_education=age_within_education,
        income_edges=edges,
        income_within_band=income_within,
        metadata=meta,
    )
    # Quantize to the stored precision so the fitted model and its saved file sample identically.
    return CensusModel.from_dict(json.loads(json.dumps(fitted.to_dict())))


def load_embedded_model(path: str | Path | None = None) -> CensusModel:
    """The census model shipped in ``data/census_model.json`` (or ``path``).

    Raises:
        PersonaLabError: the file is missing or corrupt; the message names the refit command.
    """
    return CensusModel.load(EMBEDDED_MODEL_PATH if path is None else path)
