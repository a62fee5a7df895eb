"""Runs against a misbehaving OpenAI-compatible server on 127.0.0.1: it fails, hangs and truncates, or is gone.

The server is real HTTP (the official ``openai`` client talks to it over a socket); its answers satisfy each
request's JSON schema, so every stage can run on it. Whatever it does, every request ends as an answer or a
recorded failure, and the run ends complete or with a clean, explained stop.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from persona_lab.cli import app
from persona_lab.llm import ResponseCache


def _fill(schema: dict[str, Any], defs: dict[str, Any], salt: str) -> Any:
    """A value that satisfies ``schema`` (the subset pydantic writes), with distinct text per field."""
    if "$ref" in schema:
        return _fill(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, salt)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _fill(options[0], defs, salt)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _fill(v, defs, f"{salt} {k}") for k, v in props.items()}
    if kind == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        n = min(n, int(schema.get("maxItems", n)))
        return [_fill(schema.get("items", {}), defs, f"{salt} item {i}") for i in range(n)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    words = "Measured reply about " + " ".join(
        hashlib.sha1(salt.encode()).hexdigest()[i : i + 5] for i in (0, 6, 12)
    )
    return words[: int(schema.get("maxLength", len(words)))]


class _FaultyServer:
    """Per request body: first attempts fail with 500 (20 %), hang past the client's timeout (4 %) or send a
    truncated body (10 %); later attempts answer. A few bodies (3 %) always fail with 500."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        key = hashlib.sha256(body).hexdigest()
        with self.lock:
            self.attempts[key] = self.attempts.get(key, 0) + 1
            attempt = self.attempts[key]
        roll = int(key[:8], 16) % 100
        if roll < 3:
            return self._send(h, 500, b'{"error": {"message": "internal error"}}')
        if attempt == 1 and roll < 23:
            return self._send(h, 500, b'{"error": {"message": "overloaded"}}')
        if attempt == 1 and roll < 27:
            time.sleep(3)  # past llm.timeout_s
            return self._send(h, 500, b'{"error": {"message": "too late"}}')
        payload = json.loads(body)
        fmt = payload.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
        salt = key[:12]
        content = (
            json.dumps(_fill(schema, schema.get("$defs", {}), salt))
            if schema
            else f"A measured, plain reply ({salt})."
        )
        answer = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": payload["model"],
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(answer).encode()
        if attempt == 1 and roll < 37:
            return self._send(h, 200, data[: len(data) // 2])  # truncated body
        return self._send(h, 200, data)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty():
    server = _FaultyServer()
    yield server
    server.close()


@pytest.mark.slow
def test_the_tiny_preset_survives_a_faulty_server(tmp_path, faulty):
    run_dir = tmp_path / "run"
    args = [
        "reproduce",
        "--run-dir", str(run_dir),
        "--figures", str(tmp_path / "figures"),
        "--backend", f"openai:stub@{faulty.url}",
        "--set", "llm.timeout_s=1",
        "--set", "llm.max_retries=2",
        "--set", "personas.n=12",
        "--set", "personas.n_train=8",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 3), result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is (result.exit_code == 0)
    # every distinct request the server saw is in the cache, as an answer or as a recorded failure
    with ResponseCache(run_dir) as cache:
        totals = cache.totals()
        failures = cache.failures()
    assert totals["responses"] + totals["failures"] == len(faulty.attempts)
    assert summary["llm"]["responses"] == totals["responses"]
    assert totals["failures"] >= 1 and set(failures["kind"]) <= {
        "server",
        "timeout",
        "unparseable",
        "invalid_request",
    }
    assert sum(s.get("llm_calls") or 0 for s in summary["stages"].values()) == len(faulty.attempts)

    # a rerun replays answers and recorded failures alike: the server sees no new request
    before = sum(faulty.attempts.values())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == result.exit_code, again.output
    assert sum(faulty.attempts.values()) == before


def test_a_dead_backend_stops_the_stage_with_a_resumable_message(tmp_path):
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    result = CliRunner().invoke(
        app,
        [
            "run", "prompts",
            "--run-dir", str(run_dir),
            "--figures", str(tmp_path / "figures"),
            "--backend", "openai:m@http://127.0.0.1:9/v1",
            "--set", "llm.timeout_s=0.5",
        ],
    )  # fmt: skip
    assert time.perf_counter() - started < 60
    assert result.exit_code == 3, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False
    assert "openai:m@http://127.0.0.1:9/v1" in summary["incomplete"]["prompts"]
    with ResponseCache(run_dir) as cache:
        kinds = set(cache.failures()["kind"])
    assert "not_attempted" in kinds
