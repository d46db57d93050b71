"""The fault soak of issue 4 (tests/test_fault_soak.py, bench/reliability.py): many runs of an
LLMAgent whose model fails 30% of calls (429s and 503s) and hangs on 5% (cut by a timeout),
with retries (exponential backoff, full jitter), a breaker on the model endpoint and a
fallback model. In the middle of the soak the model fails every call for a while (a burst
planned with `Chaos`), so the breaker must open, send calls to the fallback while open,
probe when the cool-down is over, and close again once the model answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from podium import Breaker, LLMAgent, LocalBoard, Retry, Runtime, ScriptedModel
from podium.core.records import Event
from podium.testing import Chaos, FaultKind, FaultyModel, Rates

RETRY = Retry(attempts=4, initial_delay=0.001, max_delay=0.01, multiplier=2.0, jitter=True)
BREAKER = Breaker(failures=5, cooldown=0.01, probes=1)


def schedule(calls: int, seed: int, burst_at: int, burst: int) -> Chaos:
    """30% errors and 5% hangs at random (seeded), with `burst` failures in a row from call
    `burst_at` on: the endpoint goes down for a while, then comes back."""
    rates = Rates(fail_rate=0.30, hang_rate=0.05, seed=seed)
    script: list[FaultKind | None] = [rates.draw(i) for i in range(1, calls + 1)]
    script[burst_at : burst_at + burst] = ["error"] * burst
    return Chaos(script, then=rates)


async def soak(
    runs: int = 1000,
    *,
    seed: int = 11,
    hang_timeout: float = 0.02,
    concurrency: int = 1,
    burst: int = 30,
    store: str = "memory://",
) -> dict[str, Any]:
    planned = int(runs * 1.6)
    primary = FaultyModel(
        ScriptedModel.echo(name="primary"), schedule=schedule(planned, seed, planned // 4, burst)
    )
    backup = FaultyModel(ScriptedModel.echo(name="backup"), fail_rate=0.05, seed=seed + 1)
    agent = LLMAgent(
        "support",
        model=primary,
        instructions="Answer the customer.",
        fallback_models=[backup],
        model_breaker=BREAKER,
        retry=RETRY,
        timeout=30,
    )
    kinds: Counter[str] = Counter()
    transitions: list[str] = []

    def listen(e: Event) -> None:
        kinds[e.kind] += 1
        if e.kind.startswith("breaker.") and e.kind != "breaker.rejected":
            transitions.append(f"{e.kind[8:]}:{(e.data or {}).get('circuit')}")

    rt = Runtime(store, retry=RETRY, timeout=hang_timeout, on_event=listen, breakers=LocalBoard())
    t0 = time.perf_counter()
    results = []
    try:
        for start in range(0, runs, concurrency):
            batch = range(start, min(runs, start + concurrency))
            results += await asyncio.gather(*(rt.run(agent, f"ticket {i}") for i in batch))
    finally:
        await rt.close()
    completed = sum(r.ok for r in results)
    return {
        "runs": runs,
        "completed": completed,
        "completion_rate": completed / runs,
        "seconds": time.perf_counter() - t0,
        "model_calls": primary.stats.calls,
        "injected_errors": primary.stats.errors,
        "injected_hangs": primary.stats.hangs,
        "fallback_calls": backup.stats.calls,
        "retries": kinds["step.retried"],
        "fallbacks_used": kinds["fallback.used"],
        "breaker_opened": kinds["breaker.opened"],
        "breaker_half_open": kinds["breaker.half_open"],
        "breaker_closed": kinds["breaker.closed"],
        "breaker_rejected": kinds["breaker.rejected"],
        "breaker_final_state": rt.breakers.state(f"model:{primary.name}"),  # type: ignore[attr-defined]
        "transitions": transitions,
    }
