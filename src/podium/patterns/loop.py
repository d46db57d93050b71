"""`Loop`: run a body agent again and again until a condition holds or a limit is reached.

    polish = Loop("polish", body=reviser, until=critic, max_iterations=5)

Each iteration calls the body through the door (`/<loop>/<body>#<n>`), so every iteration is
journaled and a resumed run replays the iterations it already did. What the body receives:

- by default the current value: the loop's input first, then each output in turn;
- with `state=True` a `LoopState`: the loop's input, the current value, the condition's last
  verdict (a critic's feedback) and the iteration number, for bodies that need all of it.

`until` is a function of the current value (`value -> bool`, sync or async; it must be pure,
because it runs again on resume) or an agent (a critic) whose answer is a verdict: `True` /
`False`, or an object or dict with a bool `done`, `approved`, `stop` or `passed` field. An
agent's verdict is a journaled step, so a model critic is replayed, not asked again. With
`check_first=True` the condition judges the input before the first iteration (a `while`
loop); by default it judges each output after it is made (a `do ... while`).

The loop stops for one of three reasons, given in `LoopResult.stopped`: `"condition"`,
`"max_iterations"` (default 10), or `"no_progress"`: the body gave back a value it had given
before (or its own input), `no_progress` times in a row (default 1; `None` turns it off).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.errors import UsageError
from podium.patterns._common import Verdict
from podium.patterns._progress import StallDetector, fingerprint
from podium.runtime.serde import answer_as

if TYPE_CHECKING:
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

T = TypeVar("T")
StopReason = Literal["condition", "max_iterations", "no_progress"]
Condition = Callable[[Any], Any] | Callable[[Any], Awaitable[Any]] | Any


class LoopResult(BaseModel, Generic[T]):
    """The last value, how many times the body ran, and why the loop stopped."""

    output: T
    iterations: int
    stopped: StopReason


class LoopState(BaseModel):
    """What a body gets with `state=True`: the loop's `input`, the `current` value (the input,
    then the latest output), the condition's last `verdict` (None before the first) and the
    0-based `iteration` about to run."""

    input: Any = None
    current: Any = None
    verdict: Any = None
    iteration: int = 0


class Loop(AgentBase[Any, LoopResult[Any]]):
    """Repeats `body` until `until` holds, `max_iterations` is reached or no progress is made.

    The output is a `LoopResult` whose `output` has the body's declared output type."""

    def __init__(
        self,
        name: str,
        body: Any,
        *,
        until: Condition = None,
        max_iterations: int = 10,
        no_progress: int | None = 1,
        state: bool = False,
        check_first: bool = False,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        if not _is_agent(body):
            raise UsageError(f"Loop {name!r}: body {body!r} is not an agent")
        if until is not None and not (_is_agent(until) or callable(until)):
            raise UsageError(f"Loop {name!r}: until must be a function or an agent")
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise UsageError(f"Loop {name!r}: max_iterations must be an integer")
        if max_iterations < 1:
            raise UsageError(f"Loop {name!r}: max_iterations must be at least 1")
        if no_progress is not None and no_progress < 1:
            raise UsageError(f"Loop {name!r}: no_progress must be at least 1 or None")
        if check_first and until is None:
            raise UsageError(f"Loop {name!r}: check_first needs a condition (until=)")
        self.body = body
        self.until = until
        self.max_iterations = max_iterations
        self.no_progress = no_progress
        self.state = state
        self.check_first = check_first
        self.result_type = _result_type(getattr(body, "output_type", Any))
        self._setup(
            name,
            input_type=Any if state else getattr(body, "input_type", Any),
            output_type=self.result_type,
            retry=retry,
            timeout=timeout,
            description=description,
        )
        self.check_input = None  # the body checks what it is given, once

    async def run(self, input: Any, ctx: RunContext) -> LoopResult[Any]:
        current, verdict = input, None
        stall = StallDetector(self.no_progress or 1)
        stall.observe(fingerprint(input))
        if self.check_first:
            verdict, done = await self._check(current, ctx)
            ctx.emit("loop.check", iteration=0, done=done)
            if done:
                return self._stop(ctx, current, 0, "condition")
        for i in range(1, self.max_iterations + 1):
            given = LoopState(input=input, current=current, verdict=verdict, iteration=i - 1)
            current = await ctx.call(self.body, given if self.state else current)
            done = False
            if self.until is not None:
                verdict, done = await self._check(current, ctx)
            progress = stall.observe(fingerprint(current))
            ctx.emit("loop.iteration", iteration=i, done=done, progress=progress)
            if done:
                return self._stop(ctx, current, i, "condition")
            if self.no_progress is not None and stall.stalled:
                return self._stop(ctx, current, i, "no_progress")
        return self._stop(ctx, current, self.max_iterations, "max_iterations")

    async def _check(self, value: Any, ctx: RunContext) -> tuple[Any, bool]:
        """The condition's raw answer (a critic's feedback travels on) and whether it says
        stop."""
        until: Any = self.until
        if _is_agent(until):
            verdict = await ctx.call(until, value)
            return verdict, answer_as(Verdict, verdict, until.name, ctx.key)
        verdict = until(value)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict, answer_as(Verdict, verdict, f"{self.name}.until", ctx.key)

    def _stop(
        self, ctx: RunContext, value: Any, iterations: int, why: StopReason
    ) -> LoopResult[Any]:
        ctx.emit("loop.stop", stopped=why, iterations=iterations)
        return self.result_type(output=value, iterations=iterations, stopped=why)


def _result_type(out: Any) -> type[LoopResult[Any]]:
    """`LoopResult[<body output type>]`, so a replayed result comes back typed; plain
    `LoopResult` when the body declares nothing pydantic can validate."""
    if out is Any or out is None or out is inspect.Parameter.empty:
        return LoopResult
    try:
        return LoopResult[out]
    except Exception:  # a type pydantic cannot build a schema for
        return LoopResult
