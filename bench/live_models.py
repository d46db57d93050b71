"""podium against a real model server: each live check, and the cost of a model call through
podium over a bare `openai` SDK call to the same server.

    python bench/live_models.py                     # starts llama.cpp's server (the `local` extra)
    python bench/live_models.py --base-url URL      # or uses a running OpenAI-compatible server
    python bench/live_models.py --calls 40 --json out.json --checks text,typed

Checks (the live suite's, as figures): a text answer, a typed answer, a forced tool call then
the answer, `Router.llm`, `Supervisor.llm`, a streamed answer, an agent reused across
`run_sync`. For each: pass or fail, wall time, tokens in and out, requests.

Time to first token (the `stream` check): the same text answer read with `Runtime.stream`,
`--stream-runs` times; the time from asking to the first `model.delta` against the time to
the whole answer (the run's end), medians of both, and beside them a bare `AsyncOpenAI`
stream of the same request (time to its first content chunk, and to its end). Only the
streamed check has a TTFT; the column is empty for the others.

Overhead: the same one-token request (`max_tokens=1`, the same prompt every time, so the
server answers from its prompt cache and model time does not swamp the difference), asked
`--calls` times through a bare `AsyncOpenAI` client and through a whole podium run of an
`LLMAgent` (memory store, and a SQLite file), in alternating order, in the same process. The
figure is the ratio of medians, and the difference of medians in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from podium import (
    LLMAgent,
    ModelSettings,
    OpenAIModel,
    Router,
    RunResult,
    RunStatus,
    Runtime,
    Supervisor,
    agent,
    tool,
)
from podium.testing.llama_server import MODEL_NAME, LlamaServer, missing

RESULTS = Path(__file__).resolve().parent / "results" / "live_models.json"
DEADLINE = 120.0
SHORT = ModelSettings(max_tokens=24, temperature=0.0, seed=1)
TYPED = ModelSettings(max_tokens=96, temperature=0.0, seed=1)
ONE_TOKEN = ModelSettings(max_tokens=1, temperature=0.0, seed=1)
SYSTEM, USER = "Reply with one word.", "Hello there."


@dataclass
class Check:
    name: str
    passed: bool = False
    status: str = ""
    wall_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0
    ttft_s: float | None = None  # time to the first streamed token (the `stream` check)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Weather(BaseModel):
    city: str
    warm: bool


@agent
def billing_desk(message: str) -> str:
    return "billing desk"


@agent
def tech_desk(message: str) -> str:
    return "tech desk"


@agent
def front_desk(message: str) -> str:
    return "front desk"


@tool
def temperature(city: str) -> float:
    """Today's temperature in a city, in Celsius.

    Args:
        city: The city's name.
    """
    return 31.5


# checks --------------------------------------------------------------------------------------
async def _run(subject: Any, input: Any) -> RunResult:
    async with Runtime("memory://") as rt:
        return await rt.run(subject, input, deadline=DEADLINE)


async def check_text() -> tuple[RunResult, bool, str]:
    greeter = LLMAgent("greeter", instructions="Reply in one short sentence.", settings=SHORT)
    r = await _run(greeter, "Say hello to Ada.")
    return r, r.ok and isinstance(r.output, str) and r.usage.output_tokens > 0, repr(r.output)


async def check_typed() -> tuple[RunResult, bool, str]:
    judge = LLMAgent(
        "weather",
        instructions="Say which city the user asks about and whether it is warm there.",
        output_type=Weather,
        settings=TYPED,
    )
    r = await _run(judge, "Is it warm in Rome in July?")
    mode = judge.model.learned_output_mode if isinstance(judge.model, OpenAIModel) else None
    return r, r.ok and isinstance(r.output, Weather), f"{r.output!r}, output mode {mode}"


async def check_tool() -> tuple[RunResult, bool, str]:
    settings = ModelSettings(max_tokens=32, temperature=0.0, seed=1, tool_choice="temperature")
    forecaster = LLMAgent(
        "forecaster",
        instructions="Answer with the temperature tool's help.",
        tools=[temperature],
        settings=settings,
        max_turns=3,
    )
    r = await _run(forecaster, "How warm is it in Rome?")
    return r, r.ok and r.usage.requests == 2, repr(r.output)


async def check_router() -> tuple[RunResult, bool, str]:
    router = Router.llm(
        "front",
        {"billing": billing_desk, "tech": tech_desk},
        model=None,
        fallback=front_desk,
        settings=TYPED,
    )
    r = await _run(router, "I was charged twice on my invoice.")
    return r, r.ok, repr(r.output)


async def check_supervisor() -> tuple[RunResult, bool, str]:
    boss = Supervisor.llm(
        "boss", {"billing": billing_desk}, model=None, review=False, settings=TYPED, max_rounds=1
    )
    r = await _run(boss, "Find out why order 7 was charged twice.")
    clean = r.status == RunStatus.COMPLETED or (
        r.status == RunStatus.FAILED and " at /" in (r.error or "")
    )
    return r, clean, r.status if r.ok else f"failed cleanly: {r.error}"[:120]


async def _first_and_whole(
    events: AsyncIterator[Any], is_text: Callable[[Any], bool]
) -> tuple[float, float, list[Any]]:
    """Seconds to the first item with text, and to the end, reading `events` whole."""
    t0 = time.perf_counter()
    first: float | None = None
    seen = []
    async for item in events:
        if first is None and is_text(item):
            first = time.perf_counter() - t0
        seen.append(item)
    whole = time.perf_counter() - t0
    return (whole if first is None else first), whole, seen


async def check_stream(runs: int) -> Check:
    """A text answer streamed `runs` times through podium and through the bare SDK: time to
    the first token and to the whole answer, medians."""
    from openai import AsyncOpenAI

    base_url = os.environ["PODIUM_MODEL_BASE_URL"]
    greeter = LLMAgent("greeter", instructions="Reply in one short sentence.", settings=SHORT)
    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    messages: list[Any] = [
        {"role": "system", "content": "Reply in one short sentence."},
        {"role": "user", "content": "Say hello to Ada."},
    ]
    podium_first, podium_whole, bare_first, bare_whole = [], [], [], []
    results: list[RunResult] = []
    joined_ok = True
    t0 = time.perf_counter()
    async with Runtime("memory://") as rt:

        async def through_podium() -> None:
            nonlocal joined_ok
            stream = rt.stream(greeter, "Say hello to Ada.", deadline=DEADLINE)
            first, whole, events = await _first_and_whole(stream, lambda e: e.kind == "model.delta")
            result = await stream.result()
            results.append(result)
            text = "".join(e.data["text"] for e in events if e.kind == "model.delta")
            joined_ok = joined_ok and result.ok and text == result.output
            podium_first.append(first)
            podium_whole.append(whole)

        async def bare() -> None:
            chunks = await client.chat.completions.create(
                model=MODEL_NAME, messages=messages, stream=True, **_bare_settings(SHORT)
            )
            first, whole, _ = await _first_and_whole(
                chunks, lambda c: bool(c.choices and c.choices[0].delta.content)
            )
            bare_first.append(first)
            bare_whole.append(whole)

        for i in range(runs):  # alternating order, so drift hits both alike
            for subject in (through_podium, bare) if i % 2 == 0 else (bare, through_podium):
                await subject()
    await client.close()
    med = statistics.median
    return Check(
        "stream",
        joined_ok,
        "completed" if all(r.ok for r in results) else "failed",
        time.perf_counter() - t0,
        sum(r.usage.input_tokens for r in results),
        sum(r.usage.output_tokens for r in results),
        sum(r.usage.requests for r in results),
        ttft_s=med(podium_first),
        note=f"deltas join to the journaled text: {joined_ok}",
        extra={
            "runs": runs,
            "podium_ttft_s": round(med(podium_first), 4),
            "podium_full_s": round(med(podium_whole), 4),
            "bare_sdk_ttft_s": round(med(bare_first), 4),
            "bare_sdk_full_s": round(med(bare_whole), 4),
        },
    )


def _bare_settings(settings: ModelSettings) -> dict[str, Any]:
    return {
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "seed": settings.seed,
    }


CHECKS: dict[str, Callable[[], Awaitable[tuple[RunResult, bool, str]]]] = {
    "text": check_text,
    "typed": check_typed,
    "tool": check_tool,
    "router": check_router,
    "supervisor": check_supervisor,
}


async def run_check(name: str) -> Check:
    t0 = time.perf_counter()
    try:
        result, passed, note = await CHECKS[name]()
    except Exception as e:  # a check that raises failed; the others still run
        return Check(
            name, False, "error", time.perf_counter() - t0, note=f"{type(e).__name__}: {e}"
        )
    u = result.usage
    return Check(
        name,
        passed,
        str(result.status),
        time.perf_counter() - t0,
        u.input_tokens,
        u.output_tokens,
        u.requests,
        note=note[:120],
    )


def check_reuse() -> Check:
    """An agent reused across `run_sync` (each run in a new event loop)."""
    greeter = LLMAgent("greeter", instructions="Reply briefly.", settings=SHORT)
    rt = Runtime("memory://")
    t0 = time.perf_counter()
    results = [rt.run_sync(greeter, "Hello!") for _ in range(3)]
    wall = time.perf_counter() - t0
    passed = all(r.ok for r in results)
    return Check(
        "reuse_run_sync",
        passed,
        "completed" if passed else "failed",
        wall,
        sum(r.usage.input_tokens for r in results),
        sum(r.usage.output_tokens for r in results),
        sum(r.usage.requests for r in results),
        note="; ".join(r.error or "ok" for r in results)[:120],
    )


ALL_CHECKS = (*CHECKS, "stream", "reuse")


# overhead ------------------------------------------------------------------------------------
async def overhead(base_url: str, calls: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER},
    ]
    model = OpenAIModel(MODEL_NAME, base_url=base_url, api_key="unused")
    talker = LLMAgent("talker", model=model, instructions=SYSTEM, settings=ONE_TOKEN)
    folder = tempfile.mkdtemp(prefix="podium-live-bench-")
    memory = Runtime("memory://")
    sqlite = Runtime(f"sqlite:///{Path(folder) / 'podium.db'}")

    async def bare() -> None:
        reply = await client.chat.completions.create(
            model=MODEL_NAME,
            messages=messages,
            max_tokens=1,
            temperature=0.0,
            seed=1,
        )
        assert reply.usage is not None and reply.usage.completion_tokens <= 1

    async def bare_raw() -> None:  # what podium does underneath: the body, parsed as JSON
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL_NAME, messages=messages, max_tokens=1, temperature=0.0, seed=1
        )
        assert json.loads(raw.text)["usage"]["completion_tokens"] <= 1

    def through(rt: Runtime) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            result = await rt.run(talker, USER)
            assert result.ok, result.error

        return go

    subjects = {
        "bare_sdk": bare,
        "bare_sdk_raw": bare_raw,
        "podium_memory": through(memory),
        "podium_sqlite": through(sqlite),
    }
    times: dict[str, list[float]] = {k: [] for k in subjects}
    for fn in subjects.values():  # warm up: connections, the prompt cache, imports
        await fn()
    for i in range(calls):
        order = list(subjects) if i % 2 == 0 else list(reversed(subjects))
        for name in order:
            t0 = time.perf_counter()
            await subjects[name]()
            times[name].append(time.perf_counter() - t0)
    await client.close()
    await model.aclose()
    await memory.close()
    await sqlite.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "calls": calls,
        "median_ms": {k: round(v * 1000, 3) for k, v in med.items()},
    }
    for store in ("memory", "sqlite"):
        key = f"podium_{store}"
        for base, suffix in (("bare_sdk", ""), ("bare_sdk_raw", "_vs_raw")):
            out[f"ratio_{store}{suffix}"] = round(med[key] / med[base], 3)
            out[f"extra_ms_{store}{suffix}"] = round((med[key] - med[base]) * 1000, 3)
    return out


# report --------------------------------------------------------------------------------------
def print_table(checks: list[Check], over: dict[str, Any] | None) -> None:
    head = f"{'check':<16}{'result':<8}{'status':<11}{'wall s':>8}{'tok in':>8}{'tok out':>8}"
    print(f"{head}{'req':>5}  ttft")
    for c in checks:
        ttft = "-" if c.ttft_s is None else f"{c.ttft_s:.3f}"
        print(
            f"{c.name:<16}{'pass' if c.passed else 'FAIL':<8}{c.status:<11}{c.wall_s:>8.2f}"
            f"{c.tokens_in:>8}{c.tokens_out:>8}{c.requests:>5}  {ttft}"
        )
    for c in checks:
        if c.name == "stream":
            x = c.extra
            print(
                f"\nstreamed answer, median of {x['runs']}: "
                f"first token {x['podium_ttft_s']:.3f} s, whole answer {x['podium_full_s']:.3f} s "
                "through podium; bare SDK stream "
                f"{x['bare_sdk_ttft_s']:.3f} s / {x['bare_sdk_full_s']:.3f} s"
            )
    if over is not None:
        m = over["median_ms"]
        print(f"\none-token call, median of {over['calls']} each, in the same process:")
        print(f"  bare openai SDK              {m['bare_sdk']:8.2f} ms")
        print(f"  bare SDK, raw body + json    {m['bare_sdk_raw']:8.2f} ms")
        for store in ("memory", "sqlite"):
            ratio, extra = over[f"ratio_{store}"], over[f"extra_ms_{store}"]
            raw_ratio, raw_extra = over[f"ratio_{store}_vs_raw"], over[f"extra_ms_{store}_vs_raw"]
            print(
                f"  podium run ({store:<6})         {m[f'podium_{store}']:8.2f} ms   "
                f"x{ratio:.3f} of the SDK call ({extra:+.2f} ms), "
                f"x{raw_ratio:.3f} of the raw one ({raw_extra:+.2f} ms)"
            )


async def measure(
    base_url: str, names: list[str], calls: int, stream_runs: int = 5
) -> tuple[list[Check], dict[str, Any] | None]:
    os.environ["PODIUM_MODEL"] = f"openai:{MODEL_NAME}"
    os.environ["PODIUM_MODEL_BASE_URL"] = base_url
    checks = [await run_check(n) for n in names if n in CHECKS]
    if "stream" in names:
        t0 = time.perf_counter()
        try:
            checks.append(await check_stream(stream_runs))
        except Exception as e:  # a check that raises failed; the others still run
            wall = time.perf_counter() - t0
            checks.append(Check("stream", False, "error", wall, note=f"{type(e).__name__}: {e}"))
    over = await overhead(base_url, calls) if calls > 0 else None
    return checks, over


def main(argv: list[str] | None = None) -> int:
    # The checks' agents live inside functions and their runs are never resumed: the warning
    # that such a run stores no target would drown the table.
    logging.getLogger("podium").addFilter(lambda r: "stores no target" not in r.getMessage())
    parser = argparse.ArgumentParser(
        prog="python bench/live_models.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--base-url", help="a running OpenAI-compatible server (default: start llama.cpp's)"
    )
    parser.add_argument("--checks", default=",".join(ALL_CHECKS), help="comma-separated")
    parser.add_argument("--calls", type=int, default=30, help="one-token calls per subject")
    parser.add_argument(
        "--stream-runs", type=int, default=5, help="streamed answers for time to first token"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.checks.split(",") if n.strip()]
    unknown = set(names) - set(ALL_CHECKS)
    if unknown:
        print(
            f"error: unknown check(s) {sorted(unknown)}; checks are {list(ALL_CHECKS)}",
            file=sys.stderr,
        )
        return 2
    server: LlamaServer | None = None
    if args.base_url is None:
        reason = missing()
        if reason is not None:
            print(
                f"error: no --base-url and cannot start llama.cpp's server: {reason}",
                file=sys.stderr,
            )
            return 2
        server = LlamaServer().start()
    base_url = args.base_url or (server.base_url if server else "")
    try:
        checks, over = asyncio.run(measure(base_url, names, args.calls, args.stream_runs))
        if "reuse" in names:
            checks.append(check_reuse())
    finally:
        if server is not None:
            server.stop()
    print_table(checks, over)
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "server": {"kind": "llama.cpp" if server else "given", "model": MODEL_NAME},
        "checks": [asdict(c) for c in checks],
        "overhead": over,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
