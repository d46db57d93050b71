"""Issue 4's saga proof: a six-step workflow whose step 5 fails for good compensates steps
4, 3, 2, 1 in that order, each compensation journaled (`<effect>/compensate#0`) and retried on
a transient failure; and the same holds when the process is SIGKILLed in the middle of the
compensations and another process resumes the run: the rest run, none runs twice, the run
ends `failed`, in the dead-letter queue, with its saga `completed`.

The flow is tests/saga_worker.py; effects and compensations are rows in a SQLite file of
their own, keyed by idempotency key, in the order they happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import saga_worker
from podium import (
    NO_RETRY,
    FunctionAgent,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    ToolContext,
    tool,
)

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
BOOKED = [1, 2, 3, 4]


def effect_key(run_id: str, n: int) -> str:
    return f"/trip/step{n}#0/book{n}#0"


@pytest.fixture
def side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_SAGA_SIDE_DB": str(tmp_path / "side.db"),
        "PODIUM_SAGA_READY": str(tmp_path / "ready"),
    }
    monkeypatch.setenv("PODIUM_SAGA_SIDE_DB", env["PODIUM_SAGA_SIDE_DB"])
    return env


def worker(mode: str, url: str, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "saga_worker", mode, url, run_id],
        cwd=TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"worker exited with {proc.returncode} before blocking:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"the compensation did not block within {timeout}s")
        time.sleep(0.01)


async def journal(url: str, run_id: str) -> tuple[Any, dict[str, str], list[dict[str, Any]]]:
    rt = Runtime(url)
    try:
        record = await rt.get_run(run_id)
        steps = {s.key: str(s.status) for s in await rt.steps(run_id)}
        return record, steps, await rt.dead_letters()
    finally:
        await rt.close()


def check_saga_done(url: str, run_id: str) -> None:
    """Compensated 4, 3, 2, 1 exactly once each, journaled, failed and dead-lettered."""
    comps = saga_worker.compensations(run_id)
    assert [step for step, _ in comps] == [4, 3, 2, 1]
    keys = [key for _, key in comps]
    assert len(set(keys)) == len(keys) == 4  # none twice
    assert keys == [f"{run_id}:{effect_key(run_id, n)}:compensate" for n in (4, 3, 2, 1)]
    assert [step for step, _ in saga_worker.effects(run_id)] == BOOKED  # each effect once
    record, steps, dlq = asyncio.run(journal(url, run_id))
    assert str(record.status) == "failed" and "step 5" in (record.error or "")
    for n in BOOKED:
        assert steps[f"{effect_key(run_id, n)}/compensate#0"] == "completed"
    assert steps["/~saga"] == "completed"
    assert "/trip/step6#0" not in steps  # nothing ran after the failure
    (entry,) = [e for e in dlq if e["run_id"] == run_id]
    assert "step 5" in entry["error"]
    assert entry["saga"]["status"] == "completed"
    assert entry["saga"]["compensated"] == [effect_key(run_id, n) for n in (4, 3, 2, 1)]


def test_failure_at_step_5_compensates_1_to_4_in_reverse(
    side: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').resolve()}"
    proc = worker("run", url, "saga-plain", {**side, "PODIUM_SAGA_FLAKY_AT": "3"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "failed"
    check_saga_done(url, "saga-plain")
    # the compensation of step 3 failed once (transient) and was retried with the same key
    tries = saga_worker.attempts("saga-plain")
    assert tries[f"saga-plain:{effect_key('', 3)}:compensate"] == [1, 2]
    assert tries[f"saga-plain:{effect_key('', 4)}:compensate"] == [1]


def test_sigkill_during_compensation_then_resume_elsewhere(
    persistent_url: str, side: dict[str, str], tmp_path: Path
) -> None:
    run_id = "saga-killed"
    # step 4's compensation fails once and is retried; step 3's (the 2nd) blocks: kill there
    proc = worker(
        "run",
        persistent_url,
        run_id,
        {**side, "PODIUM_SAGA_BLOCK_AT": "3", "PODIUM_SAGA_FLAKY_AT": "4"},
    )
    wait_for(tmp_path / "ready", proc)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9

    assert [s for s, _ in saga_worker.compensations(run_id)] == [4]  # only the first, so far
    record, steps, dlq = asyncio.run(journal(persistent_url, run_id))
    assert str(record.status) == "running" and dlq == []
    assert steps["/~saga"] == "started"
    assert steps[f"{effect_key(run_id, 4)}/compensate#0"] == "completed"

    resumer = worker("resume", persistent_url, run_id, {**side, "PODIUM_SAGA_FLAKY_AT": "2"})
    out, err = resumer.communicate(timeout=30)
    assert resumer.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "failed"
    check_saga_done(persistent_url, run_id)
    tries = saga_worker.attempts(run_id)
    assert tries[f"{run_id}:{effect_key(run_id, 4)}:compensate"] == [1, 2]  # not run again
    assert tries[f"{run_id}:{effect_key(run_id, 2)}:compensate"] == [1, 2]  # retried after resume


async def test_a_resumed_run_compensates_effects_below_agents_replayed_whole() -> None:
    """Steps 1-2 complete, the run parks (graceful shutdown) and is resumed; step 5 then fails
    for good. Steps 1-2 were replayed from the journal as whole agents, never entered, so their
    effects must be found in the journal to be compensated too (4, 3, 2, 1, not just 4, 3)."""
    undone: list[str] = []
    rt = Runtime("memory://", retry=NO_RETRY)
    parked: list[int] = []

    def step(n: int) -> FunctionAgent:
        @tool(name=f"book{n}", effect=True, reconcile=lambda c: None, compensate=undo)
        def book(order: int) -> str:
            return f"booking {n}"

        async def run(order: int, ctx: RunContext) -> int:
            if n == 5:
                raise ValueError("step 5 fails for good")
            if n < 5:
                await ctx.use(book, {"order": order})
            if n == 2 and not parked:
                parked.append(n)
                rt.draining = True  # shutdown: the run parks before step 3
            return order

        return FunctionAgent(run, name=f"step{n}")

    def undo(ctx: ToolContext, result: str) -> None:
        undone.append(result)

    flow = Sequential("trip", [step(n) for n in range(1, 7)])
    first = await rt.run(flow, 7)
    assert first.status == RunStatus.RUNNING and undone == []
    rt.draining = False
    final = await rt.resume(first.run_id, flow)
    assert final.status == RunStatus.FAILED
    assert undone == [f"booking {n}" for n in (4, 3, 2, 1)]
    (entry,) = await rt.dead_letters()
    assert entry["saga"]["status"] == "completed" and len(entry["saga"]["compensated"]) == 4
