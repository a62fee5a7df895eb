"""Census stage: ACS PUMS loading, dictionary decoding, household derivation, the embedded census model,
raking to national margins, and one way to open a run's census source (:func:`open_source`).

The census contract (the persona frame, :mod:`persona_lab.census._schema`) lives here: ``CENSUS_ATTRIBUTES`` and
``OPTIONAL_ATTRIBUTES`` are PERSONA's census keys (Castricato et al. 2024, App. A) and ``NOT_APPLICABLE`` /
``GROUP_QUARTERS`` the labels of attributes that do not apply. ``personas`` imports them from here; the census
stage depends on no other stage.
"""

from persona_lab.census._decode import (
    ATTRIBUTE_VARIABLES,
    GROUP_QUARTERS,
    INDUSTRY_SECTORS,
    NOT_APPLICABLE,
    OCCUPATION_GROUPS,
    decode_persons,
    load_persona_frame,
    load_states,
)
from persona_lab.census._dictionary import (
    SHIPPED_DICTIONARY_YEARS,
    CodeRange,
    DataDictionary,
    Variable,
    load_dictionary,
    parse_dictionary,
    read_dictionary,
)
from persona_lab.census._download import download_dictionary, download_pums
from persona_lab.census._households import derive_household_codes, language_group, relationship_roles
from persona_lab.census._margins import (
    AGE_GROUPS,
    INCOME_GROUPS,
    RAKED_ITEMS,
    Margin,
    NationalMargins,
    load_national_margins,
    margin_label_groups,
    national_comparison,
    national_tvd,
)
from persona_lab.census._model import CensusModel, load_embedded_model, round_income
from persona_lab.census._pums import columns_for_year, read_pums
from persona_lab.census._raking import RakedModel, RakingReport, not_raked, rake_weights
from persona_lab.census._sample import PumsSource, total_variation, weighted_marginal
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES, CensusSource
from persona_lab.census._source import CENSUS_TABLE_DRAWS, OpenedSource, open_source
from persona_lab.census._stats import cramers_v, effective_sample_size, total_variation_distance

__all__ = [
    "AGE_GROUPS",
    "ATTRIBUTE_VARIABLES",
    "CENSUS_ATTRIBUTES",
    "CENSUS_TABLE_DRAWS",
    "GROUP_QUARTERS",
    "INCOME_GROUPS",
    "INDUSTRY_SECTORS",
    "META_COLUMNS",
    "NOT_APPLICABLE",
    "OCCUPATION_GROUPS",
    "OPTIONAL_ATTRIBUTES",
    "RAKED_ITEMS",
    "SHIPPED_DICTIONARY_YEARS",
    "CensusModel",
    "CensusSource",
    "CodeRange",
    "DataDictionary",
    "Margin",
    "NationalMargins",
    "OpenedSource",
    "PumsSource",
    "RakedModel",
    "RakingReport",
    "Variable",
    "columns_for_year",
    "cramers_v",
    "decode_persons",
    "derive_household_codes",
    "download_dictionary",
    "download_pums",
    "effective_sample_size",
    "language_group",
    "load_dictionary",
    "load_embedded_model",
    "load_national_margins",
    "load_persona_frame",
    "load_states",
    "margin_label_groups",
    "national_comparison",
    "national_tvd",
    "not_raked",
    "open_source",
    "parse_dictionary",
    "rake_weights",
    "read_dictionary",
    "read_pums",
    "relationship_roles",
    "round_income",
    "total_variation",
    "total_variation_distance",
    "weighted_marginal",
]
