"""Text measures shared by the stages."""

from __future__ import annotations


def word_count(text: str) -> int:
    """Whitespace-separated words (``str.split()``): PERSONA's unit, both for its rule that a prompt has at
    least 5 words (Castricato et al. 2024, Sec. 3.2) and for the "short phrases" of the open-ended persona
    attributes (App. A).

    Examples:
        >>> word_count("Is  God\\treal?")
        3
        >>> word_count("   ")
        0
    """
    return len(text.split())
