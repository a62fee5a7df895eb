"""Exports of the feedback pairs (a Hugging Face ``DatasetDict``, a TRL DPO table) and the released PERSONA data.

* ``hf/feedback``: a ``datasets.DatasetDict`` with splits ``train``, ``test_seen``, ``test_unseen`` holding the
  pairs (rows whose ``failure`` is empty), with the persona text.
* ``dpo.parquet``: the train pairs in TRL's conversational preference format: ``prompt`` is a list of messages
  (the persona as the system message, then the user prompt), ``chosen`` and ``rejected`` are one assistant
  message each (``[{"role": "assistant", "content": ...}]``), so ``trl.DPOTrainer`` takes the table as it is.
* :func:`load_release` reads the released PERSONA feedback data (Castricato et al. 2024; the gated Hugging Face
  dataset ``SynthLabsAI/PERSONA``, columns ``persona, instruction, original, critique, data, question type``)
  into the same tables the feedback stage writes, so every analysis and figure also runs on the release.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from persona_lab.errors import PersonaLabError
from persona_lab.feedback._generate import FEEDBACK_COLUMNS
from persona_lab.feedback._plan import SPLITS

HF_COLUMNS = (
    "persona_id",
    "prompt_id",
    "persona",
    "prompt",
    "original",
    "critique",
    "revision",
    "chosen",
    "rejected",
    "verification",
    "order_shown",
    "original_tokens",
    "revision_tokens",
)
"""Columns of every split of the Hugging Face export."""

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
DPO_SCHEMA = pa.schema([("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES)])
"""Arrow schema of ``dpo.parquet``: TRL's conversational preference columns."""

RELEASE_COLUMNS = ("persona", "instruction", "original", "critique", "data", "question type")
"""Columns of the released PERSONA feedback data (``persona_hf_dataset_info.json``)."""

RELEASE_SPLITS: dict[str, str] = {
    "train": "train",
    "training": "train",
    "test seen": "test_seen",
    "seen": "test_seen",
    "seen prompts": "test_seen",
    "test seen prompts": "test_seen",
    "test unseen": "test_unseen",
    "unseen": "test_unseen",
    "unseen prompts": "test_unseen",
    "test unseen prompts": "test_unseen",
    "heldout": "test_unseen",
    "held out": "test_unseen",
}
"""Accepted ``question type`` values (case, ``_`` and ``-`` ignored) and the split each one means. The
schema file does not list the release's labels, so the spellings of the paper's three groups are accepted."""


def pairs_only(feedback: pd.DataFrame) -> pd.DataFrame:
    """The rows that are preference pairs (no failure, chosen and rejected set)."""
    ok = (feedback["failure"].astype(str) == "") & feedback["chosen"].notna() & feedback["rejected"].notna()
    return feedback[ok]


def _with_persona(pairs: pd.DataFrame, personas: pd.DataFrame) -> pd.DataFrame:
    text = dict(zip(personas["persona_id"].astype(str), personas["text"].astype(str), strict=True))
    out = pairs.copy()
    out["persona"] = out["persona_id"].astype(str).map(text)
    if out["persona"].isna().any():
        missing = out.loc[out["persona"].isna(), "persona_id"].iloc[0]
        raise PersonaLabError(f"feedback pairs: persona {missing!r} is not in the personas table")
    return out


def hf_features() -> Any:
    """The ``datasets.Features`` of every split (strings, token counts as int64)."""
    import datasets

    return datasets.Features(
        {c: datasets.Value("int64" if c.endswith("_tokens") else "string") for c in HF_COLUMNS}
    )


def hf_dataset(feedback: pd.DataFrame, personas: pd.DataFrame) -> Any:
    """The pairs as a ``datasets.DatasetDict`` with splits ``train``, ``test_seen``, ``test_unseen`` (every split
    present, possibly empty, with the same features)."""
    import datasets

    pairs = _with_persona(pairs_only(feedback), personas)
    features = hf_features()
    splits = {}
    for split in SPLITS:
        part = pairs.loc[pairs["split"] == split, list(HF_COLUMNS)].reset_index(drop=True)
        records = {
            c: [None if pd.isna(v) else (int(v) if c.endswith("_tokens") else str(v)) for v in part[c]]
            for c in HF_COLUMNS
        }
        splits[split] = datasets.Dataset.from_dict(records, features=features)
    return datasets.DatasetDict(splits)


def hf_writer(feedback: pd.DataFrame, personas: pd.DataFrame) -> Callable[[Path], None]:
    """A ``StageResult.files`` writer saving :func:`hf_dataset` with ``save_to_disk``."""
    dataset = hf_dataset(feedback, personas)

    def write(tmp: Path) -> None:
        dataset.save_to_disk(str(tmp))

    return write


def dpo_table(
    feedback: pd.DataFrame, personas: pd.DataFrame, *, splits: tuple[str, ...] = ("train",)
) -> pa.Table:
    """The pairs of ``splits`` (default the train split) in TRL's conversational preference format
    (:data:`DPO_SCHEMA`): the persona as system message, the prompt as user message; chosen = revision,
    rejected = original, each one assistant message."""
    pairs = _with_persona(pairs_only(feedback), personas)
    pairs = pairs[pairs["split"].isin(splits)]
    prompt = [
        [{"role": "system", "content": str(p)}, {"role": "user", "content": str(q)}]
        for p, q in zip(pairs["persona"], pairs["prompt"], strict=True)
    ]
    chosen = [[{"role": "assistant", "content": str(c)}] for c in pairs["chosen"]]
    rejected = [[{"role": "assistant", "content": str(r)}] for r in pairs["rejected"]]
    table = pa.Table.from_pydict(
        {"prompt": prompt, "chosen": chosen, "rejected": rejected}, schema=DPO_SCHEMA
    )
    meta = {b"persona_lab.table": b"dpo"}
    return table.replace_schema_metadata(meta)


def dpo_writer(feedback: pd.DataFrame, personas: pd.DataFrame) -> Callable[[Path], None]:
    """A ``StageResult.files`` writer for ``dpo.parquet``."""
    table = dpo_table(feedback, personas)

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp)

    return write


# -- the released dataset ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    """The released PERSONA feedback data as this project's tables.

    Attributes:
        feedback: the feedback table (:data:`persona_lab.feedback.FEEDBACK_COLUMNS`; ``revision`` = ``chosen`` =
            the release's ``data``, ``rejected`` = ``original``; no verification).
        personas: one row per distinct persona text (``persona_id`` ``p00001``... in first-seen order, every
            persona in split ``train``: the release holds the train personas), parsed into attribute columns.
        prompts: one row per distinct instruction (``prompt_id`` ``r00001``...), ``kept`` True, ``split``
            ``train`` for prompts of train/test_seen pairs and ``heldout`` for test_unseen ones.
        files: the parquet files read.
    """

    feedback: pd.DataFrame
    personas: pd.DataFrame
    prompts: pd.DataFrame
    files: tuple[Path, ...]


def _release_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            raise PersonaLabError(
                f"{path}: no .parquet file in this directory; pass the release's data/ directory"
            )
        return files
    if not path.exists():
        raise PersonaLabError(
            f"{path}: no such file; pass a parquet file of the PERSONA release or its directory"
        )
    return [path]


def _split_of(value: object) -> str | None:
    key = re.sub(r"[\s_\-]+", " ", str(value)).strip().lower()
    return RELEASE_SPLITS.get(key)


def _read_release_file(path: Path) -> pd.DataFrame:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PersonaLabError(f"{path}: not a readable parquet file ({exc})") from exc
    missing = [c for c in RELEASE_COLUMNS if c not in schema.names]
    if missing:
        raise PersonaLabError(
            f"{path}: the PERSONA release needs column(s) {missing}; found {schema.names}. Expected the columns "
            f"{list(RELEASE_COLUMNS)} of SynthLabsAI/PERSONA"
        )
    return pq.read_table(path, columns=list(RELEASE_COLUMNS)).to_pandas()


def load_release(path: str | Path, *, count_tokens: bool = True) -> Release:
    """Read the released PERSONA feedback data (one parquet file, or a directory of them).

    Args:
        path: a parquet file of the release or a directory holding them (``data/train-0000x-of-00002.parquet``).
        count_tokens: fill ``original_tokens`` / ``revision_tokens`` (``persona_lab.llm.estimate_tokens``).

    Raises:
        PersonaLabError: no such file, not parquet, a missing column (named, with the expected ones), an empty
            text where one is needed, an unknown ``question type`` (names the file, the row and the accepted
            values) or a persona that does not parse (PERSONA's ``key: value`` format).
    """
    from persona_lab.llm import estimate_tokens
    from persona_lab.personas import parse_persona, table_from_personas

    files = _release_files(Path(path))
    frames = []
    for file in files:
        df = _read_release_file(file)
        splits = df["question type"].map(_split_of)
        if splits.isna().any():
            row = int(splits.isna().to_numpy().nonzero()[0][0])
            raise PersonaLabError(
                f"{file}: row {row}: unknown question type {df['question type'].iloc[row]!r}; expected one of "
                f"{sorted(RELEASE_SPLITS)} (train, test seen, test unseen)"
            )
        for column in ("persona", "instruction", "original", "data"):
            empty = df[column].isna() | (df[column].astype(str).str.strip() == "")
            if empty.any():
                row = int(empty.to_numpy().nonzero()[0][0])
                raise PersonaLabError(f"{file}: row {row}: column {column!r} is empty; every pair needs it")
        df["split"] = splits
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    persona_texts = list(dict.fromkeys(data["persona"].astype(str)))
    parsed = [
        parse_persona(t, source=f"{files[0].parent}: persona {i + 1}") for i, t in enumerate(persona_texts)
    ]
    personas = table_from_personas(parsed, n_train=len(parsed), source=str(path))
    persona_id = dict(zip(persona_texts, personas["persona_id"].astype(str), strict=True))
    instructions = list(dict.fromkeys(data["instruction"].astype(str)))
    prompt_id = {t: f"r{i + 1:05d}" for i, t in enumerate(instructions)}
    unseen = set(data.loc[data["split"] == "test_unseen", "instruction"].astype(str))
    prompts = pd.DataFrame(
        {
            "prompt_id": [prompt_id[t] for t in instructions],
            "text": instructions,
            "kept": True,
            "split": ["heldout" if t in unseen else "train" for t in instructions],
            "source": "persona_release",
        }
    )
    n = len(data)
    original = data["original"].astype(str).tolist()
    revision = data["data"].astype(str).tolist()
    feedback = pd.DataFrame(
        {
            "persona_id": data["persona"].astype(str).map(persona_id),
            "prompt_id": data["instruction"].astype(str).map(prompt_id),
            "split": data["split"],
            "prompt": data["instruction"].astype(str),
            "original": original,
            "critique": data["critique"].where(data["critique"].notna(), None),
            "revision": revision,
            "chosen": revision,
            "rejected": original,
            "failure": [""] * n,
            "order_shown": [None] * n,
            "verification_choice": [None] * n,
            "verification": [None] * n,
            "verification_failure": [""] * n,
            "original_tokens": pd.array(
                [estimate_tokens(t) for t in original] if count_tokens else [None] * n, dtype="Int64"
            ),
            "revision_tokens": pd.array(
                [estimate_tokens(t) for t in revision] if count_tokens else [None] * n, dtype="Int64"
            ),
            "critique_raw": data["critique"].fillna("").astype(str),
            "revision_raw": revision,
            "provenance": ['{"source": "persona_release"}'] * n,
        },
        columns=FEEDBACK_COLUMNS,
    )
    return Release(feedback=feedback, personas=personas, prompts=prompts, files=tuple(files))
