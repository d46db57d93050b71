"""Issue 4's proofs at bench scale: the crash test (SIGKILLed workers, SQLite and Postgres),
the fault soak and the saga killed mid-compensation. Prints a table and writes
bench/results/reliability.json.

    python bench/reliability.py                    # 200 runs x 20 kills per store, 5,000-run soak
    python bench/reliability.py --runs 500 --kills 40 --soak 10000
    python bench/reliability.py --no-postgres      # SQLite only
    python bench/reliability.py --pg postgresql://postgres@127.0.0.1:5432/test

The workloads are the test suite's own (tests/chaos_worker.py, tests/soak_flow.py,
tests/saga_worker.py); this script only runs them bigger and reports the figures. It exits
non-zero if a proof does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))

import chaos_worker  # noqa: E402
import soak_flow  # noqa: E402

PG = os.environ.get("PODIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def crash(kind: str, runs: int, kills: int, seed: int, pg: str, tmp: Path) -> dict[str, Any]:
    side = tmp / f"side-{kind}.db"
    if kind == "sqlite":
        return chaos_worker.crash_many(
            f"sqlite:///{tmp / 'store.db'}", side, runs=runs, kills=kills, seed=seed
        ).to_dict()
    schema = f"podium_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(pg, f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg else "?"
    try:
        url = f"{pg}{sep}search_path={schema}"
        return chaos_worker.crash_many(
            url, side, runs=runs, kills=kills, seed=seed, label="postgres"
        ).to_dict()
    finally:
        asyncio.run(_pg(pg, f"DROP SCHEMA {schema} CASCADE"))


def saga(tmp: Path) -> dict[str, Any]:
    """One saga killed during its 2nd compensation, resumed by another process."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_SAGA_SIDE_DB": str(tmp / "saga-side.db"),
        "PODIUM_SAGA_READY": str(tmp / "saga-ready"),
    }
    os.environ["PODIUM_SAGA_SIDE_DB"] = env["PODIUM_SAGA_SIDE_DB"]
    url, run_id = f"sqlite:///{tmp / 'saga.db'}", "saga-bench"
    cmd = [sys.executable, "-m", "saga_worker"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "run", url, run_id],
        cwd=TESTS,
        env={**env, "PODIUM_SAGA_BLOCK_AT": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while not (tmp / "saga-ready").exists():
        if proc.poll() is not None or time.perf_counter() - t0 > 30:
            raise RuntimeError("the saga worker did not reach the blocking compensation")
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    import saga_worker

    before = [s for s, _ in saga_worker.compensations(run_id)]
    out = subprocess.run(
        [*cmd, "resume", url, run_id], cwd=TESTS, env=env, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    comps = saga_worker.compensations(run_id)
    keys = [k for _, k in comps]
    return {
        "compensated_before_kill": before,
        "compensation_order": [s for s, _ in comps],
        "duplicated_compensations": len(keys) - len(set(keys)),
        "status": result["status"],
        "seconds": time.perf_counter() - t0,
    }


def table(results: dict[str, Any]) -> str:
    rows = ["| proof | figures |", "|---|---|"]
    for kind, r in results["crash"].items():
        rows.append(
            f"| crash, {kind} | {r['runs']} runs, {r['kills']} SIGKILLs "
            f"({r['kills_mid_work']} mid-work), {r['completed']} completed, "
            f"{r['dead_lettered']} in DLQ, {r['lost']} lost, {r['duplicated_keys']} duplicated "
            f"effects of {r['effects']}, {r['reconciled_happened']} effects reconciled, "
            f"{r['seconds_total']:.1f} s |"
        )
    s = results["soak"]
    rows.append(
        f"| fault soak | {s['runs']} runs, {s['completion_rate']:.2%} complete, "
        f"{s['injected_errors']} errors + {s['injected_hangs']} hangs injected, "
        f"{s['retries']} retries, {s['fallbacks_used']} fallbacks, breaker opened "
        f"{s['breaker_opened']} / half-open {s['breaker_half_open']} / closed "
        f"{s['breaker_closed']} (final: {s['breaker_final_state']}), {s['seconds']:.1f} s |"
    )
    g = results["saga"]
    rows.append(
        f"| saga killed mid-compensation | before kill {g['compensated_before_kill']}, "
        f"in all {g['compensation_order']}, {g['duplicated_compensations']} twice, "
        f"run {g['status']}, {g['seconds']:.1f} s |"
    )
    return "\n".join(rows)


def holds(results: dict[str, Any]) -> bool:
    ok = all(
        r["lost"] == 0 and r["duplicated_keys"] == 0 and not r["problems"]
        for r in results["crash"].values()
    )
    s, g = results["soak"], results["saga"]
    ok = ok and s["completion_rate"] >= 0.999 and s["breaker_opened"] >= 1
    ok = ok and s["breaker_closed"] >= 1
    return ok and g["compensation_order"] == [4, 3, 2, 1] and g["duplicated_compensations"] == 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--soak", type=int, default=5000)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--pg", default=PG)
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "reliability.json")
    args = p.parse_args()
    results: dict[str, Any] = {"crash": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for kind in ("sqlite",) if args.no_postgres else ("sqlite", "postgres"):
            results["crash"][kind] = crash(kind, args.runs, args.kills, args.seed, args.pg, tmp)
        results["soak"] = asyncio.run(soak_flow.soak(args.soak, seed=args.seed + 7))
        results["saga"] = saga(tmp)
    results["soak"]["transitions"] = results["soak"]["transitions"][:20]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.json}")
    return 0 if holds(results) else 1


if __name__ == "__main__":
    sys.exit(main())
