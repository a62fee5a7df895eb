"""Personas (PERSONA, Castricato et al. 2024, Sec. 3.1): census draws, consistency rules, procedural traits,
the LLM consistency check with redraws, enrichment, quality checks and PERSONA's text format."""

from persona_lab.personas._consistency import complete_personas
from persona_lab.personas._enrich import enrich_personas, enrichment_before_after
from persona_lab.personas._generate import generate_personas, table_from_personas
from persona_lab.personas._prompting import TEMPLATES, consistency_request, enrichment_request
from persona_lab.personas._quality import LEANS, check_quality, classify_lean, lean_distribution
from persona_lab.personas._rules import check_rules
from persona_lab.personas._text import parse_persona, read_personas, render_texts
from persona_lab.personas._traits import add_traits

__all__ = [
    "LEANS",
    "TEMPLATES",
    "add_traits",
    "check_quality",
    "check_rules",
    "classify_lean",
    "complete_personas",
    "consistency_request",
    "enrich_personas",
    "enrichment_before_after",
    "enrichment_request",
    "generate_personas",
    "lean_distribution",
    "parse_persona",
    "read_personas",
    "render_texts",
    "table_from_personas",
]
