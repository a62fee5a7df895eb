"""Which persona gets which prompts: PERSONA's sampling plan of feedback pairs.

PERSONA (Castricato et al. 2024, Sec. 3.3) pairs personas and prompts independently at random: each persona
gets 150 prompts drawn from the 3,000 train prompts (100 become train pairs, 50 test pairs on "seen" prompts)
and 50 from the 868 held-out prompts (test pairs on "unseen" prompts), so 1,586 personas give
1,586 x 200 = 317,200 pairs, 158,600 train and 158,600 test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from fractions import Fraction
from math import floor

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

SPLITS = ("train", "test_seen", "test_unseen")
"""The splits of the feedback pairs, in order."""

PAPER_SIZES = (100, 50, 50)
"""Pairs per persona in each split (PERSONA Sec. 3.3)."""


def scaled_sizes(sizes: Sequence[int], n_train_prompts: int, n_heldout_prompts: int) -> tuple[int, int, int]:
    """Pairs per persona for prompt pools that may be too small for ``sizes``.

    The rule: train and test_seen pairs both draw from the train prompts (``a + b`` distinct ones per persona)
    and test_unseen pairs from the held-out prompts (``c``). When a pool is too small, all three sizes are
    multiplied by the largest factor ``f <= 1`` with which both pools suffice (``f = min(1, n_train / (a + b),
    n_heldout / c)``, exact fractions) and rounded down, so the 2:1:1 proportions of the paper hold; a size
    that rounds to 0 is raised to 1 while its pool still has a prompt left. An empty pool gives its splits 0
    pairs and does not shrink the other pool's sizes.

    Examples:
        >>> scaled_sizes((100, 50, 50), 3000, 868)
        (100, 50, 50)
        >>> scaled_sizes((100, 50, 50), 8, 2)
        (4, 2, 2)
        >>> scaled_sizes((100, 50, 50), 2, 0)
        (1, 1, 0)
    """
    if len(sizes) != 3 or any(int(s) < 0 for s in sizes):
        raise PersonaLabError(
            f"feedback sizes {tuple(sizes)!r}: expected three pair counts >= 0 (train, seen, unseen)"
        )
    a, b, c = (int(s) for s in sizes)
    factor = Fraction(1)
    if a + b and n_train_prompts:
        factor = min(factor, Fraction(n_train_prompts, a + b))
    if c and n_heldout_prompts:
        factor = min(factor, Fraction(n_heldout_prompts, c))
    out = [floor(a * factor), floor(b * factor), floor(c * factor)]
    if not n_train_prompts:
        out[0] = out[1] = 0
    if not n_heldout_prompts:
        out[2] = 0
    for i, want in enumerate((a, b)):
        if want and out[i] == 0 and out[0] + out[1] < n_train_prompts:
            out[i] = 1
    if c and out[2] == 0 and n_heldout_prompts:
        out[2] = 1
    return out[0], out[1], out[2]


def persona_rng(seed: int, persona_id: str) -> np.random.Generator:
    """The generator of one persona's draws: seeded by the run's seed and the persona id only, so a persona
    gets the same prompts whichever other personas are in the plan."""
    digest = hashlib.blake2b(str(persona_id).encode(), digest_size=8).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest, "big")])


def sampling_plan(
    persona_ids: Sequence[str],
    train_prompt_ids: Sequence[str],
    heldout_prompt_ids: Sequence[str],
    seed: int = 0,
    sizes: Sequence[int] = PAPER_SIZES,
) -> pd.DataFrame:
    """The (persona, prompt, split) pairs to critique and revise.

    For each persona, ``a + b`` distinct train prompts are drawn without replacement (the first ``a`` make
    ``train`` pairs, the next ``b`` ``test_seen`` pairs) and ``c`` distinct held-out prompts (``test_unseen``),
    where ``(a, b, c)`` is :func:`scaled_sizes` of ``sizes`` for the pools given. No (persona, prompt) pair
    occurs twice. Draws use :func:`persona_rng`.

    Args:
        persona_ids: the personas (unique).
        train_prompt_ids: the train prompts (PERSONA: 3,000).
        heldout_prompt_ids: the held-out prompts (PERSONA: 868).
        seed: the run's seed.
        sizes: pairs per persona in train, test_seen, test_unseen (PERSONA: 100, 50, 50).

    Returns:
        Columns ``persona_id``, ``prompt_id``, ``split``; personas in input order, then splits in
        :data:`SPLITS` order, then draw order. For 1,586 personas, 3,000 and 868 prompts: 317,200 rows.

    Raises:
        PersonaLabError: a repeated persona id, or a prompt id both in the train and the held-out prompts.
    """
    personas = [str(p) for p in persona_ids]
    train = np.asarray([str(p) for p in train_prompt_ids], dtype=object)
    heldout = np.asarray([str(p) for p in heldout_prompt_ids], dtype=object)
    if len(set(personas)) != len(personas):
        dup = pd.Series(personas)[pd.Series(personas).duplicated()].iloc[0]
        raise PersonaLabError(f"sampling plan: persona id {dup!r} occurs twice; persona ids must be unique")
    both = set(train) & set(heldout)
    if both:
        raise PersonaLabError(
            f"sampling plan: prompt {sorted(both)[0]!r} is both a train and a held-out prompt; split the prompts first"
        )
    if len(set(train)) != len(train) or len(set(heldout)) != len(heldout):
        raise PersonaLabError(
            "sampling plan: a prompt id occurs twice in its pool; prompt ids must be unique"
        )
    a, b, c = scaled_sizes(sizes, len(train), len(heldout))
    per = a + b + c
    split_of = np.array(["train"] * a + ["test_seen"] * b + ["test_unseen"] * c, dtype=object)
    persona_col = np.repeat(np.asarray(personas, dtype=object), per)
    prompt_col = np.empty(len(personas) * per, dtype=object)
    for i, pid in enumerate(personas):
        rng = persona_rng(seed, pid)
        seen = rng.choice(len(train), size=a + b, replace=False) if a + b else np.empty(0, dtype=int)
        unseen = rng.choice(len(heldout), size=c, replace=False) if c else np.empty(0, dtype=int)
        prompt_col[i * per : i * per + a + b] = train[seen]
        prompt_col[i * per + a + b : (i + 1) * per] = heldout[unseen]
    return pd.DataFrame(
        {"persona_id": persona_col, "prompt_id": prompt_col, "split": np.tile(split_of, len(personas))}
    )
