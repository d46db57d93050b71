"""`podium serve` figures, against a real server on loopback (a subprocess, a SQLite file):

- run listing: `GET /api/runs?limit=50` requests per second with N runs in the store
  (default 10,000), from C concurrent clients (default 4);
- SSE latency: from a step's `step.completed` event being stored (its `ts`) to a client of
  `GET /api/runs/{id}/events` reading it (p50, p95), for runs driven by the server's worker.

    PYTHONPATH=src python bench/server.py [RUNS] [SECONDS]

The machine is shared: take the figures as orders of magnitude.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from podium.core.records import RunRecord, RunStatus
from podium.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-admin-key-0123456789"


async def fill(url: str, n: int) -> None:
    store = open_store(url)
    await store.open()
    try:
        now = time.time()
        for i in range(n):
            status = RunStatus.COMPLETED if i % 10 else RunStatus.FAILED
            record = RunRecord(
                f"bench-{i:06d}", f"agent{i % 7}", status, input={"i": i}, output=f"out {i}"
            )
            record.created_at = record.updated_at = now - n + i
            await store.create_run(record)
            if status == RunStatus.FAILED:
                await store.update_run(record.run_id, status=status, error="boom " * 10)
    finally:
        await store.close()


def start_server(store: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PODIUM_API_KEYS": f"{KEY}:admin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "serve", "--port", str(port), "--store", store],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


async def listing(base: str, seconds: float, clients: int) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    done = 0
    end = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, headers=headers) as c:
            while time.monotonic() < end:
                r = await c.get("/api/runs", params={"limit": 50})
                assert r.status_code == 200 and len(r.json()["runs"]) == 50
                done += 1

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(clients)))
    return done, time.monotonic() - start


async def sse_latency(base: str, runs: int) -> list[float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    lags: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
        for i in range(runs):
            r = await c.post("/api/runs", json={"target": "tests/server/flows.py:ship", "input": i})
            run_id = r.json()["run_id"]
            async with c.stream("GET", f"/api/runs/{run_id}/events") as s:
                async for line in s.aiter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event["kind"] == "step.completed":
                            lags.append(time.time() - event["ts"])
    return lags


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/bench.db"
        t0 = time.monotonic()
        asyncio.run(fill(store, n))
        print(f"filled {n} runs in {time.monotonic() - t0:.1f}s")
        port = 18000 + os.getpid() % 1000
        proc = start_server(store, port)
        base = f"http://127.0.0.1:{port}"
        try:
            done, took = asyncio.run(listing(base, seconds, 4))
            print(f"run listing (limit 50, {n} runs, 4 clients): {done / took:.0f} requests/s")
            lags = sorted(asyncio.run(sse_latency(base, 20)))
            p50 = statistics.median(lags) * 1000
            p95 = lags[int(len(lags) * 0.95) - 1] * 1000
            print(f"SSE, step stored -> client: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
