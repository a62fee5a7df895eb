"""Prompt curation (PERSONA Sec. 3.2, Fig. 3): PRISM opening prompts -> rule and LLM filters -> topics -> split."""

from persona_lab.prompts._curate import curate_prompts
from persona_lab.prompts._filters import (
    STAGE_LABELS,
    classify_controversy,
    controversy_request,
    funnel_counts,
    rule_filter,
)
from persona_lab.prompts._load import PRISM_PROMPTS, load_prompts
from persona_lab.prompts._split import split_prompts
from persona_lab.prompts._templates import TEMPLATES
from persona_lab.prompts._topics import assign_topics, cluster_quality, prompt_vectors, topic_name_request

__all__ = [
    "PRISM_PROMPTS",
    "STAGE_LABELS",
    "TEMPLATES",
    "assign_topics",
    "classify_controversy",
    "cluster_quality",
    "controversy_request",
    "curate_prompts",
    "funnel_counts",
    "load_prompts",
    "prompt_vectors",
    "rule_filter",
    "split_prompts",
    "topic_name_request",
]
