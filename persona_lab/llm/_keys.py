"""Cache keys: the canonical JSON of everything that determines an answer, and its hash.

``request_json`` is the reference definition; ``request_jsons`` produces the same strings for many requests
at once, several times faster (it writes the fixed parts of the JSON once and encodes only what varies), so
that keying the 638,268 answers of PERSONA's feedback plan (Castricato et al. 2024, Sec. 3.3) takes seconds.
A test checks that both agree on arbitrary requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from persona_lab.llm._types import LLMRequest

KEY_VERSION = "pl1"
"""Prefix of every hashed key payload; bump it when the meaning of a request changes."""

_encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
"""The canonical encoder: sorted keys, no spaces, non-ASCII kept as is."""


def request_payload(request: LLMRequest, backend: str, model: str) -> dict[str, Any]:
    """Return everything that determines the answer to ``request`` on a backend, as plain JSON data.

    The payload holds the backend spec, the model, the messages, temperature, max tokens, seed, JSON schema,
    closed choices and sample index. The caller's ``tag`` is excluded (it labels, it does not determine).
    """
    return {
        "v": KEY_VERSION,
        "backend": backend,
        "model": model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "json_schema": request.json_schema,
        "choices": list(request.choices) if request.choices is not None else None,
        "sample_index": request.sample_index,
    }


def request_json(request: LLMRequest, backend: str, model: str) -> str:
    """The canonical JSON of ``request_payload`` (sorted keys, no spaces): what the key hashes and the
    ``request`` column stores."""
    return _encode(request_payload(request, backend, model))


def _number(x: Any) -> str:
    """JSON of a number exactly as ``json.dumps`` writes it (``repr`` for plain ints and finite floats)."""
    t = type(x)
    if t is int:
        return int.__repr__(x)
    if t is float and x - x == 0.0:  # finite (NaN and infinities go through the encoder)
        return float.__repr__(x)
    return _encode(x)


def request_jsons(requests: Iterable[LLMRequest], backend: str, model: str) -> Iterator[str]:
    """``request_json`` of each request, in order, computed in bulk.

    The payload's keys are written in sorted order around the encoded values: the backend and model once,
    a JSON schema shared by many requests (the same dict object) once, each message with the encoder's own
    string escaping (``json.encoder.encode_basestring``, what ``ensure_ascii=False`` uses).
    """
    string = encode_basestring
    head = '{"backend":' + _encode(backend) + ',"choices":'
    middle = ',"model":' + _encode(model) + ',"sample_index":'
    schemas: dict[int, tuple[object, str]] = {}  # id -> (the dict, kept alive so its id stays unique; JSON)
    for r in requests:
        d = r.__dict__
        choices = d["choices"]
        schema = d["json_schema"]
        if schema is None:
            schema_json = "null"
        else:
            memo = schemas.get(id(schema))
            if memo is None:
                memo = schemas[id(schema)] = (schema, _encode(schema))
            schema_json = memo[1]
        messages = ",".join([f"[{string(m.role)},{string(m.content)}]" for m in d["messages"]])
        max_tokens, index, seed, temperature = d["max_tokens"], d["sample_index"], d["seed"], d["temperature"]
        if not (
            type(max_tokens) is int
            and type(index) is int
            and type(seed) is int
            and type(temperature) is float
            and temperature - temperature == 0.0
        ):  # values that bypassed validation (model_copy): encode each as json does
            max_tokens, index, seed, temperature = map(_number, (max_tokens, index, seed, temperature))
        else:
            temperature = float.__repr__(temperature)  # the ints format as their repr
        yield (
            f"{head}{'null' if choices is None else _encode(list(choices))},"
            f'"json_schema":{schema_json},"max_tokens":{max_tokens},"messages":[{messages}]'
            f'{middle}{index},"seed":{seed},"temperature":{temperature},"v":"{KEY_VERSION}"}}'
        )


def key_of_json(blob: str) -> str:
    """The cache key of a canonical request JSON (BLAKE2b-128, 32 hex digits)."""
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


def request_keys(requests: Iterable[LLMRequest], backend: str, model: str) -> list[str]:
    """``request_key`` of each request, in order (bulk keying, see ``request_jsons``)."""
    blake2b = hashlib.blake2b
    return [
        blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()
        for blob in request_jsons(requests, backend, model)
    ]


def request_key(request: LLMRequest, backend: str, model: str) -> str:
    """Hash everything that determines the answer into the cache key (BLAKE2b-128, 32 hex digits).

    Args:
        request: The request.
        backend: The backend spec (e.g. ``openai:gpt-4o``); part of the key, so two servers never share answers.
        model: The model name the backend resolved.

    Returns:
        A stable hex key: the same request on the same backend and model always maps to the same key,
        across processes and Python versions (canonical JSON with sorted keys, no hash randomization).
    """
    return key_of_json(request_json(request, backend, model))
