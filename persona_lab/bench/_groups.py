"""Leave-one-out personas and demographic intersections (PERSONA Sec. 5).

**Leave-one-out.** For configured attributes a_1..a_m, each bench item is answered for the full persona, for the
persona without a_i (one variant per attribute), and for the *baseline*: the persona with all m attributes
dropped. Every variant carries its name (``full``, ``baseline``, ``without <a>``) in the ``variant`` column, so
the analysis never infers which persona a row had. (The official plotting script infers it: it takes the variant
with the most attributes as the base persona, which is a one-attribute-dropped persona, not the baseline with all
of them dropped, and it pairs the remaining scores with the dropped attributes by the iteration order of a set.)
The critic always judges against the full persona: the variants measure what the model under test loses without
an attribute. (The official code shows the critic the reduced persona too.)

**Intersections.** A demographic intersection is a set of conditions on persona attributes, e.g.
``{"sex": ["Female"], "age": ["18-34"]}`` = women aged 18 to 34. A persona belongs to it when every attribute takes
one of the accepted values; for numeric attributes (age, income) a value may be a closed range ``"18-34"`` or an
open one ``"65+"``. Accuracy is reported per intersection with bootstrap intervals over its items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.personas import parse_persona

FULL = "full"
"""Variant name of the persona with every attribute."""
BASELINE = "baseline"
"""Variant name of the persona with all leave-one-out attributes dropped."""

NUMERIC_ATTRIBUTES: tuple[str, ...] = ("age", "income")
"""Attributes whose intersection values may be ranges."""

_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPEN = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\+\s*$")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*$")


def without(attribute: str) -> str:
    """Variant name of the persona without ``attribute``."""
    return f"without {attribute}"


def loo_variants(attributes: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """``(variant, dropped attributes)`` of a leave-one-out evaluation: full, baseline, then one per attribute.

    >>> loo_variants(["age", "sex"])
    [('full', ()), ('baseline', ('age', 'sex')), ('without age', ('age',)), ('without sex', ('sex',))]
    """
    attrs = tuple(dict.fromkeys(attributes))
    return [(FULL, ()), (BASELINE, attrs), *((without(a), (a,)) for a in attrs)]


def drop_attributes(text: str, attributes: Iterable[str], *, source: str = "persona") -> str:
    """The persona ``text`` (PERSONA's format) without the lines of ``attributes`` (absent ones are ignored).

    The other lines are kept as they are, in their order; when every attribute is dropped the text is empty.

    Raises:
        PersonaLabError: ``text`` is not in PERSONA's format (naming ``source`` and the line).
    """
    drop = set(attributes)
    parse_persona(text, source=source)  # validates the format
    kept = [
        line for line in text.splitlines() if line.strip() and line.partition(": ")[0].rstrip(":") not in drop
    ]
    return "".join(line + "\n" for line in kept)


def is_attribute(name: str) -> bool:
    """Whether ``name`` is one of PERSONA's 33 attribute keys (``"age"``, ``"political views"``, ...)."""
    try:
        parse_persona(f"{name}: x", source="attribute name")
    except PersonaLabError:
        return False
    return True


def check_attribute_names(attributes: Iterable[str], setting: str) -> None:
    """Refuse names that are not PERSONA attribute keys (one line naming the setting)."""
    for a in attributes:
        if not is_attribute(a):
            raise PersonaLabError(
                f"{setting}: {a!r} is not a PERSONA attribute; use one of the 33 keys such as 'age', 'sex', "
                "'religion', 'political views'"
            )


def _present(personas: pd.DataFrame, attribute: str) -> pd.Series:
    if attribute not in personas.columns:
        return pd.Series(False, index=personas.index)
    col = personas[attribute]
    return col.notna() & (col.astype(str).str.strip() != "")


def check_attributes_present(personas: pd.DataFrame, attributes: Iterable[str], setting: str) -> None:
    """Refuse attributes no persona of ``personas`` has (one line naming the setting and the attribute)."""
    check_attribute_names(attributes, setting)
    for a in attributes:
        if not _present(personas, a).any():
            raise PersonaLabError(
                f"{setting}: no persona has the attribute {a!r} ({len(personas):,} personas checked); "
                "choose an attribute the personas have"
            )


def _value_test(attribute: str, value: str, column: pd.Series) -> pd.Series:
    text = str(value)
    if attribute in NUMERIC_ATTRIBUTES:
        numbers = pd.to_numeric(column, errors="coerce")
        if m := _RANGE.match(text):
            lo, hi = float(m.group(1)), float(m.group(2))
            if lo > hi:
                raise PersonaLabError(
                    f"range {text!r} of {attribute!r} is empty: write it low-high, e.g. 18-34"
                )
            return (numbers >= lo) & (numbers <= hi)
        if m := _OPEN.match(text):
            return numbers >= float(m.group(1))
        if m := _NUMBER.match(text):
            return numbers == float(m.group(1))
    return column.astype(str).str.strip() == text.strip()


def intersection_mask(personas: pd.DataFrame, where: Mapping[str, Sequence[str]]) -> pd.Series:
    """Which personas belong to the intersection ``where`` (every attribute takes one of its values)."""
    mask = pd.Series(True, index=personas.index)
    for attribute, values in where.items():
        if attribute not in personas.columns:
            return pd.Series(False, index=personas.index)
        column = personas[attribute]
        hit = pd.Series(False, index=personas.index)
        for v in values:
            hit |= _value_test(attribute, v, column).fillna(False).astype(bool)
        mask &= hit
    return mask


def check_intersections(
    personas: pd.DataFrame,
    intersections: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    setting: str = "bench.intersections",
    skip_values: Iterable[str] = (),
) -> None:
    """Refuse an intersection with an attribute the personas lack or a value no persona takes.

    Args:
        personas: the personas the bench draws from.
        intersections: name -> {attribute: accepted values}.
        setting: the configuration path named in messages.
        skip_values: attributes whose values cannot be known yet (open-ended ones before enrichment): only
            their names are checked.

    Raises:
        PersonaLabError: one line naming ``<setting>.<name>.<attribute>`` and the bad value.
    """
    skip = set(skip_values)
    for name, where in intersections.items():
        if not where:
            raise PersonaLabError(
                f"{setting}.{name}: no condition; give at least one attribute and its values"
            )
        for attribute, values in where.items():
            where_set = f"{setting}.{name}.{attribute}"
            check_attribute_names([attribute], f"{setting}.{name}")
            if not values:
                raise PersonaLabError(f"{where_set}: no accepted value; list at least one")
            if attribute in skip:
                continue
            if not _present(personas, attribute).any():
                raise PersonaLabError(
                    f"{where_set}: no persona has the attribute {attribute!r}; choose an attribute the personas have"
                )
            column = personas[attribute]
            for v in values:
                try:
                    hit = _value_test(attribute, v, column).fillna(False)
                except PersonaLabError as exc:
                    raise PersonaLabError(f"{where_set}: {exc}") from None
                if not hit.any():
                    taken = column.dropna().astype(str).value_counts().index[:4].tolist()
                    example = ", ".join(repr(t) for t in taken)
                    raise PersonaLabError(
                        f"{where_set}: no persona takes the value {v!r} ({len(personas):,} personas checked; "
                        f"values taken include {example})"
                    )


def persona_groups(
    personas: pd.DataFrame, intersections: Mapping[str, Mapping[str, Sequence[str]]]
) -> pd.DataFrame:
    """Long table ``persona_id``, ``intersection`` of the personas in each intersection (in config order)."""
    parts = []
    for name, where in intersections.items():
        mask = intersection_mask(personas, where)
        ids = personas.loc[mask, "persona_id"].astype(str)
        parts.append(pd.DataFrame({"persona_id": ids.to_numpy(), "intersection": name}))
    if not parts:
        return pd.DataFrame({"persona_id": pd.Series(dtype=object), "intersection": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True)


def intersection_accuracy(
    rows: pd.DataFrame,
    personas: pd.DataFrame,
    intersections: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    by: Sequence[str] = ("model", "mode"),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Accuracy per intersection (and ``all`` items) and group, with bootstrap SE and interval.

    An intersection without items in a group has NaN accuracy and ``n`` 0 (it is kept, not dropped).
    """
    from persona_lab.bench._stats import accuracy_table

    groups = persona_groups(personas, intersections)
    everyone = rows.assign(intersection="all")
    members = rows.merge(groups, on="persona_id", how="inner")
    table = accuracy_table(
        pd.concat([everyone, members], ignore_index=True),
        by=[*by, "intersection"],
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )
    # every (group, intersection) appears, even an empty one
    keys = rows[list(by)].drop_duplicates()
    names = pd.DataFrame({"intersection": ["all", *intersections]})
    grid = keys.merge(names, how="cross")
    table = grid.merge(table, on=[*by, "intersection"], how="left")
    for col in ("n", "passed", "failed", "unscored"):
        table[col] = table[col].fillna(0).astype(int)
    size = groups.groupby("intersection").size()
    table["personas"] = [int(size.get(n, len(personas) if n == "all" else 0)) for n in table["intersection"]]
    return table


def loo_accuracy(
    rows: pd.DataFrame,
    attributes: Sequence[str],
    *,
    by: Sequence[str] = ("model",),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Leave-one-out accuracy per variant (full, baseline, without <a>) and group, with intervals.

    Args:
        rows: the leave-one-out rows (``variant`` column naming each persona variant, ``score``).
        attributes: the leave-one-out attributes (for the order of the variants).

    Returns:
        The :func:`accuracy_table` columns per ``by`` + ``variant``, plus ``delta_vs_full`` (accuracy minus the
        full persona's accuracy in the same group).
    """
    from persona_lab.bench._stats import accuracy_table

    order = [name for name, _ in loo_variants(attributes)]
    table = accuracy_table(
        rows, by=[*by, "variant"], n_boot=n_boot, seed=seed, confidence=confidence, order={"variant": order}
    )
    full = table[table["variant"] == FULL].set_index(list(by))["accuracy"]
    keys = [tuple(r) if len(by) > 1 else r[0] for r in table[list(by)].itertuples(index=False)]
    table["delta_vs_full"] = [
        acc - full.get(k, np.nan) for acc, k in zip(table["accuracy"], keys, strict=True)
    ]
    return table
