"""`Loop`: run a body agent again and again until a condition holds or a limit is reached.

    polish = Loop("polish", body=reviser, until=critic, max_turns=5)

Each turn calls the body through the door (`/<loop>/<body>#<n>`), so every turn is journaled
and a resumed run replays the turns it already did. What the body receives:

- by default the current value: the loop's input first, then each output in turn;
- with `state=True` a `LoopState`: the loop's input, the current value, the condition's last
  verdict (a critic's feedback) and the iteration number, for bodies that need all of it.

`until` is a function of the current value (`value -> bool`, sync or async; it must be pure,
because it runs again on resume) or an agent (a critic) whose answer is a verdict: `True` /
`False`, or an object or dict with a bool `done`, `approved`, `stop` or `passed` field. An
agent's verdict is a journaled step, so a model critic is replayed, not asked again. With
`check_first=True` the condition judges the input before the first turn (a `while` loop); by
default it judges each output after it is made (a `do ... while`).

The loop runs on the turn driver (`_turns`) and stops with one of its statuses in
`LoopResult.status`: `completed` (the condition holds), `max_turns` (default 10), `stalled`
(the body gave back a value it had given before, or its own input, `max_stalls` times in a
row; default 1, `None` turns it off), `deadline`, or `budget_exhausted` (the door refused a
call); the output is then the last value.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.kinds import (
    REF,
    Builder,
    Canvas,
    Loc,
    NodeFields,
    Ref,
    failed,
    label_of,
    register,
)
from podium.core.bounds import SECONDS, TURNS
from podium.core.serde import answer_as
from podium.errors import UsageError
from podium.patterns._common import Verdict
from podium.patterns._progress import fingerprint
from podium.patterns._turns import (
    Act,
    Ask,
    Halt,
    Limited,
    Limits,
    Outcomes,
    PatternResult,
    Stop,
    TurnState,
    ask,
    deprecated,
    drive,
    renamed_field,
    renamed_options,
    turn,
)

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

T = TypeVar("T")
Condition = Callable[[Any], Any] | Callable[[Any], Awaitable[Any]] | Any

# what `LoopResult.stopped` said, by today's status
_STOPPED = {"completed": "condition", "max_turns": "max_iterations", "stalled": "no_progress"}
_RENAMED = {"max_iterations": "max_turns", "no_progress": "max_stalls"}


class LoopResult(PatternResult, Generic[T]):
    """The last value (`output`), how many times the body ran (`turns`), and why the loop
    stopped (`status`, `reason`)."""

    output: T

    renamed: ClassVar[Mapping[str, str]] = {"iterations": "turns"}
    iterations = renamed_field("iterations", "turns")

    @model_validator(mode="before")
    @classmethod
    def _old_stopped(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "stopped" in data:
            deprecated(f"{cls.__name__}(stopped=...)", "status=...", stacklevel=5)
            data = dict(data)
            old = data.pop("stopped")
            new = {v: k for k, v in _STOPPED.items()}.get(old, old)
            data.setdefault("status", new)
        return data

    @property
    def stopped(self) -> str:
        """Deprecated: `status` (`condition`, `max_iterations` and `no_progress` are now
        `completed`, `max_turns` and `stalled`)."""
        deprecated(f"{type(self).__name__}.stopped", ".status")
        return _STOPPED.get(self.status, self.status)

    def legacy_status(self) -> str | None:
        return _STOPPED.get(self.status)


class LoopState(BaseModel):
    """What a body gets with `state=True`: the loop's `input`, the `current` value (the input,
    then the latest output), the condition's last `verdict` (None before the first) and the
    0-based `iteration` about to run."""

    input: Any = None
    current: Any = None
    verdict: Any = None
    iteration: int = 0


@dataclass(slots=True)
class _State(TurnState):
    input: Any
    current: Any
    verdict: Any = None
    phase: Literal["first", "body", "check"] = "body"


class Loop(Limited, AgentBase[Any, LoopResult[Any]]):
    """Repeats `body` until `until` holds or a limit stops it.

    The output is a `LoopResult` whose `output` has the body's declared output type.
    Renamed options, still accepted for one release with a `DeprecationWarning`:
    `max_iterations` (now `max_turns`) and `no_progress` (now `max_stalls`)."""

    def __init__(
        self,
        name: str,
        body: Any,
        *,
        until: Condition = None,
        max_turns: int = 10,
        max_stalls: int | None = 1,
        deadline: float | None = None,
        state: bool = False,
        check_first: bool = False,
        budget: Budget | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("Loop", renamed, _RENAMED)
        if not _is_agent(body):
            raise UsageError(f"Loop {name!r}: body {body!r} is not an agent")
        if until is not None and not (_is_agent(until) or callable(until)):
            raise UsageError(f"Loop {name!r}: until must be a function or an agent")
        if check_first and until is None:
            raise UsageError(f"Loop {name!r}: check_first needs a condition (until=)")
        self.limits = Limits.checked(
            f"Loop {name!r}",
            max_turns=old.get("max_turns", max_turns),
            max_stalls=old.get("max_stalls", max_stalls),
            deadline=deadline,
        )
        self.body = body
        self.until = until
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
        self.budget = budget

    max_iterations = renamed_field("max_iterations", "limits.max_turns")
    no_progress = renamed_field("no_progress", "limits.max_stalls")

    async def run(self, input: Any, ctx: RunContext) -> LoopResult[Any]:
        st = _State(input=input, current=input)
        stop = await drive(ctx, "loop", partial(self._decide, ctx), st, self.limits)
        return self.result_type(
            output=stop.output, status=stop.status, reason=stop.reason, turns=st.turns
        )

    async def _decide(
        self, ctx: RunContext, st: _State, last: Outcomes | Halt | None
    ) -> Act | Stop:
        if isinstance(last, Halt):
            return Stop(last.status, st.current, last.reason)
        if last is None:
            st.stall.observe(fingerprint(st.input))  # giving back the input is no progress
            if not self.check_first:
                return self._body(st)
            st.phase = "first"
            verdict = await self._verdict(st)
        elif st.phase == "body":
            st.current = last[0]
            if self.until is None:
                return self._judged(st, None, False, ctx)
            st.phase = "check"
            verdict = await self._verdict(st)
        else:
            verdict = last[0]
        if isinstance(verdict, Act):  # an agent judges: its answer comes back as `last`
            return verdict
        done = answer_as(Verdict, verdict, self._judge_name, ctx.key)
        if st.phase == "first":
            ctx.emit("loop.check", iteration=0, done=done)
            st.verdict = verdict
            return Stop("completed", st.current, "the condition holds") if done else self._body(st)
        return self._judged(st, verdict, done, ctx)

    @property
    def _judge_name(self) -> str:
        until: Any = self.until
        return str(until.name) if _is_agent(until) else f"{self.name}.until"

    def _body(self, st: _State) -> Act:
        given = LoopState(
            input=st.input, current=st.current, verdict=st.verdict, iteration=st.turns
        )
        st.phase = "body"
        return turn(Ask(self.body, given if self.state else st.current))

    async def _verdict(self, st: _State) -> Any:
        """The condition's raw answer (a critic's feedback travels on), or the Act that asks
        an agent for it."""
        until: Any = self.until
        if _is_agent(until):
            return ask(until, st.current)
        verdict = until(st.current)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict

    def _judged(self, st: _State, verdict: Any, done: bool, ctx: RunContext) -> Act | Stop:
        """After a turn: stop if the condition holds, else the next turn (the driver stops
        a loop that makes no progress, or has run out of turns)."""
        st.verdict = verdict
        progress = st.stall.observe(fingerprint(st.current))
        ctx.emit("loop.iteration", iteration=st.turns, done=done, progress=progress)
        if done:
            return Stop("completed", st.current, "the condition holds")
        return self._body(st)


def _result_type(out: Any) -> type[LoopResult[Any]]:
    """`LoopResult[<body output type>]`, so a replayed result comes back typed; plain
    `LoopResult` when the body declares nothing pydantic can validate."""
    if out is Any or out is None or out is inspect.Parameter.empty:
        return LoopResult
    try:
        return LoopResult[out]
    except Exception:  # a type pydantic cannot build a schema for
        return LoopResult


# YAML: `kind: loop` ---------------------------------------------------------------------------
class LoopSpec(NodeFields):
    """`body` runs until `until` (`python:module:object`, a function or an agent) or an
    inline `critic` agent says done, or `max_turns`."""

    kind: Literal["loop"]
    body: NodeSpec
    until: Ref | None = Field(None, description=REF + ": value -> bool, or agent")
    critic: NodeSpec | None = None
    max_turns: int = TURNS.field(10, description="times the body runs at most")
    max_stalls: int | None = TURNS.field(
        1, description="repeated values in a row that stop the loop; null turns this off"
    )
    deadline: float | None = SECONDS.field(None, description="seconds for the whole loop")
    state: bool = False
    check_first: bool = False

    @model_validator(mode="after")
    def _one_condition(self) -> LoopSpec:
        if self.until is not None and self.critic is not None:
            raise ValueError("give `until` or `critic`, not both")
        if self.check_first and self.until is None and self.critic is None:
            raise ValueError("`check_first` needs `until` or `critic`")
        return self


def _build(b: Builder, spec: LoopSpec, loc: Loc) -> Loop | None:
    body = b.node(spec.body, (*loc, "body"))
    until = b.function(spec.until, (*loc, "until"), agents=True)
    critic = b.maybe(spec.critic, (*loc, "critic"))
    if body is None or failed(until, critic):
        return None
    return b.construct(
        loc,
        lambda: Loop(
            spec.name,
            body,
            until=critic if critic is not None else until,
            max_turns=spec.max_turns,
            max_stalls=spec.max_stalls,
            deadline=spec.deadline,
            state=spec.state,
            check_first=spec.check_first,
            **b.common(spec),
        ),
    )


def _draw(d: Canvas, agent: Loop, me: str) -> None:
    body = d.draw(agent.body, me)
    until = agent.until
    if until is None:
        d.edge(body, body, f"again (max {agent.max_turns})", dotted=True)
        return
    if hasattr(until, "name") and hasattr(until, "run"):
        check = d.draw(until, me)
    else:
        check = d.box(me, "until", f"until: {label_of(until)}", "{}")
    d.edge(body, check)
    d.edge(check, body, f"again (max {agent.max_turns})", dotted=True)


register(LoopSpec, _build, draws=Loop, draw=_draw, renamed=_RENAMED)
