"""Tokens per second of the local backend through the runner, against raw llama-cpp-python, in one run.

Three ways to answer the same prompts with the same model instance, the same ``max_tokens`` and greedy
decoding, interleaved over several rounds so that machine load affects all of them alike:

- ``raw``: ``Llama.create_chat_completion`` in a loop, llama.cpp's prompt-prefix reuse left on (its default);
- ``raw_reset``: the same with ``Llama.reset()`` before each call, which is what the backend does so that an
  answer depends only on its request;
- ``runner``: ``run_requests`` (no cache) on ``LocalBackend``: async runner, concurrency, one worker thread.

Every arm calls llama.cpp from the same thread, the model's one worker thread (the runner's backend sends
every call there): llama-cpp-python's OpenMP build decodes 85-104 tokens/s from one thread but 60-69 once a
second thread has called it, which would skew whichever arm runs second. Tokens/s = generated tokens /
wall-clock seconds (prompt evaluation included). Ratios are also given as the median of per-round ratios,
which is robust to load from other processes on a shared machine. The answers of ``runner`` and
``raw_reset`` must be identical. Run: ``.venv/bin/python benchmarks/bench_local_backend.py``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import threading
import time

from persona_lab.config import LLMConfig
from persona_lab.llm import LLMRequest, LLMResponse
from persona_lab.llm._local import LocalBackend, load_model
from persona_lab.llm._runner import run_requests

PROMPTS = [
    "Describe a typical morning of a nurse who works night shifts.",
    "Should cities ban cars from their centres? Give arguments on both sides.",
    "Explain to a teenager why people disagree about immigration.",
    "Write a short letter to a neighbour about a noisy dog.",
    "What are the pros and cons of working from home?",
    "How should a small town spend a budget surplus?",
    "Describe the values of a retired farmer from Iowa.",
    "Is it fair to tax inherited wealth? Explain your view.",
    "Give advice to a first-generation college student.",
    "Summarize the debate about social media and teenagers.",
    "What makes a good neighbour?",
    "Should voting be compulsory? Discuss.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=8)
    args = ap.parse_args()

    backend = LocalBackend()
    loaded = load_model(backend.path, n_ctx=backend.n_ctx, n_threads=backend.n_threads)
    llama = loaded.llama
    prompts = PROMPTS[: args.prompts]
    requests = [LLMRequest.chat(p, max_tokens=args.max_tokens, temperature=0.0, seed=0) for p in prompts]
    messages = [[{"role": "user", "content": p}] for p in prompts]

    def raw(reset: bool) -> tuple[int, float, list[str]]:
        # in the model's worker thread, where the runner's calls run too
        return loaded.executor.submit(raw_in_worker, reset).result()

    def raw_in_worker(reset: bool) -> tuple[int, float, list[str]]:
        texts, tokens = [], 0
        t0 = time.perf_counter()
        for m in messages:
            if reset:
                llama.reset()
            out = llama.create_chat_completion(m, temperature=0.0, max_tokens=args.max_tokens, seed=0)
            tokens += out["usage"]["completion_tokens"]
            texts.append(out["choices"][0]["message"]["content"])
        return tokens, time.perf_counter() - t0, texts

    def runner() -> tuple[int, float, list[str]]:
        t0 = time.perf_counter()
        out = run_requests(requests, backend, cache=None, config=LLMConfig(), progress=False)
        dt = time.perf_counter() - t0
        assert all(isinstance(r, LLMResponse) for r in out), out
        return sum(r.usage.output_tokens for r in out), dt, [r.text for r in out]  # type: ignore[union-attr]

    threads: set[int] = set()
    generate = llama.create_chat_completion

    def recorded(*a, **kw):  # every call of every arm notes its thread
        threads.add(threading.get_ident())
        return generate(*a, **kw)

    llama.create_chat_completion = recorded  # type: ignore[method-assign]
    raw(True)  # warm-up: page in the weights
    methods = {"raw": lambda: raw(False), "raw_reset": lambda: raw(True), "runner": runner}
    rates: dict[str, list[float]] = {k: [] for k in methods}
    texts: dict[str, list[str]] = {}
    for i in range(args.rounds):
        order = list(methods)[i % 3 :] + list(methods)[: i % 3]  # rotate who goes first
        for name in order:
            tokens, dt, texts[name] = methods[name]()
            rates[name].append(tokens / dt)
    med = {k: statistics.median(v) for k, v in rates.items()}
    same = texts["runner"] == texts["raw_reset"]

    print(
        f"machine: {platform.processor() or platform.machine()}, n_threads={backend.n_threads}, model {backend.model}"
    )
    print(
        f"{len(prompts)} prompts x max_tokens={args.max_tokens}, greedy, {args.rounds} rounds (median tokens/s)"
    )
    for k, v in rates.items():
        print(f"  {k:10s} {med[k]:7.1f} tok/s   rounds: {', '.join(f'{x:.1f}' for x in v)}")
    for base in ("raw_reset", "raw"):
        # ratio within each round (the three ran back to back, under the same machine load), then the median
        paired = statistics.median(r / b for r, b in zip(rates["runner"], rates[base], strict=True))
        print(
            f"  runner / {base:9s} = {med['runner'] / med[base]:.3f} (medians), {paired:.3f} (median of per-round ratios)"
        )
    print(f"  runner answers identical to raw_reset: {same}")
    print(f"  threads that called llama.cpp: {len(threads)}")
    assert len(threads) == 1, threads


if __name__ == "__main__":
    main()
