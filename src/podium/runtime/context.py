"""What an agent sees while it runs: `RunContext`, with the door (`call`, `use`).

One `RunState` per run holds what every step of that run shares (store, chain, replay map,
usage, event counter); one cheap `RunContext` per agent invocation holds where we are in the
run tree. Neither points back to the other's children, so a finished run leaves no cycles for
the garbage collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from podium.core.choices import choice
from podium.core.clock import Clock, clock_or_default
from podium.core.records import ZERO_USAGE, CallKind, Event, StepRecord, Usage
from podium.core.serde import answer_as, describe_validation_error
from podium.errors import HandoffTypeError, OutputTypeError, RunLimitExceededError, UsageError
from podium.runtime.door import Call, Doors, Handler
from podium.runtime.kv import KeyValue
from podium.runtime.limits import DEFAULT_LIMITS
from podium.runtime.privacy import scrub_secrets, scrub_text
from podium.runtime.stream import DELTA

if TYPE_CHECKING:
    from podium.governance.policy import Policy
    from podium.models.prices import Prices
    from podium.models.tiers import Tiers
    from podium.observability.otel import RunTrace
    from podium.runtime.budget import Ledger
    from podium.runtime.cache import CacheStore
    from podium.runtime.connections import Connections
    from podium.runtime.effects import Effect
    from podium.runtime.guard import Guard
    from podium.runtime.policies import Retry
    from podium.runtime.privacy import RunPrivacy
    from podium.runtime.taint import TaintState
    from podium.stores.base import Store

Out = TypeVar("Out")

# A nested call runs in a task of its own every this many levels of the run tree.
FRESH_STACK_EVERY = 16
# The longest step key: every store indexes (run id, key), and Postgres refuses an index entry
# over 2,704 bytes. Checked here, so that a run too deep fails the same way on every store.
MAX_KEY_LENGTH = 2000

_UNSET: Any = object()

# Events whose data podium makes from names and numbers it chose (the kind of step, a
# model's name and tier, a completed run's usage, a run's limits and policy digests):
# nothing a user or a model wrote, so no scan (a trace's ids, hex, could look like a key).
# `step.started` is on every hop.
_OWN_DATA = frozenset({"step.started", "run.completed", "run.config", "trace.started"})


class Drain:
    """Shared by a runtime and its runs: when `on`, no new step starts (graceful shutdown)."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


class RunState:
    """Shared by every step of one run."""

    __slots__ = (
        "cache",
        "caching",
        "clock",
        "connections",
        "door",
        "doors",
        "drain",
        "effects",
        "exceeded",
        "guard",
        "guarded",
        "history",
        "journal_bytes",
        "kv",
        "ledger",
        "listeners",
        "live",
        "lost",
        "max_journal_bytes",
        "max_steps",
        "metered",
        "prices",
        "prior",
        "privacy",
        "replay",
        "replay_only",
        "replaying",
        "retry",
        "run_id",
        "scrub",
        "scrub_text",
        "seq",
        "steps",
        "store",
        "taint",
        "tiers",
        "timeout",
        "trace",
        "usage",
    )

    def __init__(
        self,
        run_id: str,
        store: Store,
        door: Handler,
        *,
        replay: dict[str, StepRecord] | None = None,
        prior: dict[str, StepRecord] | None = None,
        listeners: tuple[Callable[[Event], Any], ...] = (),
        retry: Retry | None = None,
        timeout: float | None = None,
        drain: Drain | None = None,
        live: Callable[[Event], None] | None = None,
        prices: Prices | None = None,
        history: list[Event] | None = None,
        doors: Doors | None = None,
        cache: CacheStore | None = None,
        tiers: Tiers | None = None,
        clock: Clock | None = None,
        connections: Connections | None = None,
    ) -> None:
        self.run_id = run_id
        # The runtime's long-lived connections (MCP sessions), shared by its runs; None in
        # a run state made only to replay a journal.
        self.connections = connections
        self.clock = clock_or_default(clock)  # the runtime's: timestamps, backoff, deadlines
        self.drain = drain or Drain()
        self.store = store
        self.kv = KeyValue.of(store)  # the key-value service steps use (`ctx.kv`)
        self.door = door
        # Fuller variants of the same door (the budget slot, the cache slot), taken once a
        # budget or a cached model or tool shows up: a run with neither never pays for them.
        self.doors = doors
        self.replaying = bool(replay)
        self.metered = self.caching = doors is None  # in the door already (or no other door)
        self.guarded = doors is None  # the contain slot: guardrails, taint (see `contain_on`)
        self.replay = replay
        self.prior = prior
        self.replay_only = False  # a saga began: replay to find effects, run nothing new
        self.lost = False  # its lease was taken: start no new step
        self.effects: list[Effect] = []  # completed effects that can be compensated
        self.usage: Usage = ZERO_USAGE
        self.seq = 0
        self.listeners = listeners
        # Someone reads this run as it happens (`Runtime.stream`): model steps stream their
        # text to it. None, the default, costs the door nothing and models just respond.
        self.live = live
        self.retry = retry
        self.timeout = timeout
        self.prices = prices  # what model calls cost (None: not priced)
        self.history = history  # a resumed run's earlier events, for its budgets
        self.ledger: Ledger | None = None  # open budget scopes, once a budget shows up
        self.cache = cache  # where cached answers live (the runtime's cache store)
        self.tiers = tiers  # which models the tiers agents ask for are (the runtime's)
        # What its tool calls are checked against (`podium.runtime.guard`), once the run has
        # a policy or uses a tool that needs approval: until then the policy slot is skipped.
        self.guard: Guard | None = None
        # Who may see which PII (`Runtime(pii=...)`); None: PII as it is, secrets masked.
        self.privacy: RunPrivacy | None = None
        # What every stored value and error message goes through (the journal's outputs and
        # errors, event data, the run's output): secrets masked, and with `privacy` every
        # sensitive value a token (`use_privacy`). Attributes, not methods: one call less.
        self.scrub: Callable[[Any], Any] = scrub_secrets
        self.scrub_text: Callable[[str | None], str | None] = scrub_text
        # The run's limits (`podium.runtime.limits`): steps journaled and output bytes kept,
        # counted on from the journal when the run resumes. Passing one is sticky: the run
        # fails with it even if a pattern carried on without the refused step.
        self.steps = 0
        self.max_steps = DEFAULT_LIMITS.max_steps
        self.journal_bytes = 0
        self.max_journal_bytes = DEFAULT_LIMITS.max_journal_bytes
        self.exceeded: RunLimitExceededError | None = None
        self.taint: TaintState | None = None  # labels of untrusted content (`taint=True`)
        self.trace: RunTrace | None = None  # its OpenTelemetry spans, when traced

    def trace_on(self, trace: RunTrace) -> None:
        """Send this run's calls through the trace slot: a span per step (see
        `podium.observability.otel`); the run's events of a step become its span's events."""
        self.trace = trace
        self.listeners = (*self.listeners, trace.on_event)
        self._switch()

    def guard_on(self, policies: Iterable[Policy] = ()) -> None:
        """Send this run's calls through the policy slot from now on, checked against
        `policies` (and every tool's own `needs_approval`)."""
        if self.guard is None:
            from podium.runtime.guard import Guard

            self.guard = Guard(policies)
            self._switch()

    def use_privacy(self, privacy: RunPrivacy) -> None:
        """Apply `privacy` to this run: the door's privacy slot reads it, and what the run
        stores keeps tokens."""
        self.privacy = privacy
        self.scrub = privacy.store_form
        self.scrub_text = privacy.store_text
        self._switch()

    def over_limit(
        self, limit: str, maximum: float, used: float, key: str
    ) -> RunLimitExceededError:
        """The error of a limit this run passed at step `key`, remembered (see `exceeded`)."""
        error = RunLimitExceededError(self.run_id, limit, maximum, used, key)
        if self.exceeded is None:
            self.exceeded = error
            self.emit("run.limit", key, data={"limit": limit, "maximum": maximum, "used": used})
        return error

    def meter(self) -> None:
        """Send this run's calls through the budget slot from now on."""
        if not self.metered:
            self.metered = True
            self._switch()

    def cache_on(self) -> None:
        """Send this run's calls through the cache slot from now on."""
        if not self.caching:
            self.caching = True
            self._switch()

    def contain_on(self) -> None:
        """Send this run's calls through the contain slot from now on: the run is
        contained, or an agent with guardrails showed up (see `podium.runtime.taint`)."""
        if not self.guarded:
            self.guarded = True
            self._switch()

    def _switch(self) -> None:
        if self.doors is not None:
            used = (
                ("budget", self.metered),
                ("cache", self.caching),
                ("policy", self.guard is not None),
                ("contain", self.guarded),
                ("privacy", self.privacy is not None),
                ("trace", self.trace is not None),
            )
            on = frozenset(slot for slot, is_used in used if is_used)
            self.door = self.doors.get(self.replaying, on)

    def emit(
        self,
        kind: str,
        key: str = "",
        agent: str = "",
        attempt: int = 0,
        duration: float | None = None,
        usage: Usage | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.seq += 1
        now = self.clock.now()
        if data is not None and kind not in _OWN_DATA:
            data = self.scrub(data)
        event = Event(self.run_id, self.seq, now, kind, key, agent, attempt, duration, usage, data)
        self.store.record_event(event)
        for listener in self.listeners:
            listener(event)

    def emit_delta(self, key: str, agent: str, attempt: int, text: str) -> None:
        """A piece of a model step's text, for the live reader only: deltas are neither
        journaled nor counted in `seq` (the step's journaled answer holds the whole text)."""
        live = self.live
        if live is not None:
            event = Event(self.run_id, self.seq, self.clock.now(), DELTA, key, agent, attempt)
            event.data = {"text": text}
            live(event)


class RunContext:
    """Handed to every agent: where it is in the run, and the door to other agents and tools."""

    __slots__ = ("_counters", "_run", "agent_name", "key")

    def __init__(self, run: RunState, key: str, agent_name: str) -> None:
        self._run = run
        self.key = key
        self.agent_name = agent_name
        self._counters: dict[str, int] | None = None

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def clock(self) -> Clock:
        """The runtime's clock (`Runtime(clock=...)`): read it, rather than the `time` module,
        for anything a test should be able to move forward (deadlines, timestamps)."""
        return self._run.clock

    @property
    def tiers(self) -> Tiers | None:
        """The runtime's model tiers (`Runtime(tiers=...)`), or None."""
        return self._run.tiers

    @property
    def connections(self) -> Connections | None:
        """The runtime's shared connections (MCP servers' sessions, `podium.MCPServer`),
        one per server, closed with the runtime; None outside a runtime's run."""
        return self._run.connections

    @property
    def usage(self) -> Usage:
        """Tokens, requests and dollars the whole run has spent so far."""
        return self._run.usage

    @property
    def kv(self) -> KeyValue | None:
        """Values that outlive the run (`get`, `put`, `list`, atomic `update`), kept in the
        run's store; None when that store has no key-value API."""
        return self._run.kv

    def previous(self) -> StepRecord | None:
        """This step's journal row from before the run was resumed (a suspended or failed
        attempt), or None. A waiting step reads it to keep its original deadline."""
        prior = self._run.prior
        return None if prior is None else prior.get(self.key)

    def _next_key(self, name: str) -> str:
        counters = self._counters
        if counters is None:
            counters = self._counters = {}
        n = counters.get(name, 0)
        counters[name] = n + 1
        return f"{self.key}/{name}#{n}"

    async def call(
        self,
        agent: Any,
        input: Any = None,
        *,
        timeout: float | None = _UNSET,
        retry: Retry | None = _UNSET,
        sender: str | None = None,
        expect: Any = None,
    ) -> Any:
        """Hand `input` to `agent` through the door and return its output.

        The step key is deterministic (parent key, agent name, a counter of that name here), so
        on resume a completed call returns its journaled output instead of running again.
        `sender` names the agent whose output `input` is, for type errors (default: this one).
        `expect` is the type the caller needs back (a pattern asking a role agent for a
        `Plan`, say): the output, journaled as the agent gave it, is returned as that type,
        or the call fails with `OutputTypeError` naming the agent, its step and the field.
        """
        check = getattr(agent, "check_input", None)
        if check is not None:
            try:
                input = check(input)
            except ValidationError as e:
                raise HandoffTypeError(
                    sender or self.agent_name, agent.name, describe_validation_error(e)
                ) from None
        run = self._run
        if not run.metered and getattr(agent, "budget", None) is not None:
            run.meter()  # an agent with a budget: its calls, and all below, are metered
        if not run.guarded and getattr(agent, "guarded", False):
            run.contain_on()  # an agent with guardrails: they run in the contain slot
        call = self._call(agent, CallKind.AGENT, input, timeout, retry)
        output = await self._enter(call)
        return output if expect is None else answer_as(expect, output, call.name, call.key)

    async def map(
        self, agent: Any, items: Iterable[Any], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Call `agent` on every item at once, each its own step (`agent#0`, `agent#1`, ...,
        in the items' order), and return the outputs in that order. A batchable agent
        answers them in batches. The first failure is raised and the other calls cancelled
        (what completed stays journaled: a resume does not run it again); with
        `return_exceptions`, each failure takes its item's place instead."""
        tasks = [asyncio.ensure_future(self.call(agent, item)) for item in items]
        if not tasks:
            return []
        if return_exceptions:
            return list(await asyncio.gather(*tasks, return_exceptions=True))
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def use(self, tool: Any, args: dict[str, Any] | None = None) -> Any:
        """Call a tool through the door with keyword arguments `args`."""
        args = {} if args is None else args
        check = getattr(tool, "check_input", None)
        if check is not None:
            try:
                args = check(args)
            except ValidationError as e:
                raise HandoffTypeError(
                    self.agent_name, tool.name, describe_validation_error(e)
                ) from None
        run = self._run
        if not run.caching and getattr(tool, "cache", None) is not None:
            run.cache_on()
        if run.guard is None and getattr(tool, "needs_approval", False):
            run.guard_on()
        return await self._through_door(tool, CallKind.TOOL, args, _UNSET, _UNSET)

    async def invoke(self, step: Any, kind: CallKind | str, input: Any) -> Any:
        """Run any step-shaped object (`name`, `invoke(call)`) through the door: models use
        this so that their answers are journaled and replayed like any other step. `kind`
        is a `CallKind` (or its name: `"tool"`, `"model"`, ...)."""
        kind = choice(CallKind, f"step {step.name!r}", "kind", kind)
        run = self._run
        if not run.caching and getattr(step, "cache", None) is not None:
            run.cache_on()
        if run.guard is None and kind == "tool" and getattr(step, "needs_approval", False):
            run.guard_on()
        return await self._through_door(step, kind, input, _UNSET, _UNSET)

    def emit(self, kind: str, **data: Any) -> None:
        """Record a custom event (a pattern's decision, progress) against this step."""
        self._run.emit(kind, self.key, self.agent_name, data=data or None)

    async def _through_door(
        self, target: Any, kind: CallKind, input: Any, timeout: Any, retry: Any
    ) -> Any:
        return await self._enter(self._call(target, kind, input, timeout, retry))

    def _call(self, target: Any, kind: CallKind, input: Any, timeout: Any, retry: Any) -> Call:
        run = self._run
        if retry is _UNSET:
            retry = getattr(target, "retry", None) or run.retry
        if timeout is _UNSET:
            timeout = getattr(target, "timeout", None) or run.timeout
        key = self._next_key(target.name)
        if len(key) > MAX_KEY_LENGTH:
            raise UsageError(
                f"the step key of {target.name!r} under {self.key} would be {len(key)} "
                f"characters (at most {MAX_KEY_LENGTH}): the run tree is nested too deeply, or "
                "its names are too long, to be journaled"
            )
        return Call(run, self.key, target, kind, key, input, retry, timeout, self.agent_name)

    def _enter(self, call: Call) -> Awaitable[Any]:
        """The door for `call`, to be awaited. Each level of nesting stacks a dozen Python
        frames (door, middlewares, pattern), so about 90 nested patterns would reach Python's
        recursion limit: every so many levels the call goes on in a task of its own, which
        starts on a fresh stack."""
        door = self._run.door(call)
        if call.key.count("/") % FRESH_STACK_EVERY == 0:
            return asyncio.ensure_future(door)
        return door

    def __repr__(self) -> str:
        return f"RunContext(run_id={self.run_id!r}, key={self.key!r})"


async def execute(call: Call) -> Any:
    """The end of the door's chain: run the agent (or tool, or model) in this process, and
    check its output against the declared type."""
    if call.kind == "agent":
        output = await call.target.run(call.input, RunContext(call.run, call.key, call.name))
    else:
        output = await call.target.invoke(call)
    check = call.check_output
    if check is not None:
        try:
            output = check(output)
        except ValidationError as e:
            raise OutputTypeError(call.name, call.key, describe_validation_error(e)) from None
    return output
