"""Does a text mention an entity? The string matcher behind the cut, the revision filter and the evaluation.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 3) cuts each dialogue at the
assistant's first mention of the Pink Elephant, drops revisions that still mention it, and scores a model by how
often its reply mentions it. The paper decides with GPT-4; here a deterministic matcher does the explicit cases
and an LLM judge (:func:`~persona_lab.elephants.judge_request`) the implicit ones. The matcher's rules:

1. **Case and accents fold**: text and names are compared after NFKD normalization without combining marks and
   ``str.casefold`` (``"ADIDAS"``, ``"adidas"`` and ``"Adidas"`` match; ``"Nestle"`` matches ``"Nestlé"``).
   Typographic apostrophes and dashes count as ``'`` and ``-``.
2. **Whole words only**: the name must not continue a letter or digit on either side, so ``"Nikesh"``,
   ``"Snike"`` and ``"Nike2"`` do not mention ``Nike``. Punctuation and underscores are boundaries.
3. **Possessives and plurals**: the name may be followed by ``'s``, ``'``, ``s`` or ``es`` (``"Adidas's"``,
   ``"Adidas'"``, ``"two Fords"``, ``"the Lexuses"``) and still match; nothing else may follow it directly.
4. **Separators**: inside a multi-word or hyphenated name, spaces and hyphens are interchangeable and may be
   left out (``"Coca-Cola"``, ``"Coca Cola"``, ``"CocaCola"``, ``"#RealMadrid"`` all match ``Coca-Cola`` or
   ``Real Madrid``), since hashtags and handles drop them; so may an apostrophe or full stop inside a name
   (``"McDonalds"`` is ``McDonald's``, ``"Dr Pepper"`` is ``Dr. Pepper``).
5. **URLs are text**: a URL that names the entity as one of its words mentions it (``"nike.com"``,
   ``"https://www.adidas.com/us"``, ``"shop.example/nike-air"``): pointing a user to the brand's site is
   talking about the brand. The word rule still applies inside a URL: ``"nikesh.dev"`` is not ``Nike``.
6. **Aliases** (``"Air Jordan"`` for Nike, ``"VW"`` for Volkswagen) are matched by the same rules; an alias of
   fewer than two letters or digits is ignored, as it would match stray initials.

What the matcher cannot see, the judge must: pronouns ("their new sneaker"), products named without the brand
("the Stan Smith"), misspellings, and names that are also common words (``Apple`` matches "an apple a day").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_APOSTROPHES = "\u2019\u2018\u02bc\u0060\u00b4\u2032"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212"
_SEPARATOR = re.compile(r"[\s\-]+")
SUFFIX = r"(?:'s|'|es|s)?"
"""What may follow a name inside the same word: a possessive or a plural."""
MIN_ALIAS_CHARS = 2
"""Aliases with fewer letters and digits than this are ignored."""


def _fold_char(ch: str) -> str:
    if ch in _APOSTROPHES:
        return "'"
    if ch in _DASHES:
        return "-"
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fold(text: str) -> str:
    """The comparison form of ``text``: accents dropped, case folded, typographic apostrophes and dashes plain."""
    return "".join(_fold_char(ch) for ch in text)


def _folded_with_index(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each of its characters, the index of the character of ``text`` it came from."""
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        out.append(folded)
        index.extend([i] * len(folded))
    return "".join(out), index


def _alnum_count(name: str) -> int:
    return sum(ch.isalnum() for ch in name)


def _name_pattern(name: str) -> str:
    parts = [re.escape(p) for p in _SEPARATOR.split(fold(name).strip()) if p]
    # apostrophes and full stops inside a name may be left out: "McDonalds", "Dr Pepper"
    parts = [p.replace("'", "'?").replace(r"\.", r"\.?") for p in parts]
    return r"[\s\-]*".join(parts)


@lru_cache(maxsize=4096)
def mention_pattern(entity: str, aliases: tuple[str, ...] = ()) -> re.Pattern[str] | None:
    """The compiled pattern that finds ``entity`` or one of its ``aliases`` in folded text (rules above).

    Returns ``None`` when neither the entity nor any alias has at least :data:`MIN_ALIAS_CHARS` letters or digits
    (nothing can be mentioned). Longer names are tried first, so ``"Nike Air"`` wins over ``"Nike"``.
    """
    names = [n for n in (entity, *aliases) if n and _alnum_count(n) >= MIN_ALIAS_CHARS]
    bodies = sorted({_name_pattern(n) for n in names}, key=len, reverse=True)
    bodies = [b for b in bodies if b]
    if not bodies:
        return None
    return re.compile(r"(?<![^\W_])(?:" + "|".join(bodies) + r")" + SUFFIX + r"(?![^\W_])")


@dataclass(frozen=True)
class Mention:
    """Where a name was found: ``text[start:end]`` is the matched span of the original text."""

    start: int
    end: int
    matched: str


def find_mentions(text: str, entity: str, aliases: Iterable[str] = ()) -> list[Mention]:
    """Every mention of ``entity`` (or an alias) in ``text``, in order, as spans of the original text.

    Examples:
        >>> [m.matched for m in find_mentions("Adidas's shoes beat NIKE, not Nikesh", "Nike", ["Adidas"])]
        ["Adidas's", 'NIKE']
    """
    pattern = mention_pattern(entity, tuple(a for a in aliases if a))
    if pattern is None or not text:
        return []
    folded, index = _folded_with_index(text)
    out = []
    for m in pattern.finditer(folded):
        start = index[m.start()]
        end = index[m.end() - 1] + 1
        out.append(Mention(start=start, end=end, matched=text[start:end]))
    return out


def mentions(text: str | None, entity: str, aliases: Iterable[str] = ()) -> bool:
    """Whether ``text`` names ``entity`` or one of its ``aliases`` (see the module docstring for the rules).

    Args:
        text: the text to search (``None`` or empty: no mention).
        entity: the entity's name, e.g. ``"Adidas"``.
        aliases: other names of the same entity, e.g. ``["Three Stripes"]``.

    Examples:
        >>> mentions("I love Adidas's new line", "Adidas")
        True
        >>> mentions("Nikesh runs daily", "Nike")
        False
    """
    if not text:
        return False
    pattern = mention_pattern(entity, tuple(a for a in aliases if a))
    return pattern is not None and pattern.search(fold(text)) is not None


def same_entity(a: str, b: str, a_aliases: Iterable[str] = (), b_aliases: Iterable[str] = ()) -> bool:
    """Whether two names may be the same entity: one's name (or an alias) mentions the other's name (or alias).

    ``"Nike"`` and ``"Nike Air"`` are the same for this purpose (the second names the first as a whole word);
    ``"Coca-Cola"`` and ``"Coke"`` are only when an alias says so.
    """
    a_names = [a, *a_aliases]
    b_names = [b, *b_aliases]
    return any(mentions(x, b, b_aliases) for x in a_names) or any(mentions(y, a, a_aliases) for y in b_names)
