"""Prompt curation (PERSONA Sec. 3.2, Fig. 3): PRISM opening prompts -> rule and LLM filters -> topics -> split."""

from persona_lab.prompts._curate import (
    OUTPUT_COLUMNS,
    curate_prompts,
    prompts_path,
    topics_path,
)
from persona_lab.prompts._filters import (
    STAGE_LABELS,
    STAGES,
    classify_controversy,
    controversy_request,
    funnel_counts,
    parse_controversy,
    rule_filter,
    word_count,
)
from persona_lab.prompts._load import EMBEDDED_QUESTIONS, load_prompts, load_template
from persona_lab.prompts._split import largest_remainder, scaled_split_sizes, split_prompts
from persona_lab.prompts._topics import (
    assign_topics,
    central_prompts,
    cluster_prompts,
    cluster_quality,
    embedding_model_path,
    fallback_name,
    parse_topic_name,
    prompt_vectors,
    topic_name_request,
    topic_quality,
    topic_terms,
)

__all__ = [
    "EMBEDDED_QUESTIONS",
    "OUTPUT_COLUMNS",
    "STAGE_LABELS",
    "STAGES",
    "assign_topics",
    "central_prompts",
    "classify_controversy",
    "cluster_prompts",
    "cluster_quality",
    "controversy_request",
    "curate_prompts",
    "embedding_model_path",
    "fallback_name",
    "funnel_counts",
    "largest_remainder",
    "load_prompts",
    "load_template",
    "parse_controversy",
    "parse_topic_name",
    "prompt_vectors",
    "prompts_path",
    "rule_filter",
    "scaled_split_sizes",
    "split_prompts",
    "topic_name_request",
    "topic_quality",
    "topic_terms",
    "topics_path",
    "word_count",
]
