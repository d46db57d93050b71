"""`podium serve` figures, against a real server on loopback (a subprocess, a SQLite file):

- run listing: `GET /api/runs?limit=50` requests per second with N runs in the store
  (default 10,000), from C concurrent clients (default 4);
- SSE latency: from a step's completion (its `step.completed` event's `ts`) to the event
  arriving, for runs started over the API and driven by the server's worker (p50, p95):
  - in a real headless Chromium (Debian's `chromium`, through Playwright), read by the same
    fetch-stream reader the web UI uses, timed when the event is parsed in the page;
  - in an httpx client, as a floor without the browser;
- OpenTelemetry's overhead on the 10-agent chain, off vs on, as a ratio (goal <= 1.3x),
  from `bench/otel.py` (same code, fewer batches).

    PYTHONPATH=src python bench/server.py                  # ~1.5 min
    PYTHONPATH=src python bench/server.py --quick          # 1,000 runs, shorter
    PYTHONPATH=src python bench/server.py --json out.json  # default: bench/results/server.json

The machine is shared: take the figures as orders of magnitude; the JSON keeps every sample's
summary and the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


FLOW = "tests/server/flows.py:ship"


async def sse_latency(base: str, runs: int) -> list[float]:
    """Seconds from each step's completion to an httpx client reading its event."""
    headers = {"Authorization": f"Bearer {KEY}"}
    lags: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
        for i in range(runs):
            r = await c.post("/api/runs", json={"target": FLOW, "input": i})
            run_id = r.json()["run_id"]
            async with c.stream("GET", f"/api/runs/{run_id}/events") as s:
                async for line in s.aiter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event["kind"] == "step.completed":
                            lags.append(time.time() - event["ts"])
    return lags


# Runs in the page: start a run, read its events as the UI's `follow` does (fetch, since
# EventSource cannot send the key), and note when each step.completed is parsed.
BROWSER_RUN = """async ([key, flow, input]) => {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  const r = await fetch("/api/runs", { method: "POST", headers,
                                       body: JSON.stringify({ target: flow, input }) });
  const { run_id } = await r.json();
  const s = await fetch(`/api/runs/${run_id}/events`, { headers });
  const reader = s.body.pipeThrough(new TextDecoderStream()).getReader();
  const lags = []; let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return lags;
    buf += value;
    let cut;
    while ((cut = buf.indexOf("\\n\\n")) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const line = block.split("\\n").find((l) => l.startsWith("data: "));
      if (!line) continue;
      const event = JSON.parse(line.slice(6));
      if (event.kind === "step.completed") {
        lags.push((performance.timeOrigin + performance.now()) / 1000 - event.ts);
      }
    }
  }
}"""


def browser_latency(base: str, runs: int) -> list[float] | str:
    """Seconds from each step's completion to the event parsed in Chromium's page, or why
    it could not be measured."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        return "no Chromium (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "no playwright (pip install playwright)"
    lags: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{base}/healthz")  # same origin as the API, nothing else loaded
            page.evaluate(BROWSER_RUN, [KEY, FLOW, -1])  # warm up: JIT, connection
            for i in range(runs):
                lags += page.evaluate(BROWSER_RUN, [KEY, FLOW, i])
        finally:
            browser.close()
    return lags


def percentiles(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags)
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _otel() -> Any:
    """bench/otel.py (imported late: it loads OpenTelemetry), its folder on the path once."""
    folder = str(ROOT / "bench")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import otel

    return otel


def otel_table(rows: list[dict[str, Any]]) -> list[str]:
    return list(_otel().table(rows))


def otel_ratio(quick: bool) -> dict[str, Any]:
    otel = _otel()

    runs, batches = (200, 5) if quick else (1000, 9)
    out: dict[str, Any] = {}
    for url in ("memory://", None):
        if url is None:
            with tempfile.TemporaryDirectory() as tmp:
                row = asyncio.run(otel.measure(f"sqlite:///{tmp}/otel.db", runs // 5, batches))
        else:
            row = asyncio.run(otel.measure(url, runs, batches))
        out[row["store"]] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store to list")
    parser.add_argument("--seconds", type=float, default=10.0, help="listing time")
    parser.add_argument("--sse-runs", type=int, default=30, help="runs followed over SSE")
    parser.add_argument("--quick", action="store_true", help="1,000 runs, 3 s, 10 SSE runs")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="default: bench/results/server.json (--quick: server-quick.json)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds, args.sse_runs = 1_000, 3.0, 10
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "runs_in_store": args.runs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/bench.db"
        t0 = time.monotonic()
        asyncio.run(fill(store, args.runs))
        print(f"filled {args.runs} runs in {time.monotonic() - t0:.1f}s")
        port = 18000 + os.getpid() % 1000
        proc = start_server(store, port)
        base = f"http://127.0.0.1:{port}"
        try:
            done, took = asyncio.run(listing(base, args.seconds, 4))
            results["listing_rps"] = round(done / took, 1)
            results["sse_httpx"] = percentiles(asyncio.run(sse_latency(base, args.sse_runs)))
            browser = browser_latency(base, args.sse_runs)
            results["sse_browser"] = (
                percentiles(browser) if isinstance(browser, list) else {"skipped": browser}
            )
        finally:
            proc.terminate()
            proc.wait(10)
    results["otel"] = otel_ratio(args.quick)
    rps = results["listing_rps"]
    print(f"run listing (limit 50, {args.runs} runs, 4 clients): {rps:.0f} requests/s")
    print("SSE, step completed -> event read   p50 ms   p95 ms   max ms  samples")
    for name in ("sse_browser", "sse_httpx"):
        row = results[name]
        label = "Chromium page" if name == "sse_browser" else "httpx client"
        if "skipped" in row:
            print(f"  {label:<32} skipped: {row['skipped']}")
        else:
            print(
                f"  {label:<32} {row['p50_ms']:>6.1f} {row['p95_ms']:>8.1f} {row['max_ms']:>8.1f}"
                f" {row['samples']:>8}"
            )
    print("OpenTelemetry on the 10-agent chain (goal <= 1.3x), us per run (bench/otel.py)")
    print("\n".join("  " + line for line in otel_table(list(results["otel"].values()))))
    out = args.json or ROOT / "bench" / "results" / f"server{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
