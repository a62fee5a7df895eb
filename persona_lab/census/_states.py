"""US state FIPS codes and postal abbreviations (the ``ST`` variable of the PUMS files).

Source: the ``ST`` rows of the ACS PUMS data dictionaries ("Alabama/AL" = ``01`` ...), which match the
Census Bureau's FIPS state codes. Puerto Rico (``72``) has its own PUMS files as well.
"""

from __future__ import annotations

from persona_lab.errors import PersonaLabError

STATE_FIPS: dict[str, str] = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09", "DE": "10",
    "DC": "11", "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17", "IN": "18", "IA": "19",
    "KS": "20", "KY": "21", "LA": "22", "ME": "23", "MD": "24", "MA": "25", "MI": "26", "MN": "27",
    "MS": "28", "MO": "29", "MT": "30", "NE": "31", "NV": "32", "NH": "33", "NJ": "34", "NM": "35",
    "NY": "36", "NC": "37", "ND": "38", "OH": "39", "OK": "40", "OR": "41", "PA": "42", "RI": "44",
    "SC": "45", "SD": "46", "TN": "47", "TX": "48", "UT": "49", "VT": "50", "VA": "51", "WA": "53",
    "WV": "54", "WI": "55", "WY": "56", "PR": "72",
}  # fmt: skip
"""Postal abbreviation -> two-digit FIPS code."""

FIPS_STATE: dict[str, str] = {v: k for k, v in STATE_FIPS.items()}
"""Two-digit FIPS code -> postal abbreviation."""


def state_abbr(state: str) -> str:
    """Normalize a state given as ``"vt"``, ``"VT"``, ``"50"`` or ``50`` to its postal abbreviation."""
    s = str(state).strip()
    if s.isdigit():
        code = s.zfill(2)
        if code in FIPS_STATE:
            return FIPS_STATE[code]
    elif s.upper() in STATE_FIPS:
        return s.upper()
    raise PersonaLabError(
        f"unknown state {state!r}; expected a postal abbreviation such as 'VT' or a FIPS code such as '50'"
    )
