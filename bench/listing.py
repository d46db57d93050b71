"""`podium runs` on a store of large runs: its time and peak memory stay those of a listing.

    python bench/listing.py [--runs 2000] [--kb 100] [--db PATH]

Fills a SQLite store with `--runs` completed runs whose input and output are `--kb` KB each
(skipped if `--db` exists already), then times `podium runs --limit N` (N = all runs) in a
fresh process and reports its wall time and peak RSS, beside `python -c "import podium.cli"`
(the floor: what any command costs before it reads anything).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


async def fill(url: str, runs: int, kb: int) -> None:
    from podium.core.records import RunRecord, RunStatus, Usage
    from podium.stores import open_store

    store = open_store(url)
    store.max_input_bytes = store.max_output_bytes = 1 << 30  # type: ignore[attr-defined]
    await store.open()
    blob = "x" * (kb * 1000)
    try:
        for i in range(runs):
            run = RunRecord(f"run{i:06}", "flow", RunStatus.RUNNING, input={"doc": blob})
            run.created_at = run.updated_at = time.time()
            await store.create_run(run)
            await store.update_run(
                run.run_id, status=RunStatus.COMPLETED, output={"doc": blob}, usage=Usage(1, 1, 1)
            )
    finally:
        await store.close()


_WRAP = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as e:
    if e.code:
        raise
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def measure(module: str, *args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `python -m module args` in a fresh process."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", _WRAP, module, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=100)
    parser.add_argument("--db", type=Path, default=None)
    opts = parser.parse_args()
    db = opts.db or Path(tempfile.mkdtemp()) / "big.db"
    url = f"sqlite:///{db.resolve()}"
    if not db.exists():
        t0 = time.perf_counter()
        asyncio.run(fill(url, opts.runs, opts.kb))
        print(f"filled {opts.runs} runs x 2 x {opts.kb} KB in {time.perf_counter() - t0:.1f}s")
    size = db.stat().st_size / 1e6
    floor = measure("podium.cli.app", "--help")
    listing = measure("podium.cli.app", "runs", "--store", url, "--limit", "100000")
    as_json = measure("podium.cli.app", "runs", "--store", url, "--limit", "100000", "--json")
    print(f"store: {size:,.0f} MB")
    print(f"podium --help         : {floor[0]:.2f}s, peak RSS {floor[1]:.0f} MB")
    print(f"podium runs           : {listing[0]:.2f}s, peak RSS {listing[1]:.0f} MB")
    print(f"podium runs --json    : {as_json[0]:.2f}s, peak RSS {as_json[1]:.0f} MB")


if __name__ == "__main__":
    main()
