"""Fallbacks: when a step fails for good (retries exhausted, or its circuit is open), try the
target's `fallbacks` in order, each as its own step under the failed one, so the trace shows
what was tried: `/flow/quote#0` then `/flow/quote#0/cheap_quote#0`.

An agent names fallback agents (`@agent(fallbacks=[...])`); an LLMAgent names fallback models
(`LLMAgent(..., fallback_models=[...])`), tried the same way.
"""

from __future__ import annotations

from typing import Any

from podium.errors import StepError
from podium.runtime.context import RunContext
from podium.runtime.door import Call, Handler


async def fallback(call: Call, nxt: Handler) -> Any:
    fallbacks = getattr(call.target, "fallbacks", None)
    if not fallbacks:
        return await nxt(call)
    try:
        return await nxt(call)
    except StepError as first:
        failure = first
    ctx = RunContext(call.run, call.key, call.name)
    tried: list[str] = []
    for fb in fallbacks:
        call.run.emit(
            "fallback.used",
            call.key,
            call.name,
            data={"fallback": fb.name, "after": f"{type(failure.cause).__name__}: {failure.cause}"},
        )
        try:
            if call.kind == "agent":
                return await ctx.call(fb, call.input)
            return await ctx.invoke(fb, call.kind, call.input)
        except StepError as e:
            tried.append(f"{fb.name}: {type(e.cause).__name__}: {e.cause}")
    err = StepError(call.name, call.key, failure.cause)
    err.args = (f"{failure}; fallbacks failed too ({'; '.join(tried)})",)
    raise err from failure
