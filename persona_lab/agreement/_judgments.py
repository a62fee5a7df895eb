"""``judgments.parquet``: every label of the study, by people (the app, CSV imports) and by model annotators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.agreement._annotations import app_judgments, judgments_frame, read_annotations_csv
from persona_lab.agreement._annotators import JudgeItem, ModelAnnotator, RunFn, judge, judge_request
from persona_lab.agreement._study import CHOICES, answer_order, persona_texts, study_design
from persona_lab.errors import PersonaLabError


def study_items(study: pd.DataFrame, personas: pd.DataFrame, annotator: str) -> list[JudgeItem]:
    """The study's (persona, question) decisions for one annotator, answers in that annotator's order."""
    texts = persona_texts(personas)
    missing = sorted(set(study["persona_id"]) - set(texts.index))
    if missing:
        raise PersonaLabError(
            f"study personas {missing[:5]} are not in the personas table; rerun the personas stage"
        )
    return [
        JudgeItem(
            key=f"{row.persona_id}/{row.prompt_id}",
            persona=str(texts[row.persona_id]),
            prompt=str(row.prompt),
            answers={"revision": str(row.revision), "original": str(row.original)},
            order=answer_order(annotator, row.persona_id, row.prompt_id),
        )
        for row in study.itertuples(index=False)
    ]


def plan_study(
    study: pd.DataFrame, personas: pd.DataFrame, annotators: Sequence[ModelAnnotator]
) -> dict[str, list]:
    """The judgment requests of every model annotator, by backend spec (for the dry run)."""
    out: dict[str, list] = {}
    for a in annotators:
        out.setdefault(a.backend, []).extend(
            judge_request(i, a) for i in study_items(study, personas, a.label)
        )
    return out


def judge_study(
    study: pd.DataFrame, personas: pd.DataFrame, annotators: Sequence[ModelAnnotator], run: RunFn
) -> pd.DataFrame:
    """Every model annotator's judgment of every study pair, as judgment rows (``kind`` model)."""
    rows = []
    for a in annotators:
        items = study_items(study, personas, a.label)
        for row, item in zip(judge(items, a, run, desc=f"judge {a.label}"), items, strict=True):
            persona_id, prompt_id = item.key.split("/", 1)
            rows.append(
                {
                    "annotator": a.label,
                    "kind": "model",
                    "persona_id": persona_id,
                    "prompt_id": prompt_id,
                    **row,
                    "backend": a.backend,
                    "temperature": a.temperature,
                    "sample": a.sample,
                    "source": "model",
                }
            )
    return judgments_frame(rows)


def human_judgments(
    run_dir: str | Path, study: pd.DataFrame, *, csv_paths: Sequence[str | Path] = (), app: bool = True
) -> pd.DataFrame:
    """The people's labels: the annotation app's answers in ``run_dir/annotations`` (if ``app``) and every CSV
    file, validated against the study.

    Raises:
        PersonaLabError: a CSV problem (see :func:`read_annotations_csv`), an app answer outside the study, or
            the same annotator labelling the same item in two sources.
    """
    parts = []
    if app:
        collected = app_judgments(run_dir)
        known = set(zip(study["persona_id"].astype(str), study["prompt_id"].astype(str), strict=True))
        outside = [
            (a, p, q)
            for a, p, q in zip(
                collected["annotator"], collected["persona_id"], collected["prompt_id"], strict=True
            )
            if (p, q) not in known
        ]
        if outside:
            a, p, q = outside[0]
            raise PersonaLabError(
                f"{Path(run_dir) / 'annotations' / (a + '.json')}: persona {p!r}, question {q!r} is not in this run's "
                f"study ({len(outside)} such answers); the study changed since the annotations were collected: "
                "restore its configuration or move the files away"
            )
        parts.append(collected)
    parts += [read_annotations_csv(p, study) for p in csv_paths]
    parts = [p for p in parts if len(p)]
    if not parts:
        return judgments_frame([])
    out = pd.concat(parts, ignore_index=True)
    dup = out.duplicated(["annotator", "persona_id", "prompt_id"], keep=False)
    if dup.any():
        row = out[dup].iloc[0]
        sources = sorted(set(out.loc[dup, "source"]))
        raise PersonaLabError(
            f"annotator {row['annotator']!r} labelled persona {row['persona_id']!r}, question {row['prompt_id']!r} "
            f"in more than one source ({', '.join(sources)}); keep each label in one place"
        )
    bad = ~out["choice"].isin(CHOICES)
    if bad.any():  # pragma: no cover - both readers validate their labels
        raise PersonaLabError(f"human label {out.loc[bad, 'choice'].iloc[0]!r} is not one of {CHOICES}")
    return out


@dataclass(frozen=True)
class RunStudy:
    """A run's annotation study, read from its directory (what the annotation app and the notebook need).

    Attributes:
        run_dir: the run directory.
        config: its resolved configuration (``config.toml``).
        study: the study's pairs (:func:`persona_lab.agreement.study_design` under the run's configuration).
        personas: the personas table.
    """

    run_dir: Path
    config: Any
    study: pd.DataFrame
    personas: pd.DataFrame


def load_run_study(run_dir: str | Path) -> RunStudy:
    """Read a run directory's configuration and tables and rebuild its study (the same pairs the agreement stage
    judges).

    Raises:
        PersonaLabError: not a run directory (no ``config.toml``), or the personas, prompts or feedback table is
            missing (run those stages first).
    """
    from persona_lab.config import load_config
    from persona_lab.io import read_table

    folder = Path(run_dir)
    if not (folder / "config.toml").is_file():
        raise PersonaLabError(
            f"{folder}: not a persona-lab run directory (no config.toml); run `persona-lab run feedback --run-dir "
            f"{folder}` first"
        )
    config = load_config(path=folder / "config.toml")
    tables = {}
    for name in ("personas", "prompts", "feedback"):
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise PersonaLabError(f"{path}: missing; run `persona-lab run {name} --run-dir {folder}` first")
        tables[name] = read_table(path, table=name)
    ag = config.agreement
    study = study_design(
        tables["feedback"],
        tables["prompts"],
        n_personas=ag.n_personas,
        n_questions=ag.n_questions,
        seed=config.seed,
        split=ag.split,
    )
    return RunStudy(folder, config, study, tables["personas"])
