"""`Runtime`: owns the store and the door, starts, resumes and cancels runs.

    rt = Runtime("sqlite:///runs.db")
    result = await rt.run(flow, {"order_id": 7})
    result = await rt.resume(result.run_id)      # after a crash, from any process

A run's status is one of running, waiting, completed, failed, cancelled. `run` returns a
`RunResult` whatever the outcome (call `raise_for_status()` to turn a failure into an
exception); it raises only for misuse, before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from podium.core.bounds import FINITE_SECONDS
from podium.core.clock import Clock, clock_or_default
from podium.core.names import check_lookup_id, check_run_id
from podium.core.records import (
    CallKind,
    Event,
    Lease,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    Usage,
)
from podium.core.serde import describe_validation_error, store_dumps, text_bytes, to_plain
from podium.errors import (
    JournalUnavailable,
    LeaseLost,
    Parked,
    RunError,
    RunTimeoutError,
    Suspended,
    SweepError,
    TargetError,
    UnknownRunError,
    UsageError,
)
from podium.governance.policy import Policy
from podium.models.prices import Prices, resolve_prices
from podium.models.tiers import Tiers, resolve_tiers
from podium.observability.tracing import TRACE_STARTED, Tracing, resolve_tracing
from podium.runtime.audit import decision_event, run_config
from podium.runtime.breaker import Board, Breaker, breaker_middleware, default_board
from podium.runtime.budget import BUDGET_KV, AlertHandler, Budget, Ledger, budget_middleware
from podium.runtime.cache import CacheStore, cache_middleware, open_cache
from podium.runtime.connections import Connections
from podium.runtime.context import Drain, RunState, execute
from podium.runtime.dlq import DLQ, dead_letter, run_saga
from podium.runtime.door import Call, Doors, Middleware
from podium.runtime.effects import SAGA_KEY, SagaReplayStop
from podium.runtime.fallback import fallback
from podium.runtime.guard import POLICY_KV, guard, with_guard
from podium.runtime.leases import describe_holder, holder_is_gone, this_holder
from podium.runtime.limits import LIMITS_KV, RunLimits, active_seconds, given_limits
from podium.runtime.middleware import BUILTINS, replay
from podium.runtime.policies import DEFAULT_RETRY, Retry
from podium.runtime.privacy import PRIVACY_KV, RunPrivacy, privacy_middleware, scrub_secrets
from podium.runtime.probe import check_decision
from podium.runtime.stream import RunStream
from podium.runtime.taint import TAINT_ON, TaintState, contained, containment, taint_default
from podium.runtime.waiting import WaitingRequest, as_decision, decided_step, waiting_requests
from podium.runtime.worker import QUEUE, Worker, WorkStats
from podium.stores import Store, open_store

if TYPE_CHECKING:
    from podium.governance.privacy import Privacy
    from podium.observability.cost import CostReport
    from podium.runtime.replay import ReplayReport

T = TypeVar("T")

logger = logging.getLogger("podium")

FORK_KV = "fork"  # a forked run's origin: {"from": run id, "at": step, "steps": rows copied}


class _Keep:
    """`Runtime.fork(input=...)` left out: the original run's input."""

    def __repr__(self) -> str:
        return "KEEP_INPUT"


KEEP_INPUT: Any = _Keep()

WATCHED_BEYOND = 300.0
"""A run's deadline further off than this (seconds) is watched by the lease heartbeat, which
wakes every `lease / 3` seconds anyway, instead of by a timer of its own: a timer per run costs
every run (the default deadline is 24 h), and a deadline of hours needs no sub-second
precision. A nearer one gets a timer, exact."""


@dataclass(slots=True)
class RunResult:
    """What a run came to. `output` is set when `status` is completed."""

    run_id: str
    status: RunStatus
    output: Any = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.COMPLETED

    def raise_for_status(self) -> RunResult:
        """Raise the run's error if it did not complete; return self otherwise."""
        if self.status == RunStatus.COMPLETED:
            return self
        if self.exception is not None:
            raise self.exception
        raise RunError(f"run {self.run_id} is {self.status}: {self.error or 'no error recorded'}")

    def to_dict(self) -> dict[str, Any]:
        from podium.core.serde import to_plain

        return {
            "run_id": self.run_id,
            "status": str(self.status),
            "output": to_plain(self.output),
            "error": self.error,
            "usage": self.usage.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class _Limits:
    """Per-run policy: the default retry for its calls, the limits given to this run
    (`deadline`, `max_steps`, `max_journal_bytes`: over the runtime's, kept with the run),
    and the run's budget; `run` is what applies, once `given` is laid over the runtime's."""

    retry: Retry | None
    given: dict[str, Any] = field(default_factory=dict)
    budget: Budget | None = None
    policies: tuple[Policy, ...] = ()
    run: RunLimits | None = None
    privacy: tuple[Privacy, bytes] | None = None  # who sees which PII, and the vault key


def new_run_id() -> str:
    """16 random hex digits: short enough to type, 64 bits against collisions."""
    return os.urandom(8).hex()


class Runtime:
    """Runs agents durably against one store.

    `store` is a URL (`memory://`, `sqlite:///path.db`, `postgresql://...`) or a `Store`;
    by default `PODIUM_STORE`, else a SQLite file under `./.podium/`. `retry` and `timeout`
    are defaults for every call that sets none of its own; so is `breaker` (none by default:
    set one on the agents and models that call flaky endpoints). `breakers` is where breaker
    state lives: shared by every runtime of the process unless given; a `redis://` URL (or
    `PODIUM_REDIS_URL`) shares it across processes. `middleware` fills or replaces slots of
    the door (`podium.runtime.door.SLOTS`). `targets` pins the stored targets this runtime
    may load to resume a run given without its agent (see `podium.core.targets`: by default,
    with `PODIUM_TARGETS` and the project's `[tool.podium] targets` unset, those inside the
    project directory and installed modules).

    `prices` is what model calls cost (see `podium.models.prices`): a `Prices`, a mapping of
    model name to `{input, output, cached_input, cache_write}` dollars per million tokens, or
    a JSON or YAML file of them, laid over the defaults and `PODIUM_PRICES`.
    `on_budget_alert` is called with a `BudgetAlert` when a budget passes its alert mark.
    `cache` is where the answers of cached models and tools live (`podium.Cache`): a URL
    (`memory://`, `sqlite:///cache.db`, `redis://host:port/db`) or a `CacheStore`; by default
    `PODIUM_CACHE`, else this runtime's memory. `tiers` names kinds of model (`fast`,
    `smart`, any name) for agents that ask for a tier instead of a model: a `Tiers`, a
    mapping of tier name to a model and its fallbacks, or a JSON or YAML file of them, laid
    over `PODIUM_TIERS` (see `podium.models.tiers`). `clock` is the time this runtime, its
    store (when given as a URL), breakers, workers and budgets read (`podium.core.clock`; by
    default the real one): a test passes `podium.testing.FakeClock` and advances it instead
    of sleeping. `policy` (a `podium.Policy`, its mapping form, or a YAML or JSON file of
    it) is checked on every tool call of every run, whoever asks (see
    `podium.runtime.guard`); a run keeps the policies it started with in the store, so every
    process that resumes it checks the same ones (and this runtime's too). A workflow file's
    `policies:` apply to its runs as well. `pii` is who may see which personal data
    (`podium.Privacy`): agents, tools and model steps not allowed a kind get tokens in its
    place, and what runs store keeps tokens; without it (and with `PODIUM_PII` unset:
    `tokenize` or `mask` turns it on with what agents and tools declare as `sees_pii`) PII
    is left as it is. Secrets (API keys, tokens, private keys) are masked in everything a run
    stores either way.

    `taint=True` contains prompt injection: content from tools, documents and
    other agents is labelled untrusted, and a side-effecting tool call whose arguments
    derive from it waits for a person unless the agent's pinned plan names it or a
    sanitiser vouched for its arguments (see `podium.runtime.taint`). Agents'
    `input_guardrails` / `output_guardrails` run in the door's `policy` slot either way (a
    `middleware={"policy": ...}` of your own runs after the policies; it cannot switch
    them off). By default `taint` is `PODIUM_TAINT` (`1`, `true`);
    a run started contained stays contained when any runtime resumes it.

    `tracer_provider` (an OpenTelemetry `TracerProvider`) or `tracing=True` (the global
    provider; also `PODIUM_OTEL=1`) makes a span of every step, with the GenAI semantic
    conventions' attributes (see `podium.observability.otel`); `tracing=podium.Tracing(
    content=True)` (or `PODIUM_OTEL_CONTENT=1`) puts what steps take and give into them,
    masked as the run stores it. Without them no span is made, and the door's `trace` slot
    is never entered. Needs the `otel` extra.

    Every run has limits (`podium.runtime.limits`, OWASP LLM10): `deadline` (seconds of
    running, 24 h; waiting for a person does not count), `max_steps` (10,000 journaled steps),
    `max_input_bytes` and `max_output_bytes` (16 MiB each, as JSON), `max_journal_bytes` (1 GiB
    of step outputs per run). Each is taken from here, else from `PODIUM_RUN_DEADLINE`,
    `PODIUM_MAX_STEPS`, `PODIUM_MAX_INPUT_BYTES`, `PODIUM_MAX_OUTPUT_BYTES`,
    `PODIUM_MAX_JOURNAL_BYTES`, else the default; it may be raised up to its ceiling
    (`podium.core.bounds.CEILINGS`), never switched off. A run passing one fails with
    `RunLimitExceededError`.
    """

    def __init__(
        self,
        store: str | Store | None = None,
        *,
        retry: Retry | None = DEFAULT_RETRY,
        timeout: float | None = None,
        middleware: dict[str, Middleware] | None = None,
        on_event: Callable[[Event], Any] | None = None,
        breaker: Breaker | None = None,
        breakers: Board | str | None = None,
        lease: float = 30.0,
        targets: Sequence[str] = (),
        prices: Prices | Mapping[str, Any] | str | Path | None = None,
        on_budget_alert: AlertHandler | None = None,
        cache: str | CacheStore | None = None,
        tiers: Tiers | Mapping[str, Any] | str | Path | None = None,
        clock: Clock | None = None,
        policy: Policy | Mapping[str, Any] | str | Path | None = None,
        pii: Privacy | None = None,
        deadline: float | None = None,
        max_steps: int | None = None,
        max_input_bytes: int | None = None,
        max_output_bytes: int | None = None,
        max_journal_bytes: int | None = None,
        taint: bool | None = None,
        tracing: bool | Tracing | None = None,
        tracer_provider: Any = None,
    ) -> None:
        # OpenTelemetry spans (`podium.observability.otel`): None, the default, costs nothing.
        self.tracing = resolve_tracing(tracing, tracer_provider)
        self._otel: tuple[Any, Any] | None = None
        self.clock: Clock = clock_or_default(clock)
        self.policy: Policy | None = None if policy is None else Policy.of(policy)
        self.pii, self._pii_key = _check_pii(pii)
        self.taint = taint_default() if taint is None else taint
        # Every run's limits (`podium.runtime.limits`): those given here, else PODIUM_...,
        # else the defaults. Checked first: a bad one fails before a store is opened.
        self.limits = RunLimits.from_env().over(
            {
                "deadline": deadline,
                "max_steps": max_steps,
                "max_input_bytes": max_input_bytes,
                "max_output_bytes": max_output_bytes,
                "max_journal_bytes": max_journal_bytes,
            }
        )
        self._store_obj: Store
        if store is None or isinstance(store, str):
            self._store_obj = open_store(store, clock=self.clock)
        else:
            self._store_obj = store  # a store made elsewhere keeps its own clock
        self._store: Store | None = None
        # The store measures what it writes: it refuses an input or output over the limits. A
        # store of another make that cannot take them keeps its own (see `stores.base`).
        with contextlib.suppress(AttributeError):
            self._store_obj.max_input_bytes = self.limits.max_input_bytes  # type: ignore[attr-defined]
            self._store_obj.max_output_bytes = self.limits.max_output_bytes  # type: ignore[attr-defined]
        self._open_lock = asyncio.Lock()
        self.retry = retry
        self.timeout = timeout
        self.breakers: Board = default_board(breakers, self.clock)
        self.prices: Prices = resolve_prices(prices)
        self.cache: CacheStore = open_cache(cache, self.clock)
        self.tiers: Tiers | None = resolve_tiers(tiers)
        builtins = {
            **BUILTINS,
            "fallback": fallback,
            "breaker": breaker_middleware(self.breakers, breaker),
        }
        # The budget and cache slots cost nothing to runs with no budget and no cached model
        # or tool anywhere: they start on a door without them and switch when one shows up.
        # So do the policy slot (policies, approvals, guardrails, taint) and the privacy slot
        # to runs without them.
        optional = {
            "privacy": privacy_middleware,
            "budget": budget_middleware(on_budget_alert),
            "cache": cache_middleware(),
            "policy": guard,
            "contain": containment,
        }
        if self.tracing is not None:
            from podium.observability.otel import trace_middleware

            optional["trace"] = trace_middleware
        if middleware and "policy" in middleware:  # the guard stays in front of it
            middleware = {**middleware, "policy": with_guard(middleware["policy"])}
        self._doors = Doors(builtins, optional, middleware, execute, replay)
        self._listeners: list[Callable[[Event], Any]] = [on_event] if on_event else []
        self._active: dict[str, asyncio.Task[Any]] = {}
        self._resuming: set[str] = set()  # runs a resume of this runtime is under way for
        self._drain = Drain()
        self._worker: Worker | None = None
        # Every run this runtime drives holds a lease in the store, renewed while it runs, so
        # no other process drives it at the same time (`podium resume` twice, a worker). The
        # runtime is known by a random id; the store fences its writes with the lease's epoch.
        self.owner = os.urandom(8).hex()
        self.lease = FINITE_SECONDS.check("Runtime", "lease", lease)
        self._leases: dict[str, Lease] = {}  # the leases of the runs driven now
        self._resumable: dict[tuple[str, str | None, str, str | None], str | None] = {}
        self._states: dict[str, RunState] = {}
        self._beat: asyncio.Task[None] | None = None
        self._cancel_requested: set[str] = set()
        self._deadlines: dict[str, float] = {}  # loop time each watched run must end by
        self._expired: set[str] = set()  # runs the heartbeat cancelled for their deadline
        self.targets = tuple(targets)
        # Long-lived connections its runs share (an MCP server's session), closed by `close`.
        self.connections = Connections()

    # store lifecycle -----------------------------------------------------------------------
    async def open(self) -> Store:
        """Open the store (once); every public method calls this for you."""
        if self._store is not None:
            return self._store
        async with self._open_lock:
            if self._store is None:
                await self._store_obj.open()
                self._store = self._store_obj
        return self._store

    @property
    def store_url(self) -> str:
        return self._store_obj.url

    async def close(self) -> None:
        """Release the store's connections and close the runs' shared ones (MCP servers'
        sessions: the servers podium started exit); the next call opens them again (on any
        loop)."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        try:
            await self.connections.close()  # MCP servers podium started end here
            if self._store is not None:
                store, self._store = self._store, None
                await store.close()
        finally:
            await self.cache.close()

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self, listener: Callable[[Event], Any]) -> Callable[[], None]:
        """Call `listener` with every event of every run started after this; returns an
        unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # runs ----------------------------------------------------------------------------------
    async def run(
        self,
        agent: Any,
        input: Any = None,
        *,
        run_id: str | None = None,
        target: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
    ) -> RunResult:
        """Start a run of `agent` on `input` and wait for it to finish, suspend or fail.

        `target` is how another process can load `agent` again to resume it (`module:object`
        or a YAML path). Without it, it is found on its own when `agent` is a module-level
        name of an importable module; when it cannot be (an agent built inside a function,
        or in a script run as a file), or another process would not trust it, the `podium`
        logger warns and says what to do. `retry` replaces the
        runtime's default retry policy for this run. `deadline` (seconds of running, waits for
        people not counted), `max_steps` and `max_journal_bytes` replace the runtime's limits
        for this run (see `Runtime`); they are stored with the run, so a resume or a worker
        keeps them. Past one every running branch is cancelled and the run fails with
        `RunLimitExceededError` (`RunTimeoutError` for the deadline); completed steps stay
        journaled, so a resume with a larger limit continues from them. `budget` limits what
        the whole run may spend (see `podium.Budget`); it is stored with the run too, and past
        it the run fails with `BudgetExceededError`.
        """
        run_id = new_run_id() if run_id is None else check_run_id(run_id)
        input = _check_root_input(agent, input)
        limits = self._options(retry, budget, deadline, max_steps, max_journal_bytes, agent=agent)
        return await self._start(agent, input, run_id, target, limits, None)

    def stream(
        self,
        agent: Any,
        input: Any = None,
        *,
        run_id: str | None = None,
        target: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
    ) -> RunStream:
        """Start a run as `run` does, and read its events as they happen:

            async with rt.stream(agent, input) as stream:
                async for event in stream:
                    ...                        # "model.delta": event.data["text"]
            result = await stream.result()

        The stream ends after the run's last event (`run.completed`, `run.failed`,
        `run.waiting`, `run.cancelled`, `run.parked`). Model steps stream their text as
        `model.delta` events, to this reader only (never to the store or to `subscribe`d
        listeners). The run never waits for the reader (see `RunStream`). Bad input raises
        `UsageError` here, before anything is written.
        """
        rid = new_run_id() if run_id is None else check_run_id(run_id)
        input = _check_root_input(agent, input)
        limits = self._options(retry, budget, deadline, max_steps, max_journal_bytes, agent=agent)
        return RunStream(rid, lambda live: self._start(agent, input, rid, target, limits, live))

    def _options(
        self,
        retry: Retry | None,
        budget: Budget | None,
        deadline: float | None,
        max_steps: int | None,
        max_journal_bytes: int | None,
        *,
        agent: Any = None,
    ) -> _Limits:
        """A run's own options, checked before anything is written. Starting one (`agent`
        given), its workflow file's `limits:` count too and the limits that apply are laid
        over the runtime's now; a resume lays them over the run's stored ones later."""
        workflow = None if agent is None else getattr(agent, "run_limits", None)
        given = given_limits(
            workflow, deadline=deadline, max_steps=max_steps, max_journal_bytes=max_journal_bytes
        )
        run = None if agent is None else self.limits.over(given)
        return _Limits(retry or self.retry, given, _check_budget(budget), run=run)

    async def _start(
        self,
        agent: Any,
        input: Any,
        run_id: str,
        target: str | None,
        limits: _Limits,
        live: Callable[[Event], None] | None,
    ) -> RunResult:
        store = await self.open()
        now = self.clock.now()
        record = RunRecord(
            run_id,
            agent.name,
            RunStatus.RUNNING,
            input=await self._stored_input(store, run_id, input),
            target=self._target_of(agent, target, run_id),
            created_at=now,
            updated_at=now,
        )
        await store.create_run(record)
        if limits.budget is not None:
            await store.kv_put(BUDGET_KV, run_id, limits.budget.to_dict())
        policies = await self._run_policies(store, run_id, agent, True)
        privacy = await self._run_privacy(store, run_id, True)
        if policies or privacy is not None:
            limits = replace(limits, policies=policies, privacy=privacy)
        if limits.given:
            await store.kv_put(LIMITS_KV, run_id, limits.given)
        lease = await self.claim(store, run_id)
        if lease is None:  # another process claimed the run the moment it was made
            holder = describe_holder(await store.get_lease(run_id))
            raise UsageError(f"run {run_id} was claimed by {holder} as soon as it was made")
        return await self._drive(
            store, agent, input, run_id, None, 0, limits=limits, live=live, lease=lease
        )

    async def resume(
        self,
        run_id: str,
        agent: Any = None,
        *,
        decision: Any = None,
        step: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
        identity: str | None = None,
    ) -> RunResult:
        """Continue a run that crashed, was interrupted, or waits: completed steps return their
        journaled output, the rest run. A completed run just returns its result.
        `retry` applies to this resumption, as in `run`. The run keeps the budget and the
        limits it was started with, counting on from what it spent (steps journaled, seconds
        of running, output bytes kept); `budget`, `deadline`, `max_steps` and
        `max_journal_bytes` replace them (to give a run that ran out more room), and are
        stored in their place.

        `decision` answers a waiting run (`Decision.approve()`, `Decision.reject(comment)`,
        `Decision.answer(value)`): it is recorded as the output of the step that waits (`step`,
        needed only when several wait), then the run continues from there. A decision that
        does not say what was decided, does not fit the request, or that the asking agent
        refuses (an edit or answer of the wrong type) raises `UsageError`, and nothing is
        written. `identity` is who decided as an authenticated caller knows them (the HTTP
        server passes its API key's name): recorded with the decision, beside the OS account.
        """
        limits = self._options(retry, budget, deadline, max_steps, max_journal_bytes)
        return await self._resume(run_id, agent, decision, step, limits, None, identity)

    def stream_resume(
        self,
        run_id: str,
        agent: Any = None,
        *,
        decision: Any = None,
        step: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
        identity: str | None = None,
    ) -> RunStream:
        """Resume a run as `resume` does, and read its events as they happen (see `stream`).
        Steps completed before are not run again, so their text is not streamed again:
        each shows as one `step.replayed` event. Misuse (an unknown run, a decision that
        does not fit) raises from the first read, before anything is written."""
        limits = self._options(retry, budget, deadline, max_steps, max_journal_bytes)
        return RunStream(
            run_id,
            lambda live: self._resume(run_id, agent, decision, step, limits, live, identity),
        )

    async def _resume(
        self,
        run_id: str,
        agent: Any,
        decision: Any,
        step: str | None,
        limits: _Limits,
        live: Callable[[Event], None] | None,
        identity: str | None = None,
    ) -> RunResult:
        """One resume of a run at a time in this runtime: the run's lease is this runtime's
        for every caller, so two resumes started together (two decisions sent at once, a
        sweep beside a decision) would both pass the checks and both record a decision."""
        check_run_id(run_id)
        if run_id in self._resuming:
            raise UsageError(f"run {run_id} is already being resumed in this process")
        self._resuming.add(run_id)
        try:
            return await self._resume_once(run_id, agent, decision, step, limits, live, identity)
        finally:
            self._resuming.discard(run_id)

    async def _resume_once(
        self,
        run_id: str,
        agent: Any,
        decision: Any,
        step: str | None,
        limits: _Limits,
        live: Callable[[Event], None] | None,
        identity: str | None,
    ) -> RunResult:
        decided = None if decision is None else as_decision(decision)
        store = await self.open()
        record = await store.get_run(run_id)
        if record is None:
            raise UnknownRunError(run_id)
        if record.status == RunStatus.COMPLETED:
            return RunResult(run_id, record.status, record.output, None, record.usage)
        if record.status == RunStatus.CANCELLED:
            raise UsageError(f"run {run_id} was cancelled; start a new run instead")
        if run_id in self._active:
            raise UsageError(f"run {run_id} is already running in this process")
        lease = await self.claim(store, run_id)
        if lease is None:
            holder = describe_holder(await store.get_lease(run_id))
            raise UsageError(
                f"run {run_id} is being driven by {holder}; try again once it stops "
                f"(a lease from a process that died runs out within {self.lease:g}s)"
            )
        try:
            agent = self._agent_for(record, agent)
            input = _check_root_input(agent, record.input)
            steps = await store.load_steps(run_id)
            if any(s.key == SAGA_KEY and s.status == StepStatus.COMPLETED for s in steps):
                raise UsageError(
                    f"run {run_id} failed and its side effects were compensated; start a new run"
                )
            if decided is not None:
                answered = decided_step(
                    run_id, steps, decided, step, self.clock.now(), identity=identity
                )
                await check_decision(
                    agent, input, run_id, steps, answered, connections=self.connections
                )
                # a person's words are kept as any step's output is: secrets masked, and
                # with privacy, PII as tokens
                answered.output = await self._stored_input(store, run_id, answered.output)
                # the decision's audit record commits with its journal row (no await between)
                store.record_event(await decision_event(store, answered))
                await store.record_finished(answered)
                steps = [answered if s.key == answered.key else s for s in steps]
                decision = answered.output
        except BaseException:
            await store.release_lease(lease)
            raise
        events = await store.list_events(run_id)
        budget = await _run_budget(store, run_id, limits.budget)
        policies = await self._run_policies(store, run_id, agent, False)
        privacy = await self._run_privacy(store, run_id, False)
        given = await _run_limits(store, run_id, limits.given)
        await store.update_run(run_id, status=RunStatus.RUNNING)
        seq = events[-1].seq if events else 0
        limits = replace(
            limits,
            budget=budget,
            policies=policies,
            privacy=privacy,
            given=given,
            run=self.limits.over(given),
        )
        return await self._drive(
            store,
            agent,
            input,
            run_id,
            steps,
            seq,
            decision,
            limits,
            live,
            history=events,
            lease=lease,
        )

    async def _run_privacy(
        self, store: Store, run_id: str, start: bool
    ) -> tuple[Privacy, bytes] | None:
        """Who sees which PII in a run: this runtime's `pii`, kept with a run it starts
        (without the key); for a run it resumes without one, the privacy the run was started
        with, so that a run started private stays private in every process that drives it
        (each must hold the vault key: `PODIUM_PII_KEY`)."""
        if self.pii is not None:
            if start:
                await store.kv_put(PRIVACY_KV, run_id, self.pii.to_dict())
            return self.pii, self._pii_key
        stored = None if start else await store.kv_get(PRIVACY_KV, run_id)
        if stored is None:
            return None
        from podium.governance.privacy import Privacy
        from podium.governance.vault import key_from

        key, random_key = key_from(None)
        if random_key:
            raise UsageError(
                f"run {run_id} was started with privacy (its PII is kept as tokens, sealed "
                "with a key): set PODIUM_PII_KEY to that key to resume it"
            )
        return Privacy.from_dict(stored), key

    async def _run_policies(
        self, store: Store, run_id: str, agent: Any, start: bool
    ) -> tuple[Policy, ...]:
        """The policies a run is checked against: those it was started with (kept in the
        store, so a resume in any process checks them), this runtime's, and its workflow
        file's (`agent.policy`). Any new to the run are kept with it from now on."""
        if start and self.policy is None and getattr(agent, "policy", None) is None:
            return ()  # the usual run: no policy to keep, nothing to look up
        stored = None if start else await store.kv_get(POLICY_KV, run_id)
        kept = [Policy.from_dict(p) for p in (stored or {}).get("policies", [])]
        given = [p for p in (self.policy, getattr(agent, "policy", None)) if p is not None]
        out: dict[str, Policy] = {p.digest(): p for p in kept}
        for p in given:
            out.setdefault(Policy.from_dict(p).digest(), Policy.from_dict(p))
        if len(out) > len(kept):
            plain = {"policies": [p.to_dict() for p in out.values()]}
            await store.kv_put(POLICY_KV, run_id, plain)
        return tuple(out.values())

    async def _stored_input(self, store: Store, run_id: str, input: Any) -> Any:
        """A run's input (or a person's decision) as the store keeps it: secrets masked,
        and with `pii` every sensitive value a token (sealed in the vault first)."""
        if self.pii is None:
            return scrub_secrets(input)
        privacy = RunPrivacy(self.pii, self._pii_key, run_id, store)
        stored = privacy.store_form(input)
        await privacy.flush()
        return stored

    def _target_of(self, agent: Any, target: str | None, run_id: str) -> str | None:
        """The target stored with a new run: the one given, else the one found by import.
        Where no other process could resume the run from it, say so now, and how to fix it
        (a store in memory dies with the process anyway: no search, no warning)."""
        from podium.core.targets import TrustedTargets, find_target

        if self._store_obj.url.startswith("memory"):
            own = getattr(agent, "target", None)
            return target or (own if isinstance(own, str) else None)
        stored = target or find_target(agent)
        # The rules depend on the working directory and PODIUM_TARGETS (and read the
        # project's pyproject.toml): checked once per target and place, not on every run.
        where = (agent.name, stored, os.getcwd(), os.environ.get("PODIUM_TARGETS"))
        if where not in self._resumable:
            try:
                why = TrustedTargets.load(self.targets).resumable(stored)
            except TargetError as e:  # a broken [tool.podium] table: say so, run anyway
                why = str(e)
            self._resumable[where] = why
            if why is not None:  # once per agent and reason: a loop of runs is not a flood
                logger.warning(
                    "run %s of agent %r: %s (said once for this agent)", run_id, agent.name, why
                )
        return stored

    def _agent_for(self, record: RunRecord, agent: Any) -> Any:
        if agent is None:
            from podium.core.targets import TrustedTargets

            trusted = TrustedTargets.load(self.targets)
            agent = trusted.agent_for(record.target, record.agent, record.run_id)
        if agent.name != record.agent:
            raise UsageError(
                f"run {record.run_id} was started with agent {record.agent!r}, not {agent.name!r}"
            )
        return agent

    async def inbox(self) -> list[WaitingRequest]:
        """Everything waiting runs need from a person, oldest first."""
        store = await self.open()
        out: list[WaitingRequest] = []
        for run in await store.list_runs(status=RunStatus.WAITING, limit=10_000):
            steps = await store.load_steps(run.run_id)
            out.extend(waiting_requests(run, steps, self.clock.now()))
        return sorted(out, key=lambda w: w.since)

    async def sweep(self) -> list[RunResult]:
        """Resume every waiting run whose request is past its deadline, so the waiting step
        applies its timeout rule (reject, approve or escalate). Run it from cron or a worker.

        A run that cannot be resumed (its target does not load, another process holds it)
        does not stop the others: all are tried, then `SweepError` names each failure and
        carries the results of the rest."""
        results: list[RunResult] = []
        failures: dict[str, str] = {}
        for request in await self.inbox():
            run_id = request.run_id
            if not request.overdue or run_id in self._active or run_id in failures:
                continue
            if any(r.run_id == run_id for r in results):
                continue  # it waited at several overdue steps
            try:
                results.append(await self.resume(run_id))
            except Exception as e:  # this run only: the others still get their turn
                failures[run_id] = f"{type(e).__name__}: {e}"
        if failures:
            raise SweepError(results, failures)
        return results

    # workers -----------------------------------------------------------------------------
    @property
    def draining(self) -> bool:
        """True once shutdown began: runs of this runtime start no new step."""
        return self._drain.on

    @draining.setter
    def draining(self, value: bool) -> None:
        self._drain.on = value

    async def submit(
        self,
        agent: Any,
        input: Any = None,
        *,
        run_id: str | None = None,
        target: str | None = None,
        budget: Budget | None = None,
        deadline: float | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
    ) -> str:
        """Queue a run for workers (`rt.work()`, `podium worker`) and return its id at once.
        The agent must be loadable by a worker: `target`, or an importable `@agent`. The
        worker that takes the run applies `budget` and the limits given here to it."""
        run_id = new_run_id() if run_id is None else check_run_id(run_id)
        input = _check_root_input(agent, input)
        budget = _check_budget(budget)
        given = given_limits(
            getattr(agent, "run_limits", None),
            deadline=deadline,
            max_steps=max_steps,
            max_journal_bytes=max_journal_bytes,
        )
        store = await self.open()
        target = self._target_of(agent, target, run_id)
        now = self.clock.now()
        record = RunRecord(
            run_id,
            agent.name,
            RunStatus.RUNNING,
            input=await self._stored_input(store, run_id, input),
            target=target,
            created_at=now,
            updated_at=now,
        )
        await store.create_run(record)
        if budget is not None:
            await store.kv_put(BUDGET_KV, run_id, budget.to_dict())
        await self._run_policies(store, run_id, agent, True)
        await self._run_privacy(store, run_id, True)
        if given:
            await store.kv_put(LIMITS_KV, run_id, given)
        await store.kv_put(QUEUE, run_id, {"at": now, "agent": agent.name})
        return run_id

    async def work(
        self,
        *,
        concurrency: int = 8,
        lease: float = 30.0,
        poll: float = 0.5,
        grace: float = 30.0,
        until_idle: bool = False,
        agents: list[Any] | None = None,
        sweep_every: float | None = 30.0,
        signals: bool = True,
    ) -> WorkStats:
        """Drive submitted runs until stopped (SIGTERM), or until none is left with
        `until_idle`. `agents` are used instead of loading each run's target. Every
        `sweep_every` seconds, overdue requests to people get their timeout rule applied.
        `signals=False` leaves SIGTERM to the process (a server that stops the worker with
        `stop()` when it shuts down)."""
        worker = Worker(  # checks every option before anything changes here
            self,
            concurrency=concurrency,
            lease=lease,
            poll=poll,
            grace=grace,
            agents={a.name: a for a in agents or ()},
            sweep_every=sweep_every,
            signals=signals,
        )
        self.lease = worker.lease  # the leases this runtime takes and renews last this long
        self._worker = worker
        return await worker.run(until_idle=until_idle)

    def stop(self) -> None:
        """Graceful shutdown: take no new runs, park running ones at their next step."""
        if self._worker is not None:
            self._worker.stop()
        self.draining = True

    # the dead-letter queue ---------------------------------------------------------------
    async def dead_letters(self) -> list[dict[str, Any]]:
        """Runs that failed for good, oldest first, each with its reason."""
        entries = await (await self.open()).kv_list(DLQ)
        return sorted(entries.values(), key=lambda e: e.get("at", 0))

    async def requeue(self, run_id: str, agent: Any = None) -> RunResult:
        """Take a run out of the dead-letter queue and resume it from its last completed
        step (after you fixed what failed). A run whose effects were compensated cannot be."""
        store = await self.open()
        entry = await store.kv_get(DLQ, run_id)
        if entry is None:
            raise UsageError(f"run {run_id} is not in the dead-letter queue")
        saga = entry.get("saga") or {}
        if saga.get("status") == "completed":
            raise UsageError(
                f"run {run_id}: its side effects were compensated; start a new run instead"
            )
        await store.kv_delete(DLQ, run_id)
        return await self.resume(run_id, agent)

    async def discard(self, run_id: str) -> None:
        """Drop a run from the dead-letter queue; it stays `failed`, with its journal."""
        if not await (await self.open()).kv_delete(DLQ, run_id):
            raise UsageError(f"run {run_id} is not in the dead-letter queue")

    async def cancel(self, run_id: str) -> None:
        """Cancel a run: in this process its task is cancelled at once (every branch with it);
        otherwise it is marked cancelled in the store. Completed steps stay journaled."""
        task = self._active.get(run_id)
        if task is not None:
            self._cancel_requested.add(run_id)
            task.cancel()
            return
        store = await self.open()
        record = await store.get_run(check_lookup_id(run_id))
        if record is None:
            raise UnknownRunError(run_id)
        if record.status in (RunStatus.RUNNING, RunStatus.WAITING):
            await store.update_run(run_id, status=RunStatus.CANCELLED, error="cancelled")

    async def _drive(
        self,
        store: Store,
        agent: Any,
        input: Any,
        run_id: str,
        prior_steps: list[StepRecord] | None,
        seq: int,
        decision: Any = None,
        limits: _Limits | None = None,
        live: Callable[[Event], None] | None = None,
        history: list[Event] | None = None,
        *,
        lease: Lease | None = None,
    ) -> RunResult:
        limits = limits or _Limits(self.retry)
        state = self._new_state(store, run_id, prior_steps, seq, limits, live, history)
        marker = state.prior.get(SAGA_KEY) if state.prior else None
        saga_error = None
        if marker is not None:  # killed while compensating: find the effects, then go on
            state.replay_only = True
            saga_error = marker.error
        if prior_steps is None:
            state.emit("run.started", agent=agent.name)
            if state.taint is not None:
                state.emit(TAINT_ON, agent=agent.name)
        else:
            data = None if decision is None else {"decision": to_plain(decision)}
            state.emit("run.resumed", agent=agent.name, data=data)
        if not history:  # the run's first start (here or by a worker): its configuration
            state.emit("run.config", agent=agent.name, data=self._run_config(agent, limits))
        if self.tracing is not None:
            self._trace(state, history)
        if getattr(agent, "budget", None) is not None:
            state.meter()
        if getattr(agent, "guarded", False):
            state.contain_on()
        retry = getattr(agent, "retry", None) or limits.retry
        timeout = getattr(agent, "timeout", None) or self.timeout
        call = Call(state, "", agent, CallKind.AGENT, "/" + agent.name, input, retry, timeout)
        task = asyncio.current_task()
        assert task is not None
        self._active[run_id] = task
        if lease is not None:
            self._leases[run_id], self._states[run_id] = lease, state
        self._keep_leases()
        try:
            result = await self._outcome(state, call, task, saga_error, limits.run or self.limits)
            try:
                result = await self._conclude(state, agent, result)
            except LeaseLost as e:  # taken while failing or concluding: the new holder ends it
                result = RunResult(run_id, RunStatus.RUNNING, None, str(e), state.usage, e)
            except Exception:
                if not isinstance(result.exception, JournalUnavailable):
                    raise
                # the store already failed mid-run: the run stays `running`, as it is stored
        finally:
            del self._active[run_id]
            self._states.pop(run_id, None)
            held = self._leases.pop(run_id, None)
            if held is not None:
                with contextlib.suppress(Exception):
                    await store.release_lease(held)
        return result

    def _trace(self, state: RunState, history: list[Event] | None) -> None:
        """Trace this run (`Runtime(tracing=...)`): a run traced before (in this process or
        another) continues its trace from the root span's context it kept as its
        `trace.started` event; one traced for the first time emits that event when its root
        span starts."""
        from podium.observability.otel import run_trace

        assert self.tracing is not None
        stored = None
        for event in reversed(history or ()):
            if event.kind == TRACE_STARTED:
                stored = event.data
                break
        if self._otel is None:  # the provider and its tracer, once (the global one: at first use)
            self._otel = self.tracing.open()
        provider, tracer = self._otel
        content = self.tracing.with_content()
        state.trace_on(run_trace(provider, tracer, state.run_id, content=content, stored=stored))

    def _run_config(self, agent: Any, limits: _Limits) -> dict[str, Any]:
        """What the audit chain records of how a run was configured: cheap, no secrets."""
        applied = limits.run or self.limits
        privacy = None if limits.privacy is None else limits.privacy[0].to_dict()
        return run_config(
            agent,
            self._store_obj.url,
            {
                "deadline": applied.deadline,
                "max_steps": applied.max_steps,
                "max_journal_bytes": applied.max_journal_bytes,
            },
            limits.budget,
            policies=[p.digest() for p in limits.policies],
            taint=self.taint,
            privacy=privacy,
        )

    async def _conclude(self, state: RunState, agent: Any, result: RunResult) -> RunResult:
        """Record how the run ended: compensate and dead-letter a failure, then its status.
        A run whose lease was lost is not ours to conclude."""
        if isinstance(result.exception, LeaseLost):
            return result
        result.error = state.scrub_text(result.error)
        if result.status == RunStatus.FAILED:
            result = await self._fail_for_good(state, agent, result)
        kind = "run.parked" if isinstance(result.exception, Parked) else f"run.{result.status}"
        state.emit(kind, agent=agent.name, data=_run_event_data(result))
        output = None if result.output is None else state.scrub(result.output)
        if state.privacy is not None:
            await state.privacy.flush()
        await state.store.update_run(
            state.run_id,
            status=result.status,
            output=output,
            error=result.error,
            usage=result.usage,
        )
        await state.store.flush(state.run_id)
        return result

    async def claim(self, store: Store, run_id: str) -> Lease | None:
        """Take the run's lease, or None if a live holder has it. A holder that is provably
        gone (see `podium.runtime.leases`) loses it at once rather than when it runs out."""
        holder = this_holder()
        lease = await store.claim_lease(run_id, self.owner, self.lease, holder=holder)
        if lease is not None:
            return lease
        held = await store.get_lease(run_id)
        if held is not None and not holder_is_gone(held.holder):
            return None
        steal = None if held is None else held.epoch
        return await store.claim_lease(run_id, self.owner, self.lease, holder=holder, steal=steal)

    def _keep_leases(self) -> None:
        """Renew the leases of the runs this runtime drives, while it drives any."""
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        """The heartbeat. A lease that cannot be renewed was taken: its run starts no new
        step (and the store already refuses its writes)."""
        store = await self.open()
        while self._active:
            await self.clock.sleep(self.lease / 3)
            self._expire()
            for run_id, lease in list(self._leases.items()):
                try:
                    renewed = await store.renew_lease(lease, self.lease)
                except Exception:
                    continue  # the store is out of reach: try again next beat
                if renewed is not None:
                    self._leases[run_id] = renewed
                elif (state := self._states.get(run_id)) is not None:
                    state.lost = True

    def _expire(self) -> None:
        """Cancel every watched run past its deadline (see `WATCHED_BEYOND`)."""
        now = asyncio.get_running_loop().time()
        for run_id, at in list(self._deadlines.items()):
            task = self._active.get(run_id)
            if at <= now and task is not None and run_id not in self._expired:
                self._expired.add(run_id)
                task.cancel()

    def _new_state(
        self,
        store: Store,
        run_id: str,
        prior_steps: list[StepRecord] | None,
        seq: int,
        limits: _Limits,
        live: Callable[[Event], None] | None = None,
        history: list[Event] | None = None,
    ) -> RunState:
        replay_map = prior = None
        if prior_steps is not None:
            prior = {s.key: s for s in prior_steps}
            replay_map = {k: s for k, s in prior.items() if s.status == StepStatus.COMPLETED}
        state = RunState(
            run_id,
            store,
            self._doors.get(bool(replay_map)),
            replay=replay_map,
            prior=prior,
            listeners=(*self._listeners, live) if live is not None else tuple(self._listeners),
            retry=limits.retry,
            timeout=self.timeout,
            drain=self._drain,
            live=live,
            prices=self.prices,
            history=history,
            doors=self._doors,
            cache=self.cache,
            tiers=self.tiers,
            clock=self.clock,
            connections=self.connections,
        )
        state.seq = seq
        if limits.privacy is not None:
            state.use_privacy(RunPrivacy(*limits.privacy, run_id, store))
        # What earlier processes spent is the run's usage so far: completed steps never run
        # again (whether replayed one by one or inside a parent replayed whole), and a failed
        # step that runs again keeps its earlier spend in its row (see the journal).
        for row in (prior or {}).values():
            if row.usage is not None:
                state.usage = state.usage + row.usage
        if limits.policies:
            state.guard_on(limits.policies)
        if self.taint or contained(history):  # a contained run stays so when resumed
            state.taint = TaintState(history)
            state.contain_on()  # labels, kept by the contain slot
            state.guard_on()  # its escalations are approvals the guard asks a person for
        run_limits = limits.run or self.limits
        state.max_steps = run_limits.max_steps
        state.max_journal_bytes = run_limits.max_journal_bytes
        if prior:  # the journal so far counts: a resume goes on from it
            state.steps = len(prior)
            state.journal_bytes = sum(
                text_bytes(store_dumps(row.output))
                for row in prior.values()
                if row.output is not None
            )
        if limits.budget is not None:
            state.meter()
            state.ledger = Ledger(prior, history, self.clock)
            state.ledger.open("", limits.budget, "run")
        return state

    async def _outcome(
        self,
        state: RunState,
        call: Call,
        task: asyncio.Task[Any],
        saga_error: str | None,
        run_limits: RunLimits,
    ) -> RunResult:
        run_id = state.run_id
        deadline = run_limits.deadline
        spent = active_seconds(state.history) if state.history else 0.0
        if spent >= deadline and not state.replay_only:
            error = RunTimeoutError(run_id, deadline, spent)
            return RunResult(run_id, RunStatus.FAILED, None, str(error), state.usage, error)
        remaining = deadline - spent
        watched = remaining > WATCHED_BEYOND
        if watched:
            self._deadlines[run_id] = asyncio.get_running_loop().time() + remaining
        limit = asyncio.timeout(None if watched else remaining)
        try:
            async with limit:
                output = await state.door(call)
        except SagaReplayStop:
            return RunResult(run_id, RunStatus.FAILED, None, saga_error, state.usage)
        except Parked as p:
            return RunResult(run_id, RunStatus.RUNNING, None, str(p), state.usage, p)
        except Suspended as s:
            return RunResult(run_id, RunStatus.WAITING, None, str(s), state.usage, s)
        except asyncio.CancelledError:
            if run_id in self._expired:  # the heartbeat found it past its deadline
                self._expired.discard(run_id)
                task.uncancel()
                error = RunTimeoutError(run_id, deadline)
                return RunResult(run_id, RunStatus.FAILED, None, str(error), state.usage, error)
            if run_id not in self._cancel_requested:
                raise  # the process is going away: the run stays `running`, resumable
            self._cancel_requested.discard(run_id)
            task.uncancel()
            return RunResult(run_id, RunStatus.CANCELLED, None, "cancelled", state.usage)
        except TimeoutError as e:
            if not limit.expired():
                return _failed(state, e)
            error = RunTimeoutError(run_id, deadline)
            return RunResult(run_id, RunStatus.FAILED, None, str(error), state.usage, error)
        except Exception as e:
            return _failed(state, e)
        finally:
            if watched:
                self._deadlines.pop(run_id, None)
        if state.replay_only:  # every step replayed: the saga still has to finish
            return RunResult(run_id, RunStatus.FAILED, None, saga_error, state.usage)
        if state.exceeded is not None:  # a pattern carried on without the refused step
            return _failed(state, state.exceeded)
        return RunResult(run_id, RunStatus.COMPLETED, output, None, state.usage)

    async def _fail_for_good(self, state: RunState, agent: Any, result: RunResult) -> RunResult:
        """Compensate completed effects (saga), then put the run in the dead-letter queue."""
        saga = None
        if state.prior and not state.replay_only and _unseen_tools(state):
            state.effects = await self._find_effects(state, agent)
        if state.effects:
            state.effects = await _own_effects(state)
        if state.effects:
            saga = await run_saga(state, result.error or "failed")
            if saga["status"] == "failed":
                result.error = f"{result.error}; compensation failed: {saga['error']}"
        await dead_letter(state, agent.name, result, saga)
        return result

    async def _find_effects(self, state: RunState, agent: Any) -> list[Any]:
        """A resumed run replayed whole agents from the journal without entering them, so the
        effects below them were never seen: walk the journal again, replaying only (as a saga
        resumed after a crash does), to find every completed effect."""
        await state.store.flush()
        prior = {s.key: s for s in await state.store.load_steps(state.run_id)}
        done = {k: s for k, s in prior.items() if s.status == StepStatus.COMPLETED}
        find = RunState(
            state.run_id,
            state.store,
            self._doors.get(True),
            replay=done,
            prior=prior,
            connections=self.connections,  # an agent walked again lists its MCP tools
        )
        find.replay_only, find.seq = True, state.seq
        record = await state.store.get_run(state.run_id)
        input = _check_root_input(agent, None if record is None else record.input)
        root = Call(find, "", agent, CallKind.AGENT, "/" + agent.name, input, None, None)
        with contextlib.suppress(Exception, Suspended):
            await find.door(root)
        state.seq = find.seq
        return find.effects

    # reading back --------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> RunRecord:
        record = await (await self.open()).get_run(check_lookup_id(run_id))
        if record is None:
            raise UnknownRunError(run_id)
        return record

    async def list_runs(
        self, *, status: RunStatus | str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """The newest `limit` runs, as summaries: without their input and output (a listing
        of thousands of runs must not read what each produced), the error cut to 1,000
        characters; `get_run` reads one whole. A limit beyond any count means all of them: it
        is capped at the largest integer a store's LIMIT takes (SQL stores read it as 64
        bits)."""
        if limit < 1:
            raise UsageError(f"limit must be at least 1, got {limit}")
        return await (await self.open()).list_runs(
            status=None if status is None else RunStatus(status), limit=min(limit, 2**63 - 1)
        )

    async def steps(self, run_id: str) -> list[StepRecord]:
        return await (await self.open()).load_steps(check_lookup_id(run_id))

    async def events(self, run_id: str) -> list[Event]:
        return await (await self.open()).list_events(check_lookup_id(run_id))

    async def cost(self, run_id: str) -> CostReport:
        """What a run cost so far, by agent, model and step (what `podium cost` shows)."""
        from podium.observability.cost import cost_report

        store = await self.open()
        record = await self.get_run(run_id)
        steps = await store.load_steps(run_id)
        events = await store.list_events(run_id)
        return cost_report(record, steps, events, await store.kv_get(BUDGET_KV, run_id))

    # replay and fork -----------------------------------------------------------------------
    async def replay(self, run_id: str, agent: Any = None) -> ReplayReport:
        """Re-execute a finished run's orchestration against its journal, writing nothing:
        the report says whether the code (as it is now) makes the decisions the run made, or
        names the step where it does not (`report.raise_for_status()` raises
        `NonDeterminismError`). See `podium.runtime.replay`. `agent` defaults to the run's
        stored target (trusted as for `resume`)."""
        from podium.runtime.replay import replay_run

        store = await self.open()
        record = await self.get_run(run_id)
        if record.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
            raise UsageError(
                f"run {run_id} is {record.status}: only a finished run (completed or failed) "
                "replays; resume it first, or fork it"
            )
        agent = self._agent_for(record, agent)
        input = _check_root_input(agent, record.input)
        steps = await store.load_steps(run_id)
        events = await store.list_events(run_id)
        return await replay_run(
            store,
            record,
            agent,
            input,
            steps,
            events,
            tiers=self.tiers,
            prices=self.prices,
            connections=self.connections,
        )

    async def fork(
        self,
        run_id: str,
        *,
        at: str,
        input: Any = KEEP_INPUT,
        agent: Any = None,
        new_id: str | None = None,
    ) -> RunResult:
        """Start a new run that reuses `run_id`'s journal up to step `at` and runs on from
        there: the completed rows journaled before `at` (in journal order; `at`'s ancestors,
        which contain it, and the rows below `at` run again) are copied into the new run,
        which is then resumed.
        The original run is only read. `input` replaces the run's input (the copied rows
        are kept as they are: fork at the first step that depends on it); the copied steps
        cost the new run nothing (their usage stays with the original). The new run's
        `fork` record (`store.kv_get("fork", new_id)`) says where it came from."""
        fork_id, agent = await self._copy_fork(run_id, at, input, agent, new_id)
        return await self.resume(fork_id, agent)

    async def submit_fork(
        self,
        run_id: str,
        *,
        at: str,
        input: Any = KEEP_INPUT,
        agent: Any = None,
        new_id: str | None = None,
    ) -> str:
        """`fork`, queued for workers as `submit` queues a run: the new run (its copied rows
        in place) is driven by a worker (`rt.work()`, `podium worker`, `podium serve`'s),
        which loads its target as for any queued run (`agent` only checks the input here).
        Returns the new run's id at once."""
        fork_id, agent = await self._copy_fork(run_id, at, input, agent, new_id)
        store = await self.open()
        await store.kv_put(QUEUE, fork_id, {"at": self.clock.now(), "agent": agent.name})
        return fork_id

    async def _copy_fork(
        self, run_id: str, at: str, input: Any, agent: Any, new_id: str | None
    ) -> tuple[str, Any]:
        """Create the fork of `run_id` at `at` with the rows it reuses; its id and agent."""
        store = await self.open()
        record = await self.get_run(run_id)
        if record.status == RunStatus.RUNNING and run_id in self._active:
            raise UsageError(f"run {run_id} is running in this process; fork it once it stops")
        steps = [s for s in await store.load_steps(run_id) if s.key != SAGA_KEY]
        keys = [s.key for s in steps]
        if at not in keys:
            shown = ", ".join(keys[:40]) + (", ..." if len(keys) > 40 else "")
            raise UsageError(f"run {run_id} has no step {at!r}; its steps are: {shown or 'none'}")
        agent = self._agent_for(record, agent)
        value = record.input if input is KEEP_INPUT else _check_root_input(agent, input)
        above = {at[:i] for i in range(1, len(at)) if at[i] == "/"}
        kept = [
            s
            for s in steps[: keys.index(at)]
            if s.status == StepStatus.COMPLETED
            and s.key not in above
            and not s.key.startswith(at + "/")  # re-entered on resume, its rows restart
        ]
        fork_id = new_run_id() if new_id is None else check_run_id(new_id)
        now = self.clock.now()
        stored = (
            record.input if input is KEEP_INPUT else await self._stored_input(store, fork_id, value)
        )
        fork = RunRecord(
            fork_id,
            record.agent,
            RunStatus.RUNNING,
            input=stored,
            target=record.target,
            created_at=now,
            updated_at=now,
        )
        await store.create_run(fork)
        for namespace in (BUDGET_KV, LIMITS_KV, POLICY_KV, PRIVACY_KV):
            kept_value = await store.kv_get(namespace, run_id)
            if kept_value is not None:
                await store.kv_put(namespace, fork_id, kept_value)
        origin = {
            "from": run_id,
            "at": at,
            "steps": len(kept),
            "input": input is not KEEP_INPUT,
            # effects the original made: the original's to compensate, never the fork's
            "reused": [s.key for s in kept if s.kind == CallKind.TOOL],
        }
        await store.kv_put(FORK_KV, fork_id, origin)
        for row in kept:
            await store.record_finished(replace(row, run_id=fork_id, usage=None))
        await store.flush(fork_id)
        return fork_id, agent

    # sync wrappers -------------------------------------------------------------------------
    def run_sync(
        self,
        agent: Any,
        input: Any = None,
        *,
        run_id: str | None = None,
        target: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
    ) -> RunResult:
        """`run` for scripts and notebooks without an event loop; takes what `run` takes."""
        return self._sync(
            self.run(
                agent,
                input,
                run_id=run_id,
                target=target,
                retry=retry,
                deadline=deadline,
                budget=budget,
                max_steps=max_steps,
                max_journal_bytes=max_journal_bytes,
            )
        )

    def resume_sync(
        self,
        run_id: str,
        agent: Any = None,
        *,
        decision: Any = None,
        step: str | None = None,
        retry: Retry | None = None,
        deadline: float | None = None,
        budget: Budget | None = None,
        max_steps: int | None = None,
        max_journal_bytes: int | None = None,
        identity: str | None = None,
    ) -> RunResult:
        """`resume` without an event loop; takes what `resume` takes."""
        return self._sync(
            self.resume(
                run_id,
                agent,
                decision=decision,
                step=step,
                retry=retry,
                deadline=deadline,
                budget=budget,
                max_steps=max_steps,
                max_journal_bytes=max_journal_bytes,
                identity=identity,
            )
        )

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        async def main() -> T:
            try:
                return await coro
            finally:
                await self.close()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        coro.close()
        raise UsageError("run_sync cannot be called from a running event loop; use `await rt.run`")


def _check_pii(pii: Any) -> tuple[Privacy | None, bytes]:
    """The runtime's privacy and its vault key (see `podium.governance.vault.key_from`)."""
    from podium.governance.privacy import Privacy
    from podium.governance.vault import key_from

    if pii is None:
        mode = os.environ.get("PODIUM_PII")
        if not mode:
            return None, b""
        if mode not in ("tokenize", "mask"):
            raise UsageError(f"PODIUM_PII must be `tokenize` or `mask`, got {mode!r}")
        pii = Privacy(mode=mode)  # type: ignore[arg-type]
    if not isinstance(pii, Privacy):
        raise UsageError(f"pii must be a podium.Privacy, got {pii!r}")
    key, random_key = key_from(pii.key)
    if random_key:
        logger.info(
            "Runtime(pii=...): no key given and PODIUM_PII_KEY unset; tokens are sealed "
            "with a key of this process only (a run resumed elsewhere cannot reveal them)"
        )
    return pii, key


def _check_budget(budget: Any) -> Budget | None:
    if budget is None or isinstance(budget, Budget):
        return budget
    raise UsageError(f"budget must be a podium.Budget, got {budget!r}")


def _failed(state: RunState, error: BaseException) -> RunResult:
    """A failed run's result: a limit it passed is the reason, whatever a pattern made of the
    refused step."""
    if state.exceeded is not None:
        error = state.exceeded
    return RunResult(state.run_id, RunStatus.FAILED, None, str(error), state.usage, error)


async def _run_limits(store: Store, run_id: str, given: dict[str, Any]) -> dict[str, Any]:
    """The limits a resumed run goes on with: those it was started with, the ones given now
    in their place (and stored so)."""
    stored = await store.kv_get(LIMITS_KV, run_id) or {}
    if not given:
        return dict(stored)
    merged = {**stored, **given}
    await store.kv_put(LIMITS_KV, run_id, merged)
    return merged


async def _run_budget(store: Store, run_id: str, given: Budget | None) -> Budget | None:
    """The budget a resumed run goes on with: the one given (stored in place of the old), or
    the one it was started with."""
    if given is not None:
        await store.kv_put(BUDGET_KV, run_id, given.to_dict())
        return given
    stored = await store.kv_get(BUDGET_KV, run_id)
    return None if stored is None else Budget.from_dict(stored)


def _check_root_input(agent: Any, input: Any) -> Any:
    if not hasattr(agent, "name") or not hasattr(agent, "run"):
        raise UsageError(
            f"{agent!r} is not an agent: it needs a `name` and `async run(input, ctx)`"
        )
    check = getattr(agent, "check_input", None)
    if check is None:
        return input
    try:
        return check(input)
    except ValidationError as e:
        raise UsageError(
            f"input for agent {agent.name!r}: {describe_validation_error(e)}"
        ) from None


def _unseen_tools(state: RunState) -> bool:
    """Whether a resumed run journaled tool steps before this process that it never saw (they
    sit below agents replayed whole): only then are its effects looked for in the journal."""
    seen = {e.key for e in state.effects}
    return any(
        s.kind == "tool" and s.status == StepStatus.COMPLETED and k not in seen
        for k, s in (state.prior or {}).items()
    )


async def _own_effects(state: RunState) -> list[Any]:
    """The effects a failed run compensates: a fork's copied from the run it forked are that
    run's (they happened once, there), so the fork's saga leaves them be."""
    origin = await state.store.kv_get(FORK_KV, state.run_id)
    reused = set((origin or {}).get("reused", ()))
    return [e for e in state.effects if e.key not in reused]


def _run_event_data(result: RunResult) -> dict[str, Any]:
    data: dict[str, Any] = {"usage": result.usage.to_dict()}
    if result.error:
        data["error"] = result.error
    return data
