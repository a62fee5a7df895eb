"""Cache replay: a rerun of PERSONA's feedback plan (638,268 answers) answered entirely from the response cache.

Fills a fresh ``llm_cache.sqlite`` with N responses (a persona x prompt grid of chat requests, each with a
system prompt), then times two arms over the same requests, each in a fresh process of its own, alternating
over several rounds so that machine load affects both alike:

- ``raw``: plain bulk SQLite, the floor of what a replay can cost: the keys known in advance, every response
  column read with ``SELECT ... WHERE key IN (...)`` in chunks of 500, rows kept in a dict;
- ``replay``: ``run_requests`` over the requests (the backend raises if it is called): keys every request,
  reads the cache, builds one ``LLMResponse`` per answer, returns them in order.

Prints answers/s of both arms (median over rounds, by wall clock and per CPU second, which other processes
on a shared machine disturb less), the ratio replay / raw, and each arm's memory above the process's memory
before the arm started (the requests themselves are the caller's): its peak, and what its results still hold
afterwards. Targets: replay at least 100,000 answers/s at N = 640,000, with memory proportional to the
answers returned.

Usage: .venv/bin/python benchmarks/bench_cache_replay.py [--n 640000] [--rounds 3] [--dir DIR]
(``--dir`` keeps the filled cache there and reuses it when it already holds N responses.)
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC, MODEL = "openai:gpt-4o-mini", "gpt-4o-mini"
PROMPTS = 400  # prompts per persona: N = personas x 400 (the paper: 1,586 personas x 200 pairs x 2 answers)


def _requests(n: int):
    from persona_lab.llm import LLMRequest

    return [
        LLMRequest.chat(
            f"Prompt {i % PROMPTS}: what do you think about policy question {i % PROMPTS}?",
            system=f"You are persona {i // PROMPTS}, a 47-year-old teacher from Ohio who values fairness.",
            max_tokens=256,
            tag=f"{i // PROMPTS}/{i % PROMPTS}",
        )
        for i in range(n)
    ]


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_mb() -> float:
    """Resident memory now, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def arm_fill(n: int, db: Path) -> dict:
    from persona_lab.llm import LLMResponse, ResponseCache, Usage
    from persona_lab.llm._keys import request_keys

    reqs = _requests(n)
    keys = request_keys(reqs, SPEC, MODEL)
    t0 = time.perf_counter()
    with ResponseCache(db) as cache:
        for start in range(0, n, 5000):
            rows = []
            for k, r in zip(keys[start : start + 5000], reqs[start : start + 5000], strict=True):
                resp = LLMResponse(
                    text=f"I would weigh both sides of question {r.tag}. " * 6,
                    usage=Usage(input_tokens=60, cached_input_tokens=30, output_tokens=50),
                    cost_usd=4.2e-5,
                    backend=SPEC,
                    model=MODEL,
                )
                rows.append((k, r, resp, r.tag))
            cache.put_many(rows)
    return {"seconds": time.perf_counter() - t0, "bytes": db.stat().st_size}


def arm_raw(n: int, db: Path) -> dict:
    from persona_lab.llm._cache import _RESPONSE_COLUMNS
    from persona_lab.llm._keys import request_keys

    keys = request_keys(_requests(n), SPEC, MODEL)
    base, now = _rss_mb(), _current_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    con = sqlite3.connect(db)
    rows: dict[str, tuple] = {}
    for start in range(0, n, 500):
        chunk = keys[start : start + 500]
        sql = f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
        for row in con.execute(sql, chunk).fetchall():
            rows[row[0]] = row
    con.close()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(rows) == n, len(rows)
    return {"seconds": dt, "cpu": cpu, "base_mb": base, "peak_mb": _rss_mb(), "held_mb": _current_mb() - now}


class NeverCalled:
    spec = SPEC
    model = MODEL

    async def complete(self, request):
        raise AssertionError("a replay must not call the backend")


def arm_replay(n: int, db: Path) -> dict:
    from persona_lab.llm import run_requests

    reqs = _requests(n)
    base, now = _rss_mb(), _current_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_requests(reqs, NeverCalled(), cache=db, progress=False)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(res) == n and all(r.cached for r in res)
    assert [r.text for r in res[:: n // 7]] == [
        f"I would weigh both sides of question {r.tag}. " * 6 for r in reqs[:: n // 7]
    ]
    return {"seconds": dt, "cpu": cpu, "base_mb": base, "peak_mb": _rss_mb(), "held_mb": _current_mb() - now}


ARMS = {"fill": arm_fill, "raw": arm_raw, "replay": arm_replay}


def _child(arm: str, n: int, db: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--arm", arm, "--n", str(n), "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _filled(db: Path, n: int) -> bool:
    if not db.is_file():
        return False
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == n
    except sqlite3.Error:
        return False
    finally:
        con.close()


def run(n: int, rounds: int, folder: Path) -> None:
    db = folder / "llm_cache.sqlite"
    if not _filled(db, n):
        db.unlink(missing_ok=True)
        fill = _child("fill", n, db)
        print(f"filled {n:,} responses in {fill['seconds']:.1f} s ({fill['bytes'] / 1e6:.0f} MB)")
    results: dict[str, list[dict]] = {"raw": [], "replay": []}
    for i in range(rounds):
        order = ["raw", "replay"] if i % 2 == 0 else ["replay", "raw"]  # alternate who goes first
        for arm in order:
            results[arm].append(_child(arm, n, db))
        raw, rep = results["raw"][-1], results["replay"][-1]
        print(
            f"round {i + 1}: raw {n / raw['seconds']:,.0f} answers/s, replay {n / rep['seconds']:,.0f} answers/s "
            f"(ratio {raw['seconds'] / rep['seconds']:.2f})"
        )
    med = {arm: statistics.median(r["seconds"] for r in rs) for arm, rs in results.items()}
    cpu = {arm: statistics.median(r["cpu"] for r in rs) for arm, rs in results.items()}
    print(
        f"median over {rounds} rounds, {n:,} answers: raw bulk SQLite {n / med['raw']:,.0f} answers/s "
        f"({med['raw']:.2f} s), run_requests replay {n / med['replay']:,.0f} answers/s ({med['replay']:.2f} s); "
        f"ratio replay / raw {med['raw'] / med['replay']:.3f}"
    )
    print(
        f"per CPU second (robust to other load): raw {n / cpu['raw']:,.0f} answers, replay "
        f"{n / cpu['replay']:,.0f} answers; ratio {cpu['raw'] / cpu['replay']:.3f}"
    )
    for arm in ("raw", "replay"):
        rs = results[arm]
        peak = statistics.median(r["peak_mb"] - r["base_mb"] for r in rs)
        held = statistics.median(r["held_mb"] for r in rs)
        print(
            f"  {arm:6s} memory above its start: peak {peak:,.0f} MB, held by the results {held:,.0f} MB "
            f"({held * 2**20 / n:,.0f} bytes/answer)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=640_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the filled cache in this folder")
    ap.add_argument("--arm", choices=sorted(ARMS), help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:  # a child process: one arm, its numbers as one JSON line
        print(json.dumps(ARMS[args.arm](args.n, args.db)))
        return
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run(args.n, args.rounds, args.dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args.n, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
