"""Faulty stand-ins for a model, a tool and an agent: each looks exactly like what it wraps
(same name, schema, types, policies) so step keys, breakers and the journal see no
difference, and each injects errors, hangs or malformed answers on a seeded schedule.

    model = FaultyModel(ScriptedModel.echo(), fail_rate=0.3, hang_rate=0.05, seed=7)
    charge = flaky_tool(charge, fail_rate=0.2, seed=1)
    step = flaky_agent(step, hang_rate=0.1, seed=2)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from podium.agents.base import AgentBase
from podium.core.tools import ToolSpec
from podium.errors import UsageError
from podium.models.base import Message, Model, ModelResponse, ModelSettings, OutputSchema, ToolCall
from podium.testing.faults import (
    ErrorSpec,
    FailFirst,
    Fault,
    FaultStats,
    Injector,
    Rates,
    Schedule,
    malformed_output,
    rate_limited,
    server_error,
)
from podium.tools.tool import Tool

if TYPE_CHECKING:
    from podium.runtime.context import RunContext
    from podium.runtime.door import Call

When = Literal["before", "after"]
MalformedMode = Literal["raise", "response"]

DEFAULT_MODEL_ERRORS: tuple[ErrorSpec, ...] = (rate_limited(), server_error(503))
_NO_SUCH_TOOL = "podium_testing_no_such_tool"


class _Faulty:
    """What every faulty wrapper shares: the injector and its public view."""

    injector: Injector
    when: When

    def _arm(
        self,
        owner: str,
        when: str,
        schedule: Schedule | None,
        fail_rate: float,
        hang_rate: float,
        seed: int,
        error: ErrorSpec | None,
        hang_for: float,
    ) -> None:
        """Set up failures and hangs (no malformed answers: those are a model's)."""
        self.when = _check_when(owner, when)
        sched = _schedule(owner, schedule, fail_rate, hang_rate, 0.0, seed)
        errors = () if error is None else (error,)
        self.injector = Injector(owner, sched, errors, hang_for=hang_for, kinds=("error", "hang"))

    async def _around(self, delegate: Callable[[], Awaitable[Any]]) -> Any:
        """Delegate, or inject this call's fault: before delegating, or after it (the work
        happens; its answer is lost)."""
        n, kind = self.injector.next()
        if kind is None:
            return await delegate()
        if self.when == "after":
            await delegate()
        if kind == "hang":
            await self.injector.hang(n)
        raise self.injector.error(n)

    @property
    def stats(self) -> FaultStats:
        return self.injector.stats

    @property
    def faults(self) -> list[Fault]:
        """Every fault injected so far, as `(call number, kind)`, in call order."""
        return self.injector.faults


def _schedule(
    owner: str, schedule: Schedule | None, fail: float, hang: float, malformed: float, seed: int
) -> Schedule:
    if schedule is not None:
        if fail or hang or malformed:
            raise UsageError(f"{owner}: give either a schedule or rates, not both")
        return schedule
    return Rates(fail, hang, malformed, seed=seed, owner=owner)


def _check_when(owner: str, when: str) -> When:
    if when not in ("before", "after"):
        raise UsageError(f"{owner}: when must be 'before' or 'after', got {when!r}")
    return when  # type: ignore[return-value]


class FaultyModel(_Faulty):
    """A `Model` that sometimes fails, hangs or answers in a malformed way, then delegates.

    Errors rotate through `errors` (a 429 and a 503 by default). A hang sleeps `hang_for`
    seconds, for a timeout to cut (`LLMAgent(timeout=...)` or the runtime's). A malformed
    answer raises `ModelResponseError` as a provider adapter would (`malformed="raise"`), or
    returns a response that `LLMAgent` itself rejects (`malformed="response"`: broken JSON
    when a schema is asked for, else a call to a tool that does not exist). Any other
    attribute (`calls`, `assert_consumed`, `endpoint`, `breaker`) is the inner model's.
    """

    def __init__(
        self,
        inner: Model,
        *,
        fail_rate: float = 0.0,
        hang_rate: float = 0.0,
        malformed_rate: float = 0.0,
        errors: Sequence[ErrorSpec] = DEFAULT_MODEL_ERRORS,
        hang_for: float = 3600.0,
        malformed: MalformedMode = "raise",
        seed: int = 0,
        schedule: Schedule | None = None,
    ) -> None:
        if not callable(getattr(inner, "respond", None)) or not hasattr(inner, "name"):
            raise UsageError(f"FaultyModel needs a Model (name, respond), got {inner!r}")
        owner = f"faulty model {inner.name!r}"
        if malformed not in ("raise", "response"):
            raise UsageError(f"{owner}: malformed must be 'raise' or 'response'")
        self.inner = inner
        self.name = inner.name
        self.malformed = malformed
        sched = _schedule(owner, schedule, fail_rate, hang_rate, malformed_rate, seed)
        self.injector = Injector(owner, sched, errors or DEFAULT_MODEL_ERRORS, hang_for=hang_for)

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        call, kind = self.injector.next()
        if kind == "error":
            raise self.injector.error(call)
        if kind == "hang":
            await self.injector.hang(call)
        if kind == "malformed":
            if self.malformed == "raise":
                error = malformed_output()
                error.add_note(f"injected by podium.testing: {self.injector.owner}, call #{call}")
                raise error
            return _malformed_response(self.name, call, output_schema)
        return await self.inner.respond(
            messages, tools=tools, output_schema=output_schema, settings=settings
        )

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: do not recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"FaultyModel({self.inner!r}, {self.injector.schedule!r})"


def _malformed_response(name: str, call: int, schema: OutputSchema | None) -> ModelResponse:
    """An answer a well-behaved agent must refuse: broken JSON where a schema was asked
    for (which an `LLMAgent` sends back with the problem), otherwise a call to a tool nobody
    offered (which fails the step, and the door retries it)."""
    if schema is not None:
        return ModelResponse(text='{"broken": ', finish_reason="stop", model=name)
    bad = ToolCall(f"call_malformed_{call}", _NO_SUCH_TOOL, {})
    return ModelResponse(tool_calls=(bad,), finish_reason="tool_calls", model=name)


class FlakyTool(Tool, _Faulty):
    """A `Tool` that keeps everything of the tool it wraps (name, schema, `effect`,
    `idempotent`, `reconcile`, `compensate`, retry, timeout) and sometimes fails or hangs.

    `when="before"` injects instead of running the tool; `when="after"` runs it and then
    fails or hangs, as when the side effect happened but the answer was lost: the case the
    exactly-once layer exists for.
    """

    def __init__(
        self,
        inner: Tool,
        *,
        fail_rate: float = 0.0,
        hang_rate: float = 0.0,
        seed: int = 0,
        error: ErrorSpec | None = None,
        hang_for: float = 3600.0,
        when: When = "before",
        schedule: Schedule | None = None,
    ) -> None:
        if not isinstance(inner, Tool):
            raise UsageError(
                f"FlakyTool needs a Tool (decorate the function with @tool): {inner!r}"
            )
        # Everything the door and the exactly-once layer read is an attribute of the tool.
        self.__dict__.update(inner.__dict__)
        owner = f"flaky tool {inner.name!r}"
        self.inner = inner
        self._arm(owner, when, schedule, fail_rate, hang_rate, seed, error, hang_for)

    def check_input(self, args: Any) -> dict[str, Any]:
        return self.inner.check_input(args)

    async def invoke(self, call: Call) -> Any:
        return await self._around(lambda: self.inner.invoke(call))

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)  # class-level flags of Tool subclasses (ends_turn)

    def __repr__(self) -> str:
        return f"FlakyTool({self.inner!r}, {self.injector.schedule!r})"


def flaky_tool(
    fn_or_tool: Tool | Callable[..., Any],
    *,
    fail_rate: float = 0.0,
    hang_rate: float = 0.0,
    seed: int = 0,
    error: ErrorSpec | None = None,
    hang_for: float = 3600.0,
    when: When = "before",
    schedule: Schedule | None = None,
) -> FlakyTool:
    """A flaky copy of a tool (a plain function is made a `@tool` first)."""
    inner = fn_or_tool if isinstance(fn_or_tool, Tool) else Tool(fn_or_tool)
    return FlakyTool(
        inner,
        fail_rate=fail_rate,
        hang_rate=hang_rate,
        seed=seed,
        error=error,
        hang_for=hang_for,
        when=when,
        schedule=schedule,
    )


_AGENT_FIELDS = (
    "description",
    "input_type",
    "output_type",
    "retry",
    "timeout",
    "check_input",
    "check_output",
)


class FlakyAgent(AgentBase[Any, Any], _Faulty):
    """An agent that keeps the name, types, retry, timeout, fallbacks and breaker of the
    agent it wraps, and sometimes fails or hangs before (or after) delegating to it. Its
    children get the same step keys as the inner agent's would."""

    def __init__(
        self,
        inner: Any,
        *,
        fail_rate: float = 0.0,
        hang_rate: float = 0.0,
        seed: int = 0,
        error: ErrorSpec | None = None,
        hang_for: float = 3600.0,
        when: When = "before",
        schedule: Schedule | None = None,
    ) -> None:
        if not hasattr(inner, "name") or not callable(getattr(inner, "run", None)):
            raise UsageError(f"FlakyAgent needs an agent (name, run), got {inner!r}")
        owner = f"flaky agent {inner.name!r}"
        self.inner = inner
        self.name = inner.name
        for field in _AGENT_FIELDS:
            setattr(self, field, getattr(inner, field, None))
        self.description = self.description or ""
        self.fallbacks = tuple(getattr(inner, "fallbacks", ()) or ())
        self.breaker = getattr(inner, "breaker", None)
        self.target = None  # a resume in another process would load the agent without faults
        self._arm(owner, when, schedule, fail_rate, hang_rate, seed, error, hang_for)

    async def run(self, input: Any, ctx: RunContext) -> Any:
        return await self._around(lambda: self.inner.run(input, ctx))

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"FlakyAgent({self.inner!r}, {self.injector.schedule!r})"


def flaky_agent(
    agent: Any,
    *,
    fail_rate: float = 0.0,
    hang_rate: float = 0.0,
    seed: int = 0,
    error: ErrorSpec | None = None,
    hang_for: float = 3600.0,
    when: When = "before",
    schedule: Schedule | None = None,
) -> FlakyAgent:
    """A flaky copy of any agent (a function agent, an LLMAgent, a pattern)."""
    return FlakyAgent(
        agent,
        fail_rate=fail_rate,
        hang_rate=hang_rate,
        seed=seed,
        error=error,
        hang_for=hang_for,
        when=when,
        schedule=schedule,
    )


def fail_first(n: int, target: Any = None, *, error: ErrorSpec | None = None) -> Any:
    """Fail the first `n` calls, then pass. With no target: a `FailFirst` guard to call in
    your own code. With a tool, a model or an agent: a wrapper whose first `n` calls fail."""
    schedule = FailFirst(n, error=error)
    if target is None:
        return schedule
    if isinstance(target, Tool):
        return FlakyTool(target, error=error, schedule=schedule)
    if callable(getattr(target, "respond", None)):
        errors = DEFAULT_MODEL_ERRORS if error is None else (error,)
        return FaultyModel(target, errors=errors, schedule=schedule)
    if callable(getattr(target, "run", None)):
        return FlakyAgent(target, error=error, schedule=schedule)
    raise UsageError(
        f"fail_first: {target!r} is not a tool, model or agent (decorate a function with "
        "@agent or @tool first)"
    )
