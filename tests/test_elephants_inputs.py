"""The embedded domains, and a user's domains or pairs file: one clear error for a missing column or empty entity."""

from __future__ import annotations

import json

import pytest

from persona_lab.config import load_config
from persona_lab.elephants import EMBEDDED_DOMAINS, load_domains, load_pairs
from persona_lab.errors import PersonaLabError
from persona_lab.stages import STAGES


def test_the_embedded_domains_are_29_distinct_everyday_domains_with_descriptions():
    domains = load_domains()
    assert len(domains) == 29  # as many as the paper keeps after manual filtering
    assert domains["domain"].str.casefold().is_unique
    assert domains["domain"].head(5).tolist() == ["travel", "sports", "technology", "health", "careers"]
    assert (domains["description"].str.len() > 20).all()
    assert EMBEDDED_DOMAINS.name == "elephant_domains.json"


def test_a_domains_csv_without_the_domain_column_is_one_clear_error(tmp_path):
    path = tmp_path / "domains.csv"
    path.write_text("topic,description\ntravel,trips\n")
    with pytest.raises(PersonaLabError) as err:
        load_domains(path)
    assert str(err.value) == (
        f"{path}: the domains file lacks column(s) ['domain']; expected columns ['domain'] "
        "(found ['description', 'topic'])"
    )


def test_a_domains_file_with_an_empty_domain_names_the_row(tmp_path):
    path = tmp_path / "domains.json"
    path.write_text(json.dumps([{"domain": "travel"}, {"domain": "  "}]))
    with pytest.raises(PersonaLabError, match=r"row 2 has an empty 'domain'"):
        load_domains(path)


def test_a_domains_file_that_repeats_a_domain_names_the_row(tmp_path):
    path = tmp_path / "domains.jsonl"
    path.write_text('{"domain": "Travel"}\n{"domain": "sports"}\n{"domain": "travel"}\n')
    with pytest.raises(PersonaLabError, match=r"row 3 repeats the domain 'travel'"):
        load_domains(path)


def test_a_pairs_csv_reads_aliases_separated_by_semicolons(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(
        "domain,grey,pink,pink_aliases\nsports,Nike,Adidas,adidas AG; Three Stripes\ncars,Toyota,Honda,\n"
    )
    pairs = load_pairs(path)
    assert pairs[["domain", "grey", "pink"]].values.tolist() == [
        ["sports", "Nike", "Adidas"],
        ["cars", "Toyota", "Honda"],
    ]
    assert pairs["pink_aliases"].tolist() == [["adidas AG", "Three Stripes"], []]
    assert pairs["grey_aliases"].tolist() == [[], []]


def test_a_pairs_json_reads_alias_lists(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(
        json.dumps([{"domain": "drinks", "grey": "Pepsi", "pink": "Coca-Cola", "pink_aliases": ["Coke"]}])
    )
    assert load_pairs(path)["pink_aliases"].tolist() == [["Coke"]]


def test_a_pairs_file_without_the_pink_column_is_one_clear_error(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("domain,grey\nsports,Nike\n")
    with pytest.raises(PersonaLabError) as err:
        load_pairs(path)
    assert str(err.value) == (
        f"{path}: the pairs file lacks column(s) ['pink']; expected columns ['domain', 'grey', 'pink'] "
        "(found ['domain', 'grey'])"
    )


def test_a_pairs_file_with_an_empty_entity_names_the_row_and_column(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("domain,grey,pink\nsports,Nike,Adidas\ncars,Toyota,\n")
    with pytest.raises(PersonaLabError) as err:
        load_pairs(path)
    assert str(err.value) == (
        f"{path}: row 2 has an empty 'pink'; every row needs a non-empty 'pink' (fill it in or delete the row)"
    )


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(PersonaLabError, match="pairs file not found"):
        load_pairs(tmp_path / "missing.csv")
    bad = tmp_path / "pairs.json"
    bad.write_text("{not json")
    with pytest.raises(PersonaLabError, match="not valid JSON"):
        load_pairs(bad)
    aliases = tmp_path / "aliases.json"
    aliases.write_text(json.dumps([{"domain": "d", "grey": "A1", "pink": "B1", "grey_aliases": 3}]))
    with pytest.raises(PersonaLabError, match=r"row 1, column 'grey_aliases': expected a list of names"):
        load_pairs(aliases)


def test_the_stage_check_reports_a_bad_pairs_file_before_anything_runs(tmp_path):
    stage = next(s for s in STAGES if s.name == "elephants")
    bad = tmp_path / "pairs.csv"
    bad.write_text("domain,grey,pink\nsports,,Adidas\n")
    with pytest.raises(PersonaLabError, match=r"row 1 has an empty 'grey'"):
        stage.check(load_config("tiny", elephants={"pairs": str(bad)}))
    good = tmp_path / "good.csv"
    good.write_text("domain,grey,pink\nsports,Nike,Adidas\n")
    cfg = load_config("tiny", elephants={"pairs": str(good), "judge_backend": "openai:gpt-4o"})
    assert list(stage.check(cfg)) == ["openai:gpt-4o"]


def test_the_dry_run_plans_every_step_of_the_tiny_preset(tmp_path):
    from persona_lab.pipeline import estimate_run

    cfg = load_config("tiny", name="dry", runs_dir=tmp_path)
    table = estimate_run(cfg, ["elephants"]).set_index("stage")
    # upper bounds of the tiny preset: 2 domains x 1 pair call; 4 pairs x 1 plan; 4 dialogues; 4 x 3 judge calls on
    # the cut; 4 critiques + 4 revisions; 4 revision judges; 2 held-out dialogues x 2 conditions, each judged
    assert table.loc["elephants", "calls"] == 2 + 4 + 4 + 12 + 8 + 4 + 4 + 4
    assert not (tmp_path / "dry").exists()
