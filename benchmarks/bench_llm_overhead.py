"""Client overhead of the runner: calls/s through ``run_requests`` vs a bare ``openai`` async loop.

Both talk to the same zero-latency OpenAI-compatible stub server on loopback (a raw asyncio HTTP/1.1
server with keep-alive, in its own process, answering every request with one fixed chat completion), at
the same concurrency, alternating rounds in the same run. The runner does everything it does in a real
stage: keys every request, looks the cache up, sorts, limits concurrency, commits each response to a
fresh SQLite cache, computes cost. The ratio runner / bare must be >= 0.9.

Usage: .venv/bin/python benchmarks/bench_llm_overhead.py [--calls 2000] [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import statistics
import tempfile
import time
from pathlib import Path

BODY = json.dumps(
    {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _requests(n: int, salt: str):
    from persona_lab.llm import LLMRequest

    return [
        LLMRequest.chat(f"{salt} question {i}: ping?", system="Answer briefly.", max_tokens=4)
        for i in range(n)
    ]


def bench_runner(url: str, n: int, concurrency: int, salt: str) -> tuple[float, float]:
    from persona_lab.config import LLMConfig
    from persona_lab.llm import LLMResponse, run_requests

    cfg = LLMConfig(concurrency=concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        reqs = _requests(n, salt)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_requests(reqs, f"openai:stub@{url}", cache=Path(tmp), config=cfg, progress=False)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(isinstance(r, LLMResponse) for r in res), "stub calls failed"
    return n / dt, cpu / n * 1e6


def bench_bare(url: str, n: int, concurrency: int, salt: str) -> tuple[float, float]:
    import openai

    reqs = _requests(n, salt)

    async def main() -> tuple[float, float]:
        client = openai.AsyncOpenAI(api_key="not-needed", base_url=url, max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(r) -> str:
            async with sem:
                c = await client.chat.completions.create(
                    model="stub",
                    messages=[{"role": m.role, "content": m.content} for m in r.messages],
                    max_tokens=r.max_tokens,
                    temperature=r.temperature,
                    seed=r.seed,
                )
                return c.choices[0].message.content or ""

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(r) for r in reqs))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        await client.close()
        return n / dt, cpu / n * 1e6

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    port = _free_port()
    proc = mp.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        bench_bare(url, 200, args.concurrency, "warmup")  # imports, connection pool
        bench_runner(url, 200, args.concurrency, "warmup")
        runner, bare = [], []
        for i in range(args.rounds):
            pair = [("bare", bench_bare), ("runner", bench_runner)]
            for name, fn in pair if i % 2 == 0 else pair[::-1]:  # alternate who goes first
                (bare if name == "bare" else runner).append(
                    fn(url, args.calls, args.concurrency, f"{name}{i}")
                )
            print(
                f"round {i + 1}: bare {bare[-1][0]:,.0f} calls/s ({bare[-1][1]:,.0f} us CPU/call), "
                f"runner {runner[-1][0]:,.0f} calls/s ({runner[-1][1]:,.0f} us CPU/call)"
            )
        b, r = statistics.median(x for x, _ in bare), statistics.median(x for x, _ in runner)
        bc, rc = statistics.median(c for _, c in bare), statistics.median(c for _, c in runner)
        print(
            f"median over {args.rounds} rounds of {args.calls} calls at concurrency {args.concurrency}: "
            f"bare openai {b:,.0f} calls/s ({bc:,.0f} us CPU/call), runner {r:,.0f} calls/s ({rc:,.0f} us CPU/call); "
            f"ratio (calls/s) {r / b:.3f}, CPU per call runner/bare {rc / bc:.3f}"
        )
    finally:
        proc.terminate()
        proc.join()


if __name__ == "__main__":
    main()
