"""The turn driver: the one loop under every pattern that goes round (Supervisor, Magentic,
GroupChat, Handoff, Loop, Graph).

A looping pattern only decides, in the manner of langgraph's planning functions driven by a
thin loop:

    decide(state, last) -> Act(calls) | Stop(status, output)

`last` is what came back from the previous `Act` (a tuple, one outcome per call, in order),
`None` the first time, or a `Halt` when a limit ended the turn: the pattern then says how it
stops (or, after a stall, what it tries instead). `decide` keeps its state in `state` and
does no I/O; it is async only where it awaits a user's async predicate. The driver owns the
rest:

- the calls: every `Ask` goes through the door (`ctx.call`, `expect=` for a typed answer);
  the calls of one `Act` run at once, and the first failure (in call order) ends the loop,
  unless the Act `settle`s, in which case each failure comes back as an outcome (a
  suspension still parks the run);
- one `Limits`: `max_turns`, `max_stalls` (turns in a row without progress, as the pattern
  feeds `state.stall`), and `deadline` (seconds of wall time for this invocation; a resumed
  run gets them afresh, its replayed turns cost next to nothing);
- the pattern's own budget (`budget=` on the pattern: the door's `budget` slot refuses a
  call below it with a `BudgetExceededError` whose `key` is the pattern's step key) ends the loop
  with status `budget_exhausted`: the pattern hears it as a `Halt` (after taking in what the
  other calls of a settled Act brought back), nothing more is asked, and its output is what
  it had, with the unfinished work named in `gaps`. A budget above the pattern (the run's, or
  an enclosing pattern's) is not the pattern's to settle: its `BudgetExceededError` goes on up, so
  the run fails (or the enclosing pattern ends with what it had). A member's own budget is
  that member failing, like any other failure;
- the stop event, `<pattern>.stop` with `status`, `reason`, `turns` and the pattern's extras.

One vocabulary of end statuses, for every pattern (`STATUSES`):

    completed         the pattern reached its own end (a plan worked off, a consensus, ...)
    max_turns         `max_turns` turns ran
    stalled           `max_stalls` turns in a row made no progress
    budget_exhausted  the door refused a call: a budget ran out
    deadline          `deadline` seconds passed
    escalated         the pattern stalled and handed the decision to a fallback or a person

Each pattern's result has the same fields: `output`, `status`, `reason` (in words), `gaps`
(what has no result, and why) and `turns`.

A turn starts with an Act that `opens` it (the limits are checked first) and is counted once
the Act that `counts` has run; `turn(...)` does both, which fits most patterns. A Supervisor
opens a turn by asking its planner and counts it when the wave of workers has run.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import BaseModel, Field, model_validator

from podium.core.bounds import SECONDS, TURNS
from podium.errors import BudgetExceededError, StepError, Suspended, UsageError
from podium.patterns._progress import StallDetector
from podium.runtime.budget import Budget

if TYPE_CHECKING:
    from podium.runtime.context import RunContext

Status = Literal["completed", "max_turns", "stalled", "budget_exhausted", "deadline", "escalated"]
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass(frozen=True, slots=True)
class Limits:
    """When a loop must stop whatever its pattern decides; `None` means no such limit."""

    max_turns: int | None = None
    max_stalls: int | None = None
    deadline: float | None = None

    @classmethod
    def checked(
        cls,
        owner: str,
        *,
        max_turns: int | None = None,
        max_stalls: int | None = None,
        deadline: float | None = None,
    ) -> Limits:
        """Limits whose values make sense, or a `UsageError` naming the pattern. The bounds
        are the ones the YAML schema declares for the same keys (`podium.core.bounds`)."""
        return cls(
            TURNS.check_optional(owner, "max_turns", max_turns),
            TURNS.check_optional(owner, "max_stalls", max_stalls),
            SECONDS.check_optional(owner, "deadline", deadline),
        )


class Limited:
    """A looping pattern's limits, readable as its attributes (`chat.max_turns`)."""

    limits: Limits

    @property
    def max_turns(self) -> int | None:
        return self.limits.max_turns

    @property
    def max_stalls(self) -> int | None:
        return self.limits.max_stalls

    @property
    def deadline(self) -> float | None:
        return self.limits.deadline


@dataclass(slots=True)  # not frozen: built every turn, and a frozen init costs more
class Ask:
    """One call of an `Act`: `agent` gets `input` through the door."""

    agent: Any
    input: Any = None
    expect: Any = None  # the answer's type (`ctx.call(..., expect=)`)
    timeout: float | None = None  # None: the agent's own, or the run's
    sender: str | None = None  # whose output `input` is, for type errors


@dataclass(slots=True)
class Act:
    """What a pattern wants run next: its calls, and how they count as a turn."""

    calls: tuple[Ask, ...]
    opens: bool = False  # a turn starts here: the limits are checked before it runs
    counts: bool = False  # the turn's work: the turn is counted once this has run
    settle: bool = False  # failures come back as outcomes (the exception) for the pattern


def ask(agent: Any, input: Any = None, *, expect: Any = None, sender: str | None = None) -> Act:
    """One call that is not a turn of its own (a manager's answer, a review, a synthesis)."""
    return Act((Ask(agent, input, expect, None, sender),))


def turn(*calls: Ask, settle: bool = False) -> Act:
    """A turn: the limits are checked before it, and it counts once it has run."""
    return Act(calls, opens=True, counts=True, settle=settle)


@dataclass(frozen=True, slots=True)
class Stop:
    """The loop ends: why (`status`, `reason`), with what (`output`). `data` goes into the
    stop event; `error`, if any, is raised after it (a pattern that fails on a limit)."""

    status: Status
    output: Any = None
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Halt:
    """A limit ended the turn before its Act ran (or the budget, while it ran)."""

    status: Status
    reason: str
    error: BaseException | None = None


@dataclass(slots=True, kw_only=True)
class TurnState:
    """What the driver keeps in every pattern's state: the turns counted so far, and the
    stall detector the pattern feeds (`stall.observe(fingerprint)` for "never seen before",
    `stall.mark(progress)` for a verdict of its own)."""

    turns: int = 0
    stall: StallDetector = field(default_factory=lambda: StallDetector(1))


S = TypeVar("S", bound=TurnState)
Outcomes = tuple[Any, ...]
Decide = Callable[[S, "Outcomes | Halt | None"], "Act | Stop | Awaitable[Act | Stop]"]


async def drive(
    ctx: RunContext,
    kind: str,
    decide: Decide[S],
    state: S,
    limits: Limits,
    *,
    clock: Callable[[], float] | None = None,
) -> Stop:
    """Run `decide` until it stops; see the module docstring. `kind` prefixes the stop
    event (`supervisor` -> `supervisor.stop`). The deadline is measured on `clock`, by
    default the runtime's (`ctx.clock.monotonic`)."""
    if clock is None:
        clock = ctx.clock.monotonic
    state.stall = StallDetector(limits.max_stalls or 1)
    started = clock()
    last: Outcomes | Halt | None = None
    spent: Halt | None = None
    while True:
        step = decide(state, last)
        if not isinstance(step, Act | Stop):  # a decision that awaited a user's predicate
            step = await step
        if isinstance(step, Stop):
            return _stopped(ctx, kind, state, step)
        if spent is not None:  # the budget is gone: nothing more runs
            if last is spent:  # the pattern asked again after hearing so
                assert spent.error is not None
                raise spent.error
            last = spent  # a settled Act's outcomes are in; now the halt
            continue
        if isinstance(last, Halt) and last.status == "stalled":
            state.stall.streak = 0  # the pattern tries something else: a fresh count
        halt = _limit(state, step, limits, started, clock)
        if halt is not None:
            last = halt
            continue
        try:
            last = await _run(ctx, step)
        except Exception as e:
            refused = exhausted(e, ctx.key)
            if refused is None:
                raise
            last = spent = Halt("budget_exhausted", str(refused), refused)
            continue
        if step.counts:
            state.turns += 1
        if step.settle:
            spent = _refused(last, ctx.key)


def _refused(outcomes: Outcomes, key: str) -> Halt | None:
    """The budget halt owed after a settled Act in which the door refused a call for the
    pattern's own budget; a budget above the pattern goes on up (every call has finished)."""
    halt = None
    for outcome in outcomes:
        if not isinstance(outcome, BaseException) or exhausted(outcome) is None:
            continue
        refused = exhausted(outcome, key)
        if refused is None and not _below(exhausted(outcome), key):
            raise outcome
        if refused is not None and halt is None:
            halt = Halt("budget_exhausted", str(refused), refused)
    return halt


def _limit(
    state: TurnState, act: Act, limits: Limits, started: float, clock: Callable[[], float]
) -> Halt | None:
    if limits.max_stalls is not None and state.stall.stalled:
        return Halt("stalled", f"no progress for {state.stall.streak} turn(s) in a row")
    if not act.opens:
        return None
    if limits.deadline is not None and clock() - started >= limits.deadline:
        return Halt("deadline", f"deadline of {limits.deadline:g}s passed")
    if limits.max_turns is not None and state.turns >= limits.max_turns:
        return Halt("max_turns", f"max_turns={limits.max_turns} reached")
    return None


async def _run(ctx: RunContext, act: Act) -> Outcomes:
    calls = act.calls
    if len(calls) == 1 and not act.settle:  # a sequential step is a plain await
        return (await _call(ctx, calls[0]),)
    outcomes = await asyncio.gather(*[_call(ctx, a) for a in calls], return_exceptions=True)
    for outcome in outcomes:  # every call has finished: none is left running
        signal = isinstance(outcome, Suspended | asyncio.CancelledError)
        if isinstance(outcome, BaseException) and (signal or not act.settle):
            raise outcome
    return tuple(outcomes)


def _call(ctx: RunContext, a: Ask) -> Awaitable[Any]:
    """The door's coroutine for one call (no frame of its own around it)."""
    if a.timeout is None:
        return ctx.call(a.agent, a.input, sender=a.sender, expect=a.expect)
    return ctx.call(a.agent, a.input, timeout=a.timeout, sender=a.sender, expect=a.expect)


def exhausted(error: BaseException, key: str | None = None) -> BudgetExceededError | None:
    """The `BudgetExceededError` behind a failure (a call below refused, wrapped in `StepError`
    by each step it went up through), or None; with `key`, only the budget of the agent at
    that step key (a pattern's own)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, BudgetExceededError):
            return seen if key is None or seen.key == key else None
        seen = seen.cause if isinstance(seen, StepError) else seen.__cause__
    return None


def _below(refused: BudgetExceededError | None, key: str) -> bool:
    """Whether a refused budget belongs to an agent below the step `key` (a member's own)."""
    return refused is not None and refused.key.startswith(key + "/")


def _stopped(ctx: RunContext, kind: str, state: TurnState, stop: Stop) -> Stop:
    data = {"status": stop.status, "reason": stop.reason, "turns": state.turns, **stop.data}
    ctx.emit(f"{kind}.stop", **data)
    if stop.error is not None:
        raise stop.error
    return stop


# results -----------------------------------------------------------------------------------


class Renamed(str):
    """An end status that still equals the name it replaced, for one release, with a
    `DeprecationWarning` (`result.status == "satisfied"` is true for a Magentic that
    completed). It is the new name everywhere else: in JSON, in the journal, in events."""

    old: str

    def __new__(cls, value: str, old: str) -> Renamed:
        made = super().__new__(cls, value)
        made.old = old
        return made

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (str(self), self.old)

    def __eq__(self, other: object) -> bool:
        if str.__eq__(self, other) is True:
            return True
        if isinstance(other, str) and other == self.old:
            warnings.warn(
                f"status {self.old!r} is now {str(self)!r}; compare with the new name "
                "(the old one stops matching in the next release)",
                DeprecationWarning,
                stacklevel=2,
            )
            return True
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


class PatternResult(BaseModel):
    """What every looping pattern answers: `output`, why it stopped (`status` from
    `STATUSES`, `reason` in words), what has no result and why (`gaps`), and `turns`.

    Subclasses name the fields and statuses they renamed (`renamed`, `legacy`), which are
    still read, with a `DeprecationWarning`, for one release."""

    output: Any = None
    status: Status
    reason: str = ""
    gaps: dict[str, str] = Field(default_factory=dict)
    turns: int = 0

    renamed: ClassVar[Mapping[str, str]] = {}  # old field name -> new field name

    @model_validator(mode="before")
    @classmethod
    def _old_field_names(cls, data: Any) -> Any:
        if not cls.renamed or not isinstance(data, Mapping):
            return data
        old = [k for k in data if k in cls.renamed]
        if not old:
            return data
        data = dict(data)
        for name in old:
            new = cls.renamed[name]
            deprecated(f"{cls.__name__}({name}=...)", f"{new}=...")
            data.setdefault(new, data.pop(name))
        return data

    @model_validator(mode="after")
    def _remember_old_status(self) -> PatternResult:
        object.__setattr__(self, "status", renamed_status(self.status, self.legacy_status()))
        return self

    def legacy_status(self) -> str | None:
        """The status this result would have had before the names were unified."""
        return None


def renamed_status(status: str, old: str | None) -> Any:
    """`status`, still equal to its `old` name (if it had another) for one release."""
    return status if old is None or old == status else Renamed(status, old)


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that `old` is an alias of `new` kept for one release."""
    warnings.warn(
        f"{old} is deprecated: use {new} (the old name goes in the next release)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_field(old: str, new: str) -> property:
    """A read-only alias of attribute `new` (dotted: `limits.max_turns`) under its old name,
    with a `DeprecationWarning`."""
    read = attrgetter(new)

    def get(self: Any) -> Any:
        deprecated(f"{type(self).__name__}.{old}", f".{new}")
        return read(self)

    return property(get, doc=f"Deprecated: use `{new}`.")


def renamed_options(
    owner: str, given: Mapping[str, Any], renames: Mapping[str, str]
) -> dict[str, Any]:
    """Old keyword arguments of a pattern's constructor, under their new names, each with a
    `DeprecationWarning`; an unknown one is a `TypeError`, as Python would raise."""
    out: dict[str, Any] = {}
    for old, value in given.items():
        new = renames.get(old)
        if new is None:
            raise TypeError(f"{owner}() got an unexpected keyword argument {old!r}")
        deprecated(f"{owner}({old}=...)", f"{new}=...", stacklevel=4)
        out[new] = value
    return out


def with_max_tokens(owner: str, budget: Budget | None, max_tokens: Any) -> Budget | None:
    """`budget=`, with a pattern's deprecated `max_tokens=` as its token limit: patterns no
    longer count tokens, the door's budget slot does."""
    if max_tokens is None:
        return budget
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise UsageError(f"{owner}: max_tokens must be positive")
    return Budget(tokens=max_tokens) if budget is None else replace(budget, tokens=max_tokens)
