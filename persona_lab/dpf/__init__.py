"""Direct Principle Feedback (Castricato et al. 2024, arXiv 2402.07896): critique a response under a principle,
revise it, and keep (chosen = revision, rejected = original) as a preference pair.

One engine serves PERSONA's persona-specific feedback pairs (principle ``persona``) and Pink Elephants'
avoid-the-entity dialogues (principle ``pink_elephant``).
"""

from persona_lab.dpf._engine import (
    DPFItem,
    DPFResult,
    check_critique,
    check_revision,
    copied_share,
    critique_and_revise,
    critique_requests,
    dpf_requests,
    render_conversation,
    revision_requests,
)
from persona_lab.dpf._parse import (
    ALIASES,
    Critique,
    clean_answer,
    parse_critique,
    parse_revision,
    parse_single,
)
from persona_lab.dpf._principle import Principle, fill, load_principle, principle_names, split_sections

__all__ = [
    "ALIASES",
    "Critique",
    "DPFItem",
    "DPFResult",
    "Principle",
    "check_critique",
    "check_revision",
    "copied_share",
    "clean_answer",
    "critique_and_revise",
    "critique_requests",
    "fill",
    "dpf_requests",
    "load_principle",
    "parse_critique",
    "parse_revision",
    "parse_single",
    "principle_names",
    "render_conversation",
    "revision_requests",
    "split_sections",
]
