"""Cache replay: a rerun of a 100,000-request stage answered entirely from the response cache.

Fills a fresh ``llm_cache.sqlite`` with N responses (a persona x prompt grid of chat requests, each with a
system prompt), then times ``run_requests`` over the same requests: every answer is replayed, zero calls
(the backend raises if it is called). Prints replayed calls/s (target >= 5,000/s).

Usage: .venv/bin/python benchmarks/bench_cache_replay.py [--n 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from persona_lab.llm import LLMRequest, LLMResponse, ResponseCache, Usage, request_key, run_requests


class NeverCalled:
    spec = "openai:gpt-4o-mini"
    model = "gpt-4o-mini"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("a replay must not call the backend")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    be = NeverCalled()
    reqs = [
        LLMRequest.chat(
            f"Prompt {i % 500}: what do you think about policy question {i % 500}?",
            system=f"You are persona {i // 500}, a 47-year-old teacher from Ohio who values fairness.",
            max_tokens=256,
            tag=f"{i // 500}/{i % 500}",
        )
        for i in range(args.n)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with ResponseCache(Path(tmp)) as cache:
            batch = []
            for r in reqs:
                resp = LLMResponse(
                    text="I would weigh both sides. " * 8,
                    usage=Usage(input_tokens=60, cached_input_tokens=30, output_tokens=50),
                    cost_usd=4.2e-5,
                    backend=be.spec,
                    model=be.model,
                )
                batch.append((request_key(r, be.spec, be.model), r, resp, r.tag))
                if len(batch) == 5000:
                    cache.put_many(batch)
                    batch.clear()
            cache.put_many(batch)
        fill = time.perf_counter() - t0
        size = (Path(tmp) / "llm_cache.sqlite").stat().st_size
        t0 = time.perf_counter()
        res = run_requests(reqs, be, cache=Path(tmp), progress=False)
        dt = time.perf_counter() - t0
    assert len(res) == args.n and all(r.cached for r in res)
    print(f"filled {args.n:,} responses in {fill:.1f} s ({size / 1e6:.0f} MB)")
    print(f"replayed {args.n:,} cached responses in {dt:.2f} s: {args.n / dt:,.0f} calls/s (0 backend calls)")


if __name__ == "__main__":
    main()
