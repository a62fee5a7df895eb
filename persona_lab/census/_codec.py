"""The JSON document of the embedded census model (``data/census_model.json``): encoder and decoder.

The document holds parameters only (category labels, probabilities rounded to 7 decimals, age and income
tables), never a record. Sparse rows are ``[[category index, probability], ...]``; keys of conditional rows
are the parent category indices joined by commas. Decoding checks every probability vector (non-negative,
summing to 1 within rounding) and raises ``ValueError`` on any inconsistency, which
:meth:`~persona_lab.census.CensusModel.load` turns into an error naming the file and the refit command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from persona_lab.census._network import NodeTable, TreeNetwork

if TYPE_CHECKING:
    from persona_lab.census._model import CensusModel

MODEL_FORMAT = "persona_lab.census_model"
MODEL_FORMAT_VERSION = 1

_ROUND = 7
"""Decimal places kept for stored probabilities (renormalized on load)."""


def encode(model: CensusModel) -> dict[str, Any]:
    """JSON-ready parameters of ``model``: category labels, probabilities rounded to 7 decimals, no records."""
    net = model.network
    nodes = []
    for node in net.nodes:
        nodes.append(
            {
                "name": node.name,
                "parent": node.parent,
                "edge_score_nats": round(net.edge_scores.get(node.name, 0.0), 6),
                "categories": list(node.categories),
                "pooled_parent_categories": sorted(node.pooled_parents),
                "marginal": _plist(node.marginal),
                "by_root": {str(a): _sparse(p) for a, p in sorted(node.by_root.items())},
                "by_parent": {str(b): _sparse(p) for b, p in sorted(node.by_parent.items())},
                "rows": {f"{a},{b}": _sparse(p) for (a, b), p in sorted(node.rows.items())},
                "parent2": node.parent2,
                "second_score_nats": round(net.second_scores.get(node.name, 0.0), 6),
                "pooled_parent2_categories": sorted(node.pooled_parents2),
                "rows2": {",".join(map(str, key)): _sparse(p) for key, p in sorted(node.rows2.items())},
                "by_pair": {",".join(map(str, key)): _sparse(p) for key, p in sorted(node.by_pair.items())},
            }
        )
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "metadata": model.metadata,
        "age": {
            "band_starts": list(model.age_band_starts),
            "max_age": model.max_age,
            "within_band": {
                b: {"ages": [int(a) for a in ages], "probs": _plist(p)}
                for b, (ages, p) in model.age_within_band.items()
            },
            "within_band_by_education": [
                {"band": b, "education": e, "ages": [int(a) for a in ages], "probs": _plist(p)}
                for (b, e), (ages, p) in model.age_within_band_education.items()
            ],
        },
        "income": {
            "positive_edges": [float(e) for e in model.income_edges],
            "within_band_quantiles": {b: [float(v) for v in q] for b, q in model.income_within_band.items()},
        },
        "network": {
            "root": net.root,
            "k": net.k,
            "root_categories": list(net.root_categories),
            "root_probs": _plist(net.root_probs),
            "nodes": nodes,
        },
    }


def decode(data: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~persona_lab.census.CensusModel` fields of an :func:`encode` document (probabilities as
    stored, checked to sum to 1)."""
    if data.get("format") != MODEL_FORMAT:
        raise ValueError(f"not a {MODEL_FORMAT} document")
    if data.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"format_version {data.get('format_version')}, expected {MODEL_FORMAT_VERSION}")
    net = data["network"]
    nodes = []
    for nd in net["nodes"]:
        kx = len(nd["categories"])
        nodes.append(
            NodeTable(
                name=nd["name"],
                categories=tuple(nd["categories"]),
                parent=nd["parent"],
                rows={_key(s): _dense(p, kx) for s, p in nd["rows"].items()},
                by_root={int(a): _dense(p, kx) for a, p in nd["by_root"].items()},
                by_parent={int(b): _dense(p, kx) for b, p in nd["by_parent"].items()},
                marginal=_parr(nd["marginal"], kx),
                pooled_parents=frozenset(int(i) for i in nd["pooled_parent_categories"]),
                parent2=nd.get("parent2"),
                pooled_parents2=frozenset(int(i) for i in nd.get("pooled_parent2_categories", [])),
                rows2={_key3(s): _dense(p, kx) for s, p in nd.get("rows2", {}).items()},
                by_pair={_key(s): _dense(p, kx) for s, p in nd.get("by_pair", {}).items()},
            )
        )
    network = TreeNetwork(
        root=net["root"],
        root_categories=tuple(net["root_categories"]),
        root_probs=_parr(net["root_probs"], len(net["root_categories"])),
        nodes=tuple(nodes),
        k=int(net["k"]),
        edge_scores={nd["name"]: float(nd["edge_score_nats"]) for nd in net["nodes"] if nd["parent"]},
        second_scores={
            nd["name"]: float(nd["second_score_nats"]) for nd in net["nodes"] if nd.get("parent2")
        },
    )
    age = data["age"]
    income = data["income"]
    return dict(
        network=network,
        age_band_starts=tuple(int(s) for s in age["band_starts"]),
        max_age=int(age["max_age"]),
        age_within_band={
            b: (np.asarray(v["ages"], dtype=np.int64), _parr(v["probs"], len(v["ages"])))
            for b, v in age["within_band"].items()
        },
        age_within_band_education={
            (v["band"], v["education"]): (
                np.asarray(v["ages"], dtype=np.int64),
                _parr(v["probs"], len(v["ages"])),
            )
            for v in age.get("within_band_by_education", [])
        },
        income_edges=tuple(float(e) for e in income["positive_edges"]),
        income_within_band={
            b: np.asarray(q, dtype=float) for b, q in income["within_band_quantiles"].items()
        },
        metadata=dict(data["metadata"]),
    )


def _plist(p: np.ndarray) -> list[float]:
    return [0 if v == 0 else round(float(v), _ROUND) for v in p]


def _sparse(p: np.ndarray) -> list[list[float]]:
    """Sparse row: ``[[category index, probability], ...]`` over the non-zero stored probabilities."""
    return [[int(i), v] for i, v in enumerate(_plist(p)) if v != 0]


def _dense(pairs: Sequence[Sequence[float]], k: int) -> np.ndarray:
    arr = np.zeros(k)
    for i, v in pairs:
        if not (isinstance(i, int) and 0 <= i < k):
            raise ValueError(f"category index {i!r} outside 0..{k - 1}")
        arr[i] = v
    return _parr(arr, k)


def _parr(values: Sequence[float] | np.ndarray, k: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (k,) or (arr < 0).any() or not np.isfinite(arr).all() or abs(arr.sum() - 1) > 1e-4:
        raise ValueError(
            f"probability vector of length {len(arr)} is not {k} non-negative numbers summing to 1"
        )
    return arr  # kept as stored (rounded); sampling normalizes cumulative sums


def _key(s: str) -> tuple[int, int]:
    a, b = s.split(",")
    return int(a), int(b)


def _key3(s: str) -> tuple[int, int, int]:
    a, b, c = s.split(",")
    return int(a), int(b), int(c)
