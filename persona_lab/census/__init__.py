"""Census stage: ACS PUMS loading, dictionary decoding, household derivation, weighted sampling."""

from persona_lab.census._decode import (
    ATTRIBUTE_VARIABLES,
    INDUSTRY_SECTORS,
    OCCUPATION_GROUPS,
    decode_persons,
    load_persona_frame,
    load_states,
)
from persona_lab.census._dictionary import (
    CodeRange,
    DataDictionary,
    Variable,
    load_dictionary,
    parse_dictionary,
    read_dictionary,
)
from persona_lab.census._download import download_dictionary, download_pums
from persona_lab.census._households import derive_household_codes, language_group, relationship_roles
from persona_lab.census._pums import columns_for_year, read_pums
from persona_lab.census._sample import PumsSource, total_variation, weighted_marginal
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES, CensusSource

__all__ = [
    "ATTRIBUTE_VARIABLES",
    "CENSUS_ATTRIBUTES",
    "INDUSTRY_SECTORS",
    "META_COLUMNS",
    "OCCUPATION_GROUPS",
    "OPTIONAL_ATTRIBUTES",
    "CensusSource",
    "CodeRange",
    "DataDictionary",
    "PumsSource",
    "Variable",
    "columns_for_year",
    "decode_persons",
    "derive_household_codes",
    "download_dictionary",
    "download_pums",
    "language_group",
    "load_dictionary",
    "load_persona_frame",
    "load_states",
    "parse_dictionary",
    "read_dictionary",
    "read_pums",
    "relationship_roles",
    "total_variation",
    "weighted_marginal",
]

from persona_lab.census._model import CensusModel, load_embedded_model  # noqa: E402

__all__ += ["CensusModel", "load_embedded_model"]
