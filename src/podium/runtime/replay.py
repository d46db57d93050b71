"""Replay: re-execute a finished run's orchestration against its journal (Temporal's
determinism check), and nothing else.

Every agent that made calls in the journal runs its code again; every call it makes goes
through a door of its own that answers from the journal and never runs a model, a tool, or
an agent that made no calls (those are the run's facts, not its decisions). The check fails
(`NonDeterminismError`, naming the step) when the code now

- calls a step key the journal does not hold (a new branch, a different agent),
- calls another agent (or a tool where an agent was) at a journaled key,
- returns something else from an agent it re-ran, or fails where it completed,
- never reaches a step the journal completed (a branch no longer taken).

A tool call the run's policy refused has no journal row: its `policy.denied` event stands for
it, and the replay refuses it again. Nothing is written: the run's store is read through a
wrapper that drops events and refuses writes, so replaying a run any number of times leaves
its rows, events and audit chain as they were.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from dataclasses import dataclass, field
from typing import Any

from podium import errors
from podium.core.records import CallKind, Event, RunRecord, StepRecord, StepStatus
from podium.core.serde import to_plain
from podium.errors import (
    BudgetExceededError,
    NonDeterminismError,
    PolicyDeniedError,
    RunLimitExceededError,
    StepError,
    StepTimeoutError,
    UsageError,
)
from podium.runtime.context import RunState, execute
from podium.runtime.door import Call
from podium.runtime.effects import SAGA_KEY

__all__ = ["ReplayReport", "replay_run"]

PARENT_WAIT = 60.0
"""Seconds a replay waits at a step that never finished below one that completed (a
`Parallel` that timed the branch out, or met its quorum without it) for that one to cancel it."""

_YIELDS = 50
"""Turns of the event loop a replay gives the other branches before it stops at a step that
never finished in the run: a replay runs no real work, so they finish or fail within them."""


@dataclass(slots=True)
class ReplayReport:
    """What `Runtime.replay` found: `ok`, or the step where the code decides differently."""

    run_id: str
    agent: str
    status: str  # the run's, as journaled
    ok: bool = True
    step: str | None = None  # where it diverged
    problem: str | None = None
    checked: int = 0  # journal rows the replay matched
    rerun: list[str] = field(default_factory=list)  # agents whose code ran again

    @property
    def error(self) -> NonDeterminismError | None:
        if self.ok:
            return None
        return NonDeterminismError(self.run_id, self.step or "/", self.problem or "")

    def raise_for_status(self) -> ReplayReport:
        """Raise `NonDeterminismError` if the run does not replay; return self otherwise."""
        error = self.error
        if error is not None:
            raise error
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "status": self.status,
            "ok": self.ok,
            "step": self.step,
            "problem": self.problem,
            "checked": self.checked,
            "rerun": self.rerun,
        }


class _Diverged(Exception):
    """Raised inside the replay at the first difference; carries it out."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"{step}: {problem}")
        self.step = step
        self.problem = problem


class _Cut(BaseException):
    """Stops a replay at a step that never finished in the run (not an error any pattern
    may catch and carry on from)."""


class ReadOnlyStore:
    """A store seen by a replay: reads pass through, events are dropped, writes refused."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.url = store.url

    def record_event(self, event: Event) -> None:
        pass  # a replay's events (patterns' decisions) are not the run's

    def __getattr__(self, name: str) -> Any:
        if name in ("kv_get", "kv_list", "get_run", "load_steps", "list_events", "list_runs"):
            return getattr(self._store, name)
        if name in ("kv_put", "kv_delete", "kv_update", "record_started", "record_finished"):
            return self._refuse
        return getattr(self._store, name)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise UsageError(
            "a replay never writes to the store: a step tried to (replay re-runs "
            "only orchestration; keep writes in tools)"
        )


class JournalClock:
    """Time as the journal tells it, so decisions made on the clock (a pattern's `deadline`)
    replay as they were made: an agent re-run starts at its row's start, and each step
    answered from the journal moves the clock to that step's end. It never goes back (steps
    of parallel branches, or of an earlier process, may end before a later start); `sleep`
    moves it on without waiting."""

    __slots__ = ("t",)

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)

    def at(self, moment: float | None) -> None:
        if moment is not None and moment > self.t:
            self.t = moment


class _Replayer:
    """The replay's door: every call is matched against the journal."""

    def __init__(self, run_id: str, steps: list[StepRecord], events: list[Event]) -> None:
        self.run_id = run_id
        self.journal = {s.key: s for s in steps if s.key != SAGA_KEY}
        self.order = [s.key for s in steps if s.key != SAGA_KEY]
        # keys that have journaled calls below them: their agents' code runs again
        self.parents = {k.rsplit("/", 1)[0] for k in self.journal}
        self.denied = {e.key: e for e in events if e.kind == "policy.denied" and e.key}
        # a run limit passed at a step: the run stopped there (`run.limit`)
        self.limits = {e.key: e for e in events if e.kind == "run.limit" and e.key}
        # steps whose children the door's fallback slot made, not the agent's code
        self.fell_back = {e.key for e in events if e.kind == "fallback.used"}
        self.cut: str | None = None  # a step that never finished, where the run was stopped
        self.limited = False
        # a budget's scope label -> its step key, for the refusals rebuilt from the journal
        self.scopes = {
            str((e.data or {}).get("scope")): e.key for e in events if e.kind == "budget.exceeded"
        }
        self.reached: set[str] = set()
        self.leaves: list[str] = []  # answered whole: what is below them is not re-run
        self.rerun: list[str] = []
        self.first: _Diverged | None = None  # kept even if a pattern swallows the error
        self.clock = JournalClock(min((s.started_at for s in steps), default=0.0))

    def diverged(self, step: str, problem: str) -> _Diverged:
        error = _Diverged(step, problem)
        if self.first is None:
            self.first = error
        return error

    async def __call__(self, call: Call) -> Any:
        key = call.key
        limit = self.limits.get(key)
        if limit is not None:
            self.reached.add(key)
            self.limited = True
            data = limit.data or {}
            raise RunLimitExceededError(
                self.run_id,
                str(data.get("limit", "")),
                float(data.get("maximum", 0)),
                float(data.get("used", 0)),
                key,
            )
        row = self.journal.get(key)
        if row is None:
            return self._unjournaled(call)
        if row.agent != call.name or row.kind != call.kind:
            raise self.diverged(
                key,
                f"the code now calls {call.kind} {call.name!r} here, the journal has "
                f"{row.kind} {row.agent!r}",
            )
        self.reached.add(key)
        if call.kind == CallKind.AGENT and key in self.parents and key not in self.fell_back:
            self.clock.at(row.started_at)
            return await self._rerun(call, row)
        self.leaves.append(key)
        self.clock.at(row.ended_at)
        if row.status == StepStatus.COMPLETED:
            output = row.output
            check = call.check_output
            return output if check is None or output is None else check(output)
        if row.status == StepStatus.FAILED:
            raise rebuilt(row.error or "RuntimeError: failed", self.scopes)
        # Never finished: the run was stopped while it ran (its deadline, a crash, a sibling's
        # failure). Let the other branches go first (a failing one cancels this), then stop.
        for _ in range(_YIELDS):
            await asyncio.sleep(0)
        if self._finished_above(key):
            # its caller went on without it: the caller's own timeout or quorum cancelled it,
            # and cancels this wait as it did then (on the clock of asyncio, as then)
            await asyncio.sleep(PARENT_WAIT)
        if self.cut is None:
            self.cut = key
        raise _Cut(key)

    def _finished_above(self, key: str) -> bool:
        """Whether a step above `key` completed: it went on without `key`'s branch."""
        while "/" in key[1:]:
            key = key.rsplit("/", 1)[0]
            row = self.journal.get(key)
            if row is not None and row.status == StepStatus.COMPLETED:
                return True
        return False

    def _unjournaled(self, call: Call) -> Any:
        denial = self.denied.get(call.key)
        if denial is not None and (denial.data or {}).get("tool") == call.name:
            self.reached.add(call.key)
            data = denial.data or {}
            raise PolicyDeniedError(
                str(data.get("reason", "refused by policy")),
                tool=call.name,
                agent=str(data.get("agent", "")),
                rule=str(data.get("rule", "")),
                reason=str(data.get("reason", "")),
                args_hash=str(data.get("args_hash", "")),
            )
        parent = call.key.rsplit("/", 1)[0]
        known = [k.rsplit("/", 1)[1] for k in self.order if k.rsplit("/", 1)[0] == parent]
        held = f"the journal has {', '.join(known)} there" if known else "none below it"
        raise self.diverged(
            call.key,
            f"the code now calls {call.kind} {call.name!r}, which the journal does "
            f"not hold ({held})",
        )

    async def _rerun(self, call: Call, row: StepRecord) -> Any:
        self.rerun.append(call.key)
        try:
            output = await execute(call)
        except _Diverged:
            raise
        except Exception as e:
            if row.status == StepStatus.FAILED:
                raise
            if self.cut is not None and row.status != StepStatus.COMPLETED:
                raise _Cut(self.cut) from e  # stopped below, as the run was: not a failure
            done = "completed" if row.status == StepStatus.COMPLETED else "never finished"
            raise self.diverged(
                call.key,
                f"agent {call.name!r} now fails ({type(e).__name__}: {e}); it {done} in the run",
            ) from e
        missed = self.unreached(call.key + "/")
        if missed is not None:
            raise self.diverged(missed.key, _no_longer(missed))
        if row.status != StepStatus.COMPLETED:
            raise self.diverged(call.key, f"agent {call.name!r} now completes; it {row.status}")
        if _plain(call.run.scrub(output)) != _plain(row.output):
            raise self.diverged(
                call.key, f"agent {call.name!r} now returns another output than the journaled one"
            )
        return output

    def unreached(self, under: str = "/") -> StepRecord | None:
        """The first completed row (below `under`) the replay never reached, nor answered
        whole from above."""
        below = tuple(k + "/" for k in self.leaves)
        for key in self.order:
            if not key.startswith(under):
                continue
            row = self.journal[key]
            if key in self.reached or row.status != StepStatus.COMPLETED:
                continue
            if below and key.startswith(below):
                continue
            return row
        return None


_STEP = re.compile(r"agent '(?P<agent>[^']*)' at (?P<step>\S+) failed: (?P<cause>.*)\Z", re.S)
_TIMEOUT = re.compile(r"agent '(?P<agent>[^']*)' at (?P<step>\S+) timed out after (?P<s>\S+)s\Z")
_BUDGET = re.compile(
    r"(?P<scope>.+) budget exhausted: (?P<limit>\w+) (?P<spent>\S+) of (?P<max>\S+) spent; "
    r"(?P<kind>\w+) call at (?P<step>\S+) not started\Z",
    re.S,
)


def rebuilt(text: str, scopes: dict[str, str]) -> BaseException:
    """The error a journaled failure (`Type: message`) was, as near as its text tells: the
    same type and message, and the fields patterns read (a `StepError`'s cause, a timeout's
    step, a budget refusal's scope key), so the orchestration handles it as it did."""
    name, sep, message = text.partition(": ")
    if sep and name == "StepError" and (m := _STEP.match(message)):
        return StepError(m["agent"], m["step"], rebuilt(m["cause"], scopes))
    if sep and name == "StepTimeoutError" and (m := _TIMEOUT.match(message)):
        return StepTimeoutError(m["agent"], m["step"], _number(m["s"]))
    if sep and name == "BudgetExceededError" and (m := _BUDGET.match(message)):
        return BudgetExceededError(
            m["scope"],
            m["limit"],
            _number(m["max"]),
            _number(m["spent"]),
            m["step"],
            m["kind"],
            scopes.get(m["scope"], ""),
        )
    cls = getattr(errors, name, None) or getattr(builtins, name, None)
    if not sep or not (isinstance(cls, type) and issubclass(cls, Exception)):
        return RuntimeError(text)
    try:
        return cls(message)
    except TypeError:  # a podium error built from fields: its message is what it says
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        return error


def _number(text: str) -> float:
    try:
        return float(text.strip("$s").replace(",", ""))
    except ValueError:
        return 0.0


def _no_longer(row: StepRecord) -> str:
    return f"the journal completed {row.kind} {row.agent!r} here, which the code no longer calls"


def _plain(value: Any) -> Any:
    try:
        return to_plain(value)
    except Exception:  # a value to_plain cannot take: compare its text
        return repr(value)


async def replay_run(
    store: Any,
    record: RunRecord,
    agent: Any,
    input: Any,
    steps: list[StepRecord],
    events: list[Event],
    *,
    tiers: Any = None,
    prices: Any = None,
    connections: Any = None,
) -> ReplayReport:
    """Replay `record`'s orchestration (`agent` on `input`) against `steps`; see the module.
    `connections` are the runtime's (an agent lists its MCP servers' tools as it did)."""
    report = ReplayReport(record.run_id, record.agent, str(record.status))
    door = _Replayer(record.run_id, steps, events)
    state = RunState(
        record.run_id,
        ReadOnlyStore(store),
        door,
        prior=dict(door.journal),
        clock=door.clock,
        tiers=tiers,  # the runtime's: agents asking for a tier resolve it as they did
        prices=prices,
        connections=connections,
    )
    root = Call(state, "", agent, CallKind.AGENT, "/" + agent.name, input, None, None)
    try:
        await door(root)
    except _Diverged:
        pass  # door.first has it
    except (_Cut, BaseExceptionGroup) as e:
        if isinstance(e, BaseExceptionGroup) and e.subgroup(_Cut) is None:
            raise
        if record.status != "failed" and door.first is None:
            report.ok, report.step = False, door.cut
            report.problem = "the code now waits at a step that never finished in the run"
    except Exception as e:
        if record.status != "failed" and door.first is None:
            step = getattr(e, "step", None) or root.key
            report.ok, report.step = False, str(step)
            report.problem = f"the run now fails ({type(e).__name__}: {e}); it completed"
    else:
        if record.status == "failed" and door.first is None and not door.limited:
            report.ok, report.step = False, root.key
            report.problem = f"the run now completes; it failed ({record.error})"
    if door.first is not None:
        report.ok, report.step, report.problem = False, door.first.step, door.first.problem
    if report.ok and (missed := door.unreached()) is not None:
        report.ok, report.step = False, missed.key
        report.problem = _no_longer(missed)
    report.checked = len(door.reached)
    report.rerun = door.rerun
    return report
