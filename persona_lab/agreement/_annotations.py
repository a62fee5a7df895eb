"""Human annotations: the annotation app's store in the run directory, and CSV import with validation.

The app (``notebooks/04_annotate.py``, PERSONA Sec. 4 and App. D) gives each person one persona and asks, one
question at a time, which of two answers that persona would prefer and why. Everything it learns is kept in
``runs/<name>/annotations/<annotator>.json``, one file per annotator, rewritten atomically (temporary file, then
rename) on every answer under one lock for the whole directory, so several people can answer at once, a closed
browser loses nothing and reopening resumes at the first unanswered question. The file holds the persona
assigned, the questions in the order shown, the position of each answer and every answer as given.

Annotations collected elsewhere (a Prolific study, a spreadsheet) come in as CSV, one row per label:
``annotator, persona_id, prompt_id, choice`` and optionally ``rationale`` and ``order_shown``
(Prolific's ``PROLIFIC_PID`` or ``participant_id`` are read as ``annotator``). Every problem is reported with its
row (1 = the first row after the header).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from persona_lab.agreement._study import CHOICES, answer_order
from persona_lab.errors import PersonaLabError
from persona_lab.io import write_text

ANNOTATIONS_DIR = "annotations"
"""Directory of the app's files inside the run directory."""

JUDGMENT_COLUMNS = (
    "annotator",
    "kind",
    "persona_id",
    "prompt_id",
    "choice",
    "order_shown",
    "rationale",
    "failure",
    "raw",
    "backend",
    "model",
    "temperature",
    "sample",
    "source",
)
"""Columns of ``judgments.parquet``: who judged (a person's id or a model annotator's label), ``kind`` (human or
model), the pair, the label (None on failure), ``order_shown`` (``"revision,original"`` = the revision was shown
first, as A), the justification, the failure (``""`` when the judgment is good), the raw answer, and for models the
backend, model, temperature and sample; ``source`` says where the row came from (``app``, ``csv:<file>``,
``model``)."""

CSV_REQUIRED = ("annotator", "persona_id", "prompt_id", "choice")
"""Columns an annotation CSV must have."""
CSV_ALIASES: dict[str, str] = {
    "PROLIFIC_PID": "annotator",
    "participant_id": "annotator",
    "participant": "annotator",
    "justification": "rationale",
}
"""Column names read as another (Prolific-style exports)."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MAX_LISTED_PROBLEMS = 10


def annotator_instructions(n_questions: int) -> str:
    """What the annotation app tells a person before the first question (PERSONA App. D: role-play this person,
    choose the answer they would prefer, justify it), as markdown (``annotator_instructions.md``)."""
    from persona_lab.templates import load_template

    return load_template("persona_lab.agreement", "annotator_instructions.md").replace(
        "{n_questions}", str(n_questions)
    )


def annotator_id(text: str) -> str:
    """Check an annotator id typed into the app: 1-64 letters, digits, ``_ . @ -``, starting with a letter or
    digit (it becomes a file name).

    Raises:
        PersonaLabError: anything else, with what is allowed.
    """
    value = str(text).strip()
    if not _ID.match(value):
        raise PersonaLabError(
            f"annotator id {value[:70]!r}: use 1 to 64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or a digit (e.g. your Prolific id)"
        )
    return value


# -- the app's store ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """One annotator's assignment and answers, as stored in ``annotations/<annotator>.json``.

    Attributes:
        annotator: the annotator's id.
        persona_id: the persona this annotator role-plays.
        questions: prompt ids in the order they are asked.
        orders: per question, the two labels in the order their answers are shown (first = "Answer 1").
        answers: the answers given so far, in order (``prompt_id, choice, order_shown, rationale,
            answered_at``).
    """

    annotator: str
    persona_id: str
    questions: tuple[str, ...]
    orders: tuple[tuple[str, str], ...]
    answers: tuple[Mapping[str, str], ...]

    @property
    def answered(self) -> frozenset[str]:
        """Prompt ids already answered."""
        return frozenset(a["prompt_id"] for a in self.answers)

    @property
    def next_index(self) -> int | None:
        """Position of the first unanswered question, or ``None`` when all are answered."""
        done = self.answered
        return next((i for i, q in enumerate(self.questions) if q not in done), None)

    def to_json(self) -> dict:
        return {
            "annotator": self.annotator,
            "persona_id": self.persona_id,
            "questions": [
                {"prompt_id": q, "order": list(o)} for q, o in zip(self.questions, self.orders, strict=True)
            ],
            "answers": [dict(a) for a in self.answers],
        }

    @classmethod
    def from_json(cls, data: dict, *, source: Path) -> Assignment:
        try:
            return cls(
                annotator=str(data["annotator"]),
                persona_id=str(data["persona_id"]),
                questions=tuple(str(q["prompt_id"]) for q in data["questions"]),
                orders=tuple((str(q["order"][0]), str(q["order"][1])) for q in data["questions"]),
                answers=tuple({k: str(v) for k, v in a.items()} for a in data["answers"]),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise PersonaLabError(
                f"{source}: not an annotation file of this app (missing {exc}); move it out of the annotations "
                "directory"
            ) from exc


def _dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / ANNOTATIONS_DIR


@contextlib.contextmanager
def _locked(run_dir: str | Path) -> Iterator[Path]:
    """Hold the annotations directory's lock (every writer takes it: one writer at a time)."""
    folder = _dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> Assignment:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersonaLabError(
            f"{path}: unreadable annotation file ({exc}); move it out of the directory"
        ) from exc
    return Assignment.from_json(data, source=path)


def _write(folder: Path, assignment: Assignment) -> None:
    write_text(folder / f"{assignment.annotator}.json", json.dumps(assignment.to_json(), indent=1) + "\n")


def load_assignments(run_dir: str | Path) -> list[Assignment]:
    """Every annotator's assignment in the run directory (sorted by annotator id)."""
    folder = _dir(run_dir)
    if not folder.is_dir():
        return []
    return [_read(p) for p in sorted(folder.glob("*.json"))]


def open_assignment(
    run_dir: str | Path, annotator: str, study: pd.DataFrame, *, raters_per_persona: int = 4
) -> Assignment:
    """The annotator's assignment: the stored one, or a new assignment written to disk before it is returned.

    A new annotator gets the study persona with the fewest annotators so far (ties: the study's persona order),
    so ``raters_per_persona`` people per persona fill up evenly; the persona's questions in the study's order;
    for each question a seeded random order of the two answers.

    Raises:
        PersonaLabError: a bad id, or an empty study (no usable feedback pair yet).
    """
    annotator = annotator_id(annotator)
    if study.empty:
        raise PersonaLabError(
            "the study has no questions: the feedback stage has written no usable pair yet; run it first"
        )
    with _locked(run_dir) as folder:
        path = folder / f"{annotator}.json"
        if path.exists():
            return _read(path)
        counts = {p: 0 for p in pd.unique(study["persona_id"])}
        for other in load_assignments(run_dir):
            if other.persona_id in counts:
                counts[other.persona_id] += 1
        open_slots = [p for p, n in counts.items() if n < raters_per_persona] or list(counts)
        persona = min(open_slots, key=lambda p: counts[p])
        rows = study[study["persona_id"] == persona].sort_values("position")
        questions = tuple(str(q) for q in rows["prompt_id"])
        assignment = Assignment(
            annotator=annotator,
            persona_id=str(persona),
            questions=questions,
            orders=tuple(answer_order(annotator, persona, q) for q in questions),
            answers=(),
        )
        _write(folder, assignment)
        return assignment


def save_answer(
    run_dir: str | Path, annotator: str, prompt_id: str, choice: str, rationale: str = ""
) -> Assignment:
    """Record one answer as given and return the updated assignment (the file is rewritten atomically).

    Args:
        run_dir: the run directory.
        annotator: the annotator's id (its assignment must exist: :func:`open_assignment`).
        prompt_id: the question answered; one of the assignment's questions not yet answered.
        choice: ``"revision"`` or ``"original"`` (the app maps "Answer 1/2" through the order shown).
        rationale: the annotator's justification, kept verbatim.

    Raises:
        PersonaLabError: no assignment, a question not in the assignment or already answered, a label outside the two.
    """
    annotator = annotator_id(annotator)
    if choice not in CHOICES:
        raise PersonaLabError(f"answer {choice!r}: expected one of {', '.join(CHOICES)}")
    with _locked(run_dir) as folder:
        path = folder / f"{annotator}.json"
        if not path.exists():
            raise PersonaLabError(f"annotator {annotator!r} has no assignment in {folder}; open one first")
        assignment = _read(path)
        if prompt_id not in assignment.questions:
            raise PersonaLabError(
                f"question {prompt_id!r} is not one of annotator {annotator!r}'s questions; reload the page"
            )
        if prompt_id in assignment.answered:
            raise PersonaLabError(
                f"annotator {annotator!r} already answered question {prompt_id!r}; reload the page for the next one"
            )
        order = assignment.orders[assignment.questions.index(prompt_id)]
        answer = {
            "prompt_id": prompt_id,
            "choice": choice,
            "order_shown": ",".join(order),
            "rationale": rationale,
            "answered_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        updated = Assignment(
            assignment.annotator,
            assignment.persona_id,
            assignment.questions,
            assignment.orders,
            (*assignment.answers, answer),
        )
        _write(folder, updated)
        return updated


def app_judgments(run_dir: str | Path) -> pd.DataFrame:
    """Every answer given in the annotation app, as judgment rows (:data:`JUDGMENT_COLUMNS`)."""
    rows = [
        {
            "annotator": s.annotator,
            "kind": "human",
            "persona_id": s.persona_id,
            "prompt_id": a["prompt_id"],
            "choice": a["choice"],
            "order_shown": a.get("order_shown", ""),
            "rationale": a.get("rationale", ""),
            "failure": "",
            "raw": a.get("rationale", ""),
            "source": "app",
        }
        for s in load_assignments(run_dir)
        for a in s.answers
    ]
    return judgments_frame(rows)


def judgments_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a judgments table with every column of :data:`JUDGMENT_COLUMNS` (missing ones empty)."""
    df = pd.DataFrame(rows, columns=list(JUDGMENT_COLUMNS))
    for col in ("order_shown", "rationale", "failure", "raw", "backend", "model", "source"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    df["temperature"] = pd.to_numeric(df["temperature"], errors="coerce").astype(float)
    df["sample"] = pd.to_numeric(df["sample"], errors="coerce").astype("Int64")
    for col in ("annotator", "kind", "persona_id", "prompt_id"):
        df[col] = df[col].astype(str) if len(df) else df[col].astype(object)
    df["choice"] = df["choice"].astype(object).where(df["choice"].notna(), None)
    return df


# -- CSV import ----------------------------------------------------------------------------------------------------
def read_annotations_csv(
    path: str | Path, study: pd.DataFrame, *, columns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read human annotations from a CSV export and validate them against the study.

    Args:
        path: the CSV file (UTF-8, header row).
        study: the study's (persona, question) pairs (:func:`study_design`, or any frame with ``persona_id`` and
            ``prompt_id``): every row must name one of them.
        columns: extra renames, file column -> our column (added to :data:`CSV_ALIASES`).

    Returns:
        Judgment rows (:data:`JUDGMENT_COLUMNS`), ``kind`` human, ``source`` ``csv:<file name>``.

    Raises:
        PersonaLabError: unreadable file, missing columns, and per row: empty annotator, unknown persona id,
            a question that is not that persona's in the study, a label outside ``revision``/``original``, the
            same annotator labelling the same (persona, question) twice. The message lists the first
            problems, each with its row number.
    """
    p = Path(path)
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PersonaLabError(f"{p}: cannot read it as a CSV file ({exc}); export it as UTF-8 CSV") from exc
    renames = {**CSV_ALIASES, **(columns or {})}
    raw = raw.rename(
        columns={c: renames[c] for c in raw.columns if c in renames and renames[c] not in raw.columns}
    )
    missing = [c for c in CSV_REQUIRED if c not in raw.columns]
    if missing:
        raise PersonaLabError(
            f"{p}: missing column(s) {missing}; an annotation CSV needs {', '.join(CSV_REQUIRED)} "
            f"(rationale optional; found {', '.join(map(str, raw.columns))})"
        )
    personas = {str(x) for x in study["persona_id"]}
    items = {(str(a), str(b)) for a, b in zip(study["persona_id"], study["prompt_id"], strict=True)}
    problems: list[str] = []
    seen: dict[tuple[str, str, str], int] = {}
    rows = []
    for number, rec in enumerate(raw.to_dict("records"), start=1):
        annotator = str(rec["annotator"]).strip()
        persona, prompt = str(rec["persona_id"]).strip(), str(rec["prompt_id"]).strip()
        choice = str(rec["choice"]).strip().casefold()
        where = f"row {number}"
        if not annotator:
            problems.append(f"{where}: empty annotator id")
            continue
        if persona not in personas:
            problems.append(f"{where}: persona_id {persona!r} is not a persona of this study")
            continue
        if (persona, prompt) not in items:
            problems.append(
                f"{where}: prompt_id {prompt!r} is not a question of persona {persona!r} in this study"
            )
            continue
        if choice not in CHOICES:
            problems.append(f"{where}: choice {rec['choice']!r} is not one of {', '.join(CHOICES)}")
            continue
        key = (annotator, persona, prompt)
        if key in seen:
            problems.append(
                f"{where}: annotator {annotator!r} already labelled persona {persona!r}, question {prompt!r} "
                f"in row {seen[key]}"
            )
            continue
        seen[key] = number
        rationale = str(rec.get("rationale", ""))
        rows.append(
            {
                "annotator": annotator,
                "kind": "human",
                "persona_id": persona,
                "prompt_id": prompt,
                "choice": choice,
                "order_shown": str(rec.get("order_shown", "")),
                "rationale": rationale,
                "failure": "",
                "raw": rationale,
                "source": f"csv:{p.name}",
            }
        )
    if problems:
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = (
            f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)"
            if len(problems) > MAX_LISTED_PROBLEMS
            else ""
        )
        raise PersonaLabError(
            f"{p}: {len(problems)} bad row(s): {listed}{more}; fix the file and import again"
        )
    return judgments_frame(rows)
