"""``mentions``: whole words, case folding, possessives and plurals, aliases, URLs (hand-written cases)."""

from __future__ import annotations

import pytest

from persona_lab.elephants import find_mentions, mentions, same_entity


@pytest.mark.parametrize(
    ("text", "entity", "aliases", "expected"),
    [
        # case folding
        ("I bought ADIDAS trainers", "Adidas", (), True),
        ("adidas is cheaper", "Adidas", (), True),
        # possessives (plain and typographic apostrophe) and plurals
        ("Adidas's new line is out", "Adidas", (), True),
        ("Adidas' new line is out", "Adidas", (), True),
        ("Adidas\u2019s new line is out", "Adidas", (), True),
        ("two Fords and a Honda", "Ford", (), True),
        ("the Lexuses in the lot", "Lexus", (), True),
        # not inside other words
        ("Nikesh runs every morning", "Nike", (), False),
        ("a snike is not a brand", "Nike", (), False),
        ("model Nike2 is fake", "Nike", (), False),
        ("Fordham University", "Ford", (), False),
        # punctuation and underscores are boundaries
        ("(Nike) and #nike", "Nike", (), True),
        ("tag: nike_air", "Nike", (), True),
        # URLs: a URL naming the entity as a word mentions it; the word rule still holds inside a URL
        ("see https://www.adidas.com/us for sizes", "Adidas", (), True),
        ("order at nike.com today", "Nike", (), True),
        ("read https://nikesh.dev/blog", "Nike", (), False),
        ("my site is https://example.org/running", "Nike", (), False),
        # multi-word and hyphenated names: spaces and hyphens interchangeable or left out
        ("a cold Coca Cola", "Coca-Cola", (), True),
        ("#CocaCola", "Coca-Cola", (), True),
        ("Real Madrid won", "Real Madrid", (), True),
        ("a real win in Madrid", "Real Madrid", (), False),
        # accents, apostrophes and full stops inside a name
        ("Nestle makes it", "Nestlé", (), True),
        ("lunch at McDonalds", "McDonald's", (), True),
        ("a Dr Pepper please", "Dr. Pepper", (), True),
        # aliases
        ("I wear Air Jordans", "Nike", ("Air Jordan",), True),
        ("my new VW", "Volkswagen", ("VW",), True),
        ("VWX is a ticker", "Volkswagen", ("VW",), False),
        ("an x-ray", "Xerox", ("X",), False),  # a one-letter alias is ignored
        # nothing to find
        ("", "Nike", (), False),
        (None, "Nike", (), False),
    ],
)
def test_mentions_hand_written_cases(text, entity, aliases, expected):
    assert mentions(text, entity, aliases) is expected


def test_find_mentions_returns_the_spans_of_the_original_text():
    text = "Adidas\u2019s shoes beat NIKE, not Nikesh; see nike.com"
    found = find_mentions(text, "Nike", ["Adidas"])
    # 'Adidas’s' 0-8 (the typographic apostrophe is one character), ' shoes beat ' 8-20, 'NIKE' 20-24,
    # ', not Nikesh; see ' 24-42, 'nike' 42-46
    assert [(m.start, m.end, m.matched) for m in found] == [
        (0, 8, "Adidas\u2019s"),
        (20, 24, "NIKE"),
        (42, 46, "nike"),
    ]


def test_find_mentions_spans_survive_characters_that_fold_to_two():
    # 'ß' folds to 'ss': the span still indexes the original text
    text = "Straße then Nike"
    assert [(m.start, m.end) for m in find_mentions(text, "Nike")] == [(12, 16)]


def test_same_entity_catches_names_that_contain_each_other_and_aliases():
    assert same_entity("Nike", "Nike Air")
    assert not same_entity("Nike", "Adidas")
    assert not same_entity("Coca-Cola", "Coke")
    assert same_entity("Coca-Cola", "Coke", ["Coke"])
