"""Circuit breakers (local and shared through Redis) and fallbacks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

import pytest

from podium import NO_RETRY, ProviderError, Retry, RunStatus, Runtime, agent
from podium.runtime.breaker import Breaker, LocalBoard
from podium.testing import FakeClock


def flaky_agent(name: str, outcomes: list[bool], **kw: Any) -> tuple[Any, list[int]]:
    """An agent that fails (ProviderError) or succeeds per the next planned outcome."""
    calls: list[int] = []

    async def fn(x: int) -> str:
        calls.append(x)
        ok = outcomes.pop(0) if outcomes else True
        if not ok:
            raise ProviderError("503 from upstream", status=503)
        return f"{name}:{x}"

    return agent(name=name, **kw)(fn), calls


async def kinds(rt: Runtime, run_id: str) -> list[str]:
    return [e.kind for e in await rt.events(run_id)]


async def test_consecutive_failures_open_the_circuit_and_fail_fast() -> None:
    rt = Runtime("memory://", retry=NO_RETRY, breakers=LocalBoard())
    quote, calls = flaky_agent("quote", [False] * 3, breaker=Breaker(failures=3, cooldown=60))
    for i in range(3):
        assert (await rt.run(quote, i)).status == RunStatus.FAILED
    opened_run = (await rt.list_runs(limit=1))[0].run_id
    assert "breaker.opened" in await kinds(rt, opened_run)
    fast = await rt.run(quote, 99)
    assert fast.status == RunStatus.FAILED and "circuit 'agent:quote' is open" in (fast.error or "")
    assert calls == [0, 1, 2]  # the fourth call never ran
    assert "breaker.rejected" in await kinds(rt, fast.run_id)


async def test_half_open_probe_closes_or_reopens() -> None:
    clock = FakeClock()
    board = LocalBoard(clock)
    rt = Runtime("memory://", retry=NO_RETRY, breakers=board, clock=clock)
    cfg = Breaker(failures=1, cooldown=30)
    quote, calls = flaky_agent("quote", [False, False, True], breaker=cfg)
    await rt.run(quote, 1)  # fails: opens
    assert board.state("agent:quote") == "open"
    await clock.advance(29.9)
    early = await rt.run(quote, 9)  # still cooling down: rejected without a call
    assert "is open" in (early.error or "") and calls == [1]
    await clock.advance(0.1)
    probe = await rt.run(quote, 2)  # probe fails: open again
    assert probe.status == RunStatus.FAILED and board.state("agent:quote") == "open"
    assert "breaker.half_open" in await kinds(rt, probe.run_id)
    await clock.advance(30)
    ok = await rt.run(quote, 3)  # probe succeeds: closed
    assert ok.output == "quote:3" and board.state("agent:quote") == "closed"
    assert "breaker.closed" in await kinds(rt, ok.run_id)


async def test_failure_rate_over_a_window_opens() -> None:
    board = LocalBoard()
    rt = Runtime("memory://", retry=NO_RETRY, breakers=board)
    cfg = Breaker(failures=100, failure_rate=0.5, window=4, min_calls=4, cooldown=60)
    quote, _ = flaky_agent("quote", [True, False, True, False], breaker=cfg)
    for i in range(4):
        await rt.run(quote, i)
    assert board.state("agent:quote") == "open"


async def test_bugs_do_not_open_a_circuit() -> None:
    board = LocalBoard()
    rt = Runtime("memory://", retry=NO_RETRY, breakers=board)

    @agent(breaker=Breaker(failures=1))
    def buggy(x: int) -> int:
        raise ValueError("bug")

    await rt.run(buggy, 1)
    assert board.state("agent:buggy") == "closed"


async def test_retries_happen_inside_one_breaker_call() -> None:
    board = LocalBoard()
    rt = Runtime("memory://", retry=Retry(attempts=3, initial_delay=0), breakers=board)
    quote, calls = flaky_agent("quote", [False, False, True], breaker=Breaker(failures=2))
    assert (await rt.run(quote, 1)).output == "quote:1"
    assert len(calls) == 3 and board.state("agent:quote") == "closed"


async def test_fallbacks_are_tried_in_order_and_traced() -> None:
    rt = Runtime("memory://", retry=NO_RETRY)
    backup, _ = flaky_agent("backup", [False])
    cheap, _ = flaky_agent("cheap", [True])
    main, _ = flaky_agent("main", [False], fallbacks=[backup, cheap])
    result = await rt.run(main, 5)
    assert result.output == "cheap:5"
    steps = {s.key: s.status for s in await rt.steps(result.run_id)}
    assert steps == {
        "/main": "completed",
        "/main/backup#0": "failed",
        "/main/cheap#0": "completed",
    }
    used = [e.data["fallback"] for e in await rt.events(result.run_id) if e.kind == "fallback.used"]
    assert used == ["backup", "cheap"]


async def test_an_open_circuit_goes_straight_to_the_fallback() -> None:
    rt = Runtime("memory://", retry=NO_RETRY, breakers=LocalBoard())
    cheap, _ = flaky_agent("cheap", [])
    main, calls = flaky_agent(
        "main", [False], fallbacks=[cheap], breaker=Breaker(failures=1, cooldown=60)
    )
    assert (await rt.run(main, 1)).output == "cheap:1"  # fails, opens, falls back
    assert (await rt.run(main, 2)).output == "cheap:2"  # open: main does not run at all
    assert calls == [1]


async def test_all_fallbacks_failing_names_every_attempt() -> None:
    rt = Runtime("memory://", retry=NO_RETRY)
    backup, _ = flaky_agent("backup", [False])
    main, _ = flaky_agent("main", [False], fallbacks=[backup])
    result = await rt.run(main, 1)
    assert result.status == RunStatus.FAILED
    assert "fallbacks failed too" in (result.error or "") and "backup" in (result.error or "")


def _redis_url() -> str:
    return "redis://127.0.0.1:6379/0"


async def test_redis_board_shares_state_across_runtimes() -> None:
    from podium.runtime.breaker_redis import RedisBoard

    prefix = f"podium-test:{uuid.uuid4().hex}:"
    clock = FakeClock()
    a = RedisBoard(_redis_url(), prefix=prefix, clock=clock)
    b = RedisBoard(_redis_url(), prefix=prefix, clock=clock)
    try:
        cfg = Breaker(failures=2, cooldown=60)
        rt_a = Runtime("memory://", retry=NO_RETRY, breakers=a)
        rt_b = Runtime("memory://", retry=NO_RETRY, breakers=b)
        quote_a, _ = flaky_agent("quote", [False, False], breaker=cfg)
        quote_b, calls_b = flaky_agent("quote", [True], breaker=cfg)
        await rt_a.run(quote_a, 1)
        await rt_a.run(quote_a, 2)
        assert await b.state("agent:quote") == "open"
        rejected = await rt_b.run(quote_b, 3)
        assert "is open" in (rejected.error or "") and calls_b == []
        await clock.advance(60)
        assert (await rt_b.run(quote_b, 4)).output == "quote:4"
        assert await a.state("agent:quote") == "closed"
    finally:
        await a.reset("agent:quote")
        await a.aclose()
        await b.aclose()


def test_redis_board_is_shared_with_another_process() -> None:
    prefix = f"podium-test:{uuid.uuid4().hex}:"
    script = f"""
import asyncio
from podium.runtime.breaker import Breaker
from podium.runtime.breaker_redis import RedisBoard
async def main():
    board = RedisBoard({_redis_url()!r}, prefix={prefix!r})
    cfg = Breaker(failures=1, cooldown=60)
    await board.admit("model:gpt", cfg)
    print(await board.record("model:gpt", cfg, False))
    await board.aclose()
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "opened", out.stderr

    async def check() -> str:
        from podium.runtime.breaker_redis import RedisBoard

        board = RedisBoard(_redis_url(), prefix=prefix)
        try:
            with pytest.raises(Exception, match="is open"):
                await board.admit("model:gpt", Breaker(failures=1, cooldown=60))
            return await board.state("model:gpt")
        finally:
            await board.reset("model:gpt")
            await board.aclose()

    assert asyncio.run(check()) == "open"


async def test_model_fallback_chain_and_endpoint_breaker() -> None:
    from podium import LLMAgent, ScriptedModel

    board = LocalBoard()
    rt = Runtime("memory://", retry=NO_RETRY, breakers=board)
    primary = ScriptedModel([ProviderError("overloaded", status=529)] * 2, name="big")
    cheap = ScriptedModel(["from the cheap model"] * 3, name="small")
    writer = LLMAgent(
        "writer",
        model=primary,
        fallback_models=[cheap],
        instructions="Write.",
        model_breaker=Breaker(failures=2, cooldown=60),
    )
    outputs = [(await rt.run(writer, f"task {i}")).output for i in range(3)]
    assert outputs == ["from the cheap model"] * 3
    assert len(primary.calls) == 2  # the third run found the circuit open: not asked
    assert board.state("model:big") == "open"
    last = (await rt.list_runs(limit=1))[0].run_id
    keys = [s.key for s in await rt.steps(last)]
    assert keys == ["/writer", "/writer/model#0", "/writer/model#0/model#0"]


async def test_runtimes_of_a_process_share_breaker_state_by_default() -> None:
    first = Runtime("memory://", retry=NO_RETRY)
    second = Runtime("memory://", retry=NO_RETRY)
    assert first.breakers is second.breakers
    name = f"shared_{uuid.uuid4().hex[:8]}"
    quote, _ = flaky_agent(name, [False], breaker=Breaker(failures=1, cooldown=60))
    await first.run(quote, 1)
    rejected = await second.run(quote, 2)
    assert f"circuit 'agent:{name}' is open" in (rejected.error or "")


def test_a_redis_url_configures_a_shared_board(monkeypatch: pytest.MonkeyPatch) -> None:
    from podium.runtime.breaker_redis import RedisBoard

    monkeypatch.setenv("PODIUM_REDIS_URL", _redis_url())
    assert isinstance(Runtime("memory://").breakers, RedisBoard)
    monkeypatch.delenv("PODIUM_REDIS_URL")
    assert isinstance(Runtime("memory://", breakers=_redis_url()).breakers, RedisBoard)
    assert isinstance(Runtime("memory://").breakers, LocalBoard)
