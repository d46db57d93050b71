"""podium calling podium over A2A, in two processes: a `podium a2a serve` subprocess, and this
one calling it with `RemoteAgent`. A person's question on the far side reaches the near
side's inbox; the answer goes back; a SIGKILL of the caller mid-call starts no second run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a_procs import kill_mid_call_then_resume, podium_serve, stop

from podium import Decision, RemoteAgent, Runtime, Sequential

pytestmark = pytest.mark.xdist_group("a2a_pair")  # one worker, one shared server


@pytest.fixture(scope="module")
def far(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    store = f"sqlite:///{tmp_path_factory.mktemp('far') / 'runs.db'}"
    proc, url = podium_serve("served.py:desk", store)
    try:
        yield url, store
    finally:
        stop(proc)


async def test_a_podium_agent_calls_a_podium_agent(far: tuple[str, str]) -> None:
    url, far_store = far
    desk = RemoteAgent(url, name="desk", poll_interval=0.05)
    async with Runtime("memory://") as rt:
        result = await rt.run(Sequential("near", [desk]), "hello")
        assert (result.status, result.output) == ("completed", "HELLO!")
        task_id = next(s for s in await rt.steps(result.run_id) if s.agent == "desk.send")
    async with Runtime(far_store) as far_rt:  # the far side ran it as a run of its own
        record = await far_rt.get_run(task_id.output["id"])
        assert (record.agent, record.status, record.output) == ("desk", "completed", "HELLO!")


async def test_a_far_question_waits_in_the_near_inbox(far: tuple[str, str]) -> None:
    url, far_store = far
    desk = RemoteAgent(url, name="desk", poll_interval=0.05)
    async with Runtime("memory://") as rt:
        waiting = await rt.run(desk, "ask")
        assert waiting.status == "waiting"
        (asked,) = await rt.inbox()
        assert asked.request["prompt"] == "which colour?"
        done = await rt.resume(waiting.run_id, desk, decision=Decision.answer("teal"))
        assert done.output == "colour teal"
        # an approval far away is answered `yes` near here
        approval = await rt.run(desk, "approve")
        assert (await rt.inbox())[0].request["prompt"] == "go ahead?"
        approved = await rt.resume(approval.run_id, desk, decision=Decision.answer("yes"))
        assert approved.output == "approved"
        # turned down near here: the far run is cancelled, not left waiting
        turned = await rt.run(desk, "ask")
        await rt.resume(turned.run_id, desk, decision=Decision.reject("not now"))
        sent = next(s for s in await rt.steps(turned.run_id) if s.agent == "desk.send")
    async with Runtime(far_store) as far_rt:
        assert (await far_rt.get_run(sent.output["id"])).status == "cancelled"


@pytest.mark.slow  # real processes, one killed
def test_sigkill_of_the_caller_starts_one_far_run(far: tuple[str, str], tmp_path: Path) -> None:
    url, far_store = far
    store = f"sqlite:///{tmp_path / 'near.db'}"
    resumed = kill_mid_call_then_resume(store, "crash-2", url, "slow 1.5")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["completed", "slow", "done"]
    assert len(_far_runs(far_store, "slow 1.5")) == 1


def _far_runs(store: str, text: str) -> list[str]:
    import asyncio

    async def find() -> list[str]:
        async with Runtime(store) as rt:
            runs = await rt.list_runs(limit=1000)
            full = [await rt.get_run(r.run_id) for r in runs]
            return [r.run_id for r in full if r.input == text]

    return asyncio.run(find())
