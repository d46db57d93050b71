"""`list_runs` (and `podium runs`) read what a listing shows, never what runs produced: a
store of runs with large inputs and outputs lists as fast, and in as little memory, as one
of small runs (OWASP LLM10: a listing must not be a way to make the server read gigabytes)."""

from __future__ import annotations

import tracemalloc

import pytest

from podium.core.records import RunRecord, RunStatus, Usage
from podium.stores import Store

pytestmark = pytest.mark.usefixtures("store")

RUNS = 300
BIG = "x" * 100_000  # 100 KB of output per run: 30 MB in all


async def _fill(store: Store) -> None:
    for i in range(RUNS):
        run = RunRecord(f"run{i:04}", "flow", RunStatus.RUNNING, input={"doc": BIG})
        run.created_at = run.updated_at = float(i)
        await store.create_run(run)
        await store.update_run(
            run.run_id,
            status=RunStatus.COMPLETED if i % 2 else RunStatus.FAILED,
            output={"text": BIG},
            error=None if i % 2 else "E" * 5_000,
            usage=Usage(10, 5, 1),
        )


async def test_a_listing_reads_no_input_no_output_and_the_start_of_an_error(
    store: Store,
) -> None:
    await _fill(store)
    tracemalloc.start()
    try:
        runs = await store.list_runs(limit=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(runs) == RUNS and runs[0].run_id == f"run{RUNS - 1:04}"
    assert all(r.input is None and r.output is None for r in runs)
    failed = [r for r in runs if r.status == RunStatus.FAILED]
    assert failed and all(r.error == "E" * 1000 for r in failed)
    assert runs[0].usage == Usage(10, 5, 1)
    # reading the outputs would hold 2 x 30 MB; a listing holds its rows' few fields
    assert peak < 3_000_000, f"peak {peak:,} bytes while listing"
    whole = await store.get_run("run0001")
    assert whole is not None and whole.output == {"text": BIG} and whole.input == {"doc": BIG}
