"""The DPO pairs: a TRL-ready table and a Hugging Face ``DatasetDict`` split by entity pair.

Direct Principle Feedback (Castricato et al. 2024, arXiv 2402.07896, Sec. 3) trains with DPO directly on
(revision preferred to original), with the principle in the system message. Each kept row of the dpf table becomes
one example in TRL's conversational preference format:

* ``prompt``: the messages before the unwanted turn, after a system message with the avoid instruction
  (``templates/avoid.txt`` filled with the pair's entities),
* ``chosen``: ``[{"role": "assistant", "content": revision}]``,
* ``rejected``: ``[{"role": "assistant", "content": original}]``,

plus ``dialogue_id``, ``pair_id``, ``domain``, ``grey``, ``pink`` and ``split``. The split comes from the entity
pair (``split_pairs``), so no pair has dialogues in both ``train`` and ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.elephants._templates import avoid_instruction
from persona_lab.errors import PersonaLabError

DPO_COLUMNS = ["prompt", "chosen", "rejected", "dialogue_id", "pair_id", "domain", "grey", "pink", "split"]
SPLITS = ("train", "test")


def dpo_table(dpf: pd.DataFrame) -> pd.DataFrame:
    """The TRL-ready DPO table from the kept rows of the dpf table (module docstring)."""
    kept = dpf[dpf["kept"].astype(bool)] if len(dpf) else dpf
    rows = []
    for row in kept.to_dict("records"):
        system = {"role": "system", "content": avoid_instruction(row["pink"], row["grey"])}
        rows.append(
            {
                "prompt": [system, *json.loads(row["context"])],
                "chosen": [{"role": "assistant", "content": row["revision"]}],
                "rejected": [{"role": "assistant", "content": row["original"]}],
                **{c: row[c] for c in ("dialogue_id", "pair_id", "domain", "grey", "pink", "split")},
            }
        )
    return pd.DataFrame(rows, columns=DPO_COLUMNS)


def check_pair_split(dpo: pd.DataFrame) -> None:
    """Raise when an entity pair has examples in both splits (a leak from train into test)."""
    if not len(dpo):
        return
    splits = dpo.groupby("pair_id")["split"].nunique()
    leaked = splits[splits > 1].index.tolist()
    if leaked:
        raise PersonaLabError(f"DPO pairs: entity pair(s) {leaked[:5]} have examples in both train and test")


def dpo_dataset(dpo: pd.DataFrame) -> Any:
    """A ``datasets.DatasetDict`` with the splits ``train`` and ``test`` (either may be empty).

    Raises:
        PersonaLabError: an entity pair is in both splits.
    """
    import datasets

    check_pair_split(dpo)
    message = datasets.Features({"role": datasets.Value("string"), "content": datasets.Value("string")})
    features = datasets.Features(
        {
            "prompt": datasets.List(message),
            "chosen": datasets.List(message),
            "rejected": datasets.List(message),
            **{c: datasets.Value("string") for c in DPO_COLUMNS[3:]},
        }
    )
    parts = {}
    for split in SPLITS:
        part = dpo[dpo["split"] == split] if len(dpo) else dpo
        records = {c: [_plain(v) for v in part[c]] for c in DPO_COLUMNS}
        parts[split] = datasets.Dataset.from_dict(records, features=features)
    return datasets.DatasetDict(parts)


def _plain(value: Any) -> Any:
    """Lists of message dicts as plain Python (parquet round trips give numpy arrays)."""
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [dict(m) for m in items]
    return value


def save_dataset(dpo: pd.DataFrame, path: str | Path) -> None:
    """Write :func:`dpo_dataset` of ``dpo`` to ``path`` (``DatasetDict.save_to_disk``).

    An empty split is written as one empty shard: ``datasets`` writes none by default, and then
    ``load_from_disk`` fails on the directory."""
    dataset = dpo_dataset(dpo)
    dataset.save_to_disk(str(path), num_shards={k: 1 for k, v in dataset.items() if len(v) == 0})
