"""The HTTP API of `podium serve`: runs, their steps and live events, people's decisions,
the dead-letter queue, metrics and health, under `/api/` (see docs/server.md).

`create_app(store_url, keys)` builds the FastAPI app around one `Runtime` on the store. A
run started over HTTP is submitted to the store's queue, so it is driven by the server's own
worker (`workers` runs at once, in the server's event loop) or by any `podium worker` on the
same store; a decision, a resume or a requeue is driven by the server itself, in the
background, after the checks the CLI makes have passed (so a wrong one gets a 4xx, and
nothing is written).

What a client sends never chooses the code that runs: a target is loaded only if the server
trusts it (the rules a resume follows: `podium.core.targets.TrustedTargets`). What the API
returns is what the store keeps: secrets masked, PII as tokens for runs with privacy.

(No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations,
some of them aliases local to `create_app`, at runtime.)
"""

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from podium.core.audit import AuditDraft, canonical, sha256
from podium.core.names import check_lookup_id, check_run_id
from podium.core.records import TERMINAL_STATUSES, Event, RunRecord, RunStatus, StepRecord
from podium.core.serde import describe_validation_error, to_plain
from podium.errors import TargetError, UnknownRunError, UsageError
from podium.runtime.budget import Budget
from podium.runtime.dlq import DLQ
from podium.runtime.runtime import Runtime
from podium.runtime.stream import RunStream
from podium.runtime.waiting import Decision
from podium.server.auth import KeyEntry, KeyRing, Principal, entries_of, stored_keys
from podium.server.models import (
    Accepted,
    AnswerBody,
    ApproveBody,
    DeadLetter,
    Done,
    ForkBody,
    Forked,
    Graph,
    GraphEdge,
    GraphNode,
    Health,
    Problem,
    RejectBody,
    Replayed,
    ResumeBody,
    RunDetail,
    RunPage,
    RunSummary,
    RunTrace,
    Started,
    StartRun,
    StepOut,
    UsageOut,
    WaitingOut,
)
from podium.stores import Store

__all__ = ["STATIC", "create_app", "runs_by_status_metrics"]

logger = logging.getLogger("podium.server")

STATIC = Path(__file__).with_name("static")
BEARER = HTTPBearer(auto_error=False, description="An API key: Authorization: Bearer KEY")
POLL = 0.5  # seconds between looks at the store for events of a run driven elsewhere
# An event this process announced but has not stored yet is looked for again after SOON
# seconds, doubling each look up to SOON_MAX (its step's commit takes a millisecond or a few)
SOON = 0.002
SOON_MAX = 0.032
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream (proxies drop idle ones)
MAX_DEPTH = 200
ALL = 2**62

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No key, or a key the server does not know."},
    403: {"model": Problem, "description": "The key's role does not allow this."},
    422: {"model": Problem, "description": "The request is malformed or does not fit."},
}
RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": Problem, "description": "No such run."},
}
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **RUN_ERRORS,
    400: {"model": Problem, "description": "The body cannot be read as JSON text."},
    409: {"model": Problem, "description": "The run is not in a state that allows this."},
}


class ApiError(Exception):
    """A request that cannot be served: its status and a message naming the problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra  # more fields of the body (a fork's unknown step: the run's steps)


# the server's state -------------------------------------------------------------------------
class Server:
    """One runtime on the store, the keys, the in-process worker and the background runs."""

    def __init__(
        self,
        store: str | Store | None,
        keys: list[KeyEntry] | None,
        *,
        workers: int,
        targets: Sequence[str],
        poll: float,
    ) -> None:
        self.rt = Runtime(store, targets=targets)
        self.keys = KeyRing(keys or ())
        self.keys_from_store = keys is None
        self.keys_read = time.monotonic()
        self.workers = workers
        self.targets = tuple(targets)
        self.poll = poll
        self.background: set[asyncio.Task[Any]] = set()
        self.busy: set[str] = set()  # runs a request is resuming now (see `_start_resume`)
        self.worker: asyncio.Task[Any] | None = None
        self.wake: dict[str, set[asyncio.Event]] = {}  # SSE streams of a run, to wake
        self.announced: dict[str, int] = {}  # per streamed run: the last seq emitted here
        self.rt.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        waiters = self.wake.get(event.run_id)
        if not waiters:
            return
        if event.seq > self.announced.get(event.run_id, 0):
            self.announced[event.run_id] = event.seq
        for waiter in waiters:
            waiter.set()

    async def start(self) -> None:
        store = await self.rt.open()
        if self.keys_from_store:
            self.keys.replace(await stored_keys(store))
        if self.workers > 0:
            self.worker = asyncio.create_task(
                self.rt.work(concurrency=self.workers, poll=min(self.poll, 0.2), signals=False),
                name="podium server worker",
            )

    async def stop(self) -> None:
        self.rt.stop()
        tasks = [*self.background, *([self.worker] if self.worker else [])]
        if tasks:  # runs park at their next step; what is left after a moment is cancelled
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.rt.close()

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ApiError(
                401,
                "this endpoint needs an API key: send Authorization: Bearer KEY",
                {"WWW-Authenticate": "Bearer"},
            )
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401, "send the key as Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"}
            )
        found = self.keys.find(key.strip())
        now = time.monotonic()
        if found is None and self.keys_from_store and now - self.keys_read >= 1.0:
            # a key added to the store since the last look (at most once a second: a flood
            # of wrong keys must not become a flood of store reads)
            self.keys_read = now
            self.keys.replace(await stored_keys(await self.rt.open()))
            found = self.keys.find(key.strip())
        if found is None:
            raise ApiError(401, "unknown API key", {"WWW-Authenticate": "Bearer"})
        return found

    async def audit(self, run_id: str, kind: str, who: Principal, data: dict[str, Any]) -> None:
        """Chain a record of an API call that changed a run, with the key's identity."""
        payload = canonical({"role": who.role, **data})
        draft = AuditDraft(run_id, kind, time.time(), who.identity, payload, sha256(payload))
        await (await self.rt.open()).append_audit([draft])

    async def launch(self, stream: RunStream) -> None:
        """Start a resume in the background once its first event shows it under way: misuse
        (a decision that does not fit, a run held elsewhere) raises here, nothing written."""
        try:
            await stream.__anext__()
        except StopAsyncIteration:
            return
        task = asyncio.create_task(self._follow(stream), name=f"podium resume {stream.run_id}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _follow(self, stream: RunStream) -> None:
        try:
            async for _ in stream:
                pass
            await stream.result()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the run's own failure is in the store; say it in the log
            logger.warning("run %s: %s: %s", stream.run_id, type(e).__name__, e)


# conversions -------------------------------------------------------------------------------
def _usage(usage: Any) -> UsageOut:
    return UsageOut.model_validate(to_plain(usage) if usage is not None else {})


def _summary(r: RunRecord) -> RunSummary:
    return RunSummary(
        run_id=r.run_id,
        agent=r.agent,
        status=str(r.status),
        error=r.error,
        target=r.target,
        created_at=r.created_at,
        updated_at=r.updated_at,
        usage=_usage(r.usage),
    )


def _step(s: StepRecord) -> StepOut:
    return StepOut(
        key=s.key,
        agent=s.agent,
        kind=str(s.kind),
        status=str(s.status),
        attempt=s.attempt,
        output=_value(s.output),
        error=s.error,
        started_at=s.started_at,
        ended_at=s.ended_at,
        usage=None if s.usage is None else _usage(s.usage),
    )


def _finite(value: Any) -> Any:
    """`value` with NaN and the infinities as the strings "NaN", "Infinity", "-Infinity":
    JSON has no such numbers (a run may still hold them: the store keeps them tagged)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _value(value: Any) -> Any:
    """A run's value (input, output, a step's output) as the API shows it: plain JSON, with
    non-finite numbers as strings (pydantic would make them null)."""
    return _finite(to_plain(value))


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # NaN or an infinity somewhere: said as strings (rare: walk only then)
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, default=str)


class Json(JSONResponse):
    """JSON responses that stay JSON when a run's values hold NaN or an infinity."""

    def render(self, content: Any) -> bytes:
        return _dumps(content).encode("utf-8")


def _sse(event: Event) -> str:
    data = _dumps(to_plain(event.to_dict()))
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


def _check_value(value: Any, source: str) -> None:
    """Refuse what the journal could not keep: too deep, or lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(422, f"{source} holds a lone surrogate, not Unicode text") from None
        elif isinstance(item, list | dict):
            if depth > MAX_DEPTH:
                raise ApiError(422, f"{source} is nested more than {MAX_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _default_metrics(rt: Runtime) -> Callable[[Store], Awaitable[str]]:
    """`/metrics` from `podium.Metrics` (fed by the server's runtime: steps, tokens, cost,
    retries, breakers, denials, and the store's runs, waiting runs and DLQ) when
    prometheus-client is installed (the `server` extra), else runs by status."""
    try:
        from podium.observability.metrics import Metrics

        metrics = Metrics()
    except ImportError:
        return runs_by_status_metrics
    rt.subscribe(metrics)

    async def render(store: Store) -> str:
        return (await metrics.scrape(store)).decode()

    return render


async def runs_by_status_metrics(store: Store) -> str:
    """The Prometheus text of `podium_runs{status=...}`: how many runs the store holds in
    each status (what `/metrics` serves when no richer exposition is installed)."""
    lines = [
        "# HELP podium_runs Runs in the store, by status.",
        "# TYPE podium_runs gauge",
    ]
    for status in RunStatus:
        count = len(await store.list_runs(status=status, limit=ALL))
        lines.append(f'podium_runs{{status="{status.value}"}} {count}')
    return "\n".join(lines) + "\n"


# the app -----------------------------------------------------------------------------------
def create_app(  # noqa: C901 (the endpoints are closures over one server, each simple)
    store_url: str | Store | None = None,
    keys: Mapping[str, str] | Iterable[KeyEntry] | None = None,
    *,
    workers: int = 4,
    targets: Sequence[str] = (),
    static_dir: str | Path | None = STATIC,
    poll: float = POLL,
    metrics: Callable[[Store], Awaitable[str]] | None = None,
) -> FastAPI:
    """The API over the store at `store_url` (a URL or a `Store`; default `PODIUM_STORE`).

    `keys` maps API key to role (`viewer`, `operator`, `approver`, `admin`; `role:name` names
    the key's identity), or is a list of `KeyEntry`; None reads the keys kept in the store
    (`podium.server.auth.ensure_admin_key` makes the first). `workers` runs are driven at
    once by the server's own worker (0: none, leave queued runs to `podium worker`s).
    `targets` pins the targets the server may load (as `podium worker --target`); by default
    the project's rules apply. The UI's files are served from `static_dir` at `/` when it
    exists. `metrics` renders `/metrics` from the store (default: runs by status)."""
    if workers < 0:
        raise UsageError(f"workers must be 0 or more, got {workers}")
    server = Server(
        store_url,
        entries_of(keys),
        workers=workers,
        targets=targets,
        poll=poll,
    )
    render_metrics = metrics or _default_metrics(server.rt)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="podium",
        version="0.1.0",
        summary="Runs, their events, people's decisions and the dead-letter queue.",
        lifespan=lifespan,
        default_response_class=Json,
    )
    app.state.podium = server
    _handlers(app)

    def need(permission: str) -> Any:
        async def check(
            request: Request,
            _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
        ) -> Principal:
            # the header read as sent (the scheme names it in the OpenAPI document)
            who = await server.principal(request.headers.get("authorization"))
            if not who.may(permission):
                raise ApiError(
                    403, f"the key {who.identity!r} is a {who.role}, which may not {permission}"
                )
            return who

        return Depends(check)

    Reader = Annotated[Principal, need("read")]
    Operator = Annotated[Principal, need("operate")]
    Approver = Annotated[Principal, need("decide")]

    async def run_of(run_id: str) -> RunRecord:
        try:
            check_lookup_id(run_id)
        except UsageError as e:
            raise ApiError(404, f"no run {run_id[:60]!r}: {e}") from None
        record = await (await server.rt.open()).get_run(run_id)
        if record is None:
            raise ApiError(404, f"no run {run_id!r} in this store")
        return record

    def trusted_agent(record: RunRecord) -> Any:
        """The run's agent, from its stored target, if this server trusts it (else 409)."""
        from podium.core.targets import TrustedTargets

        try:
            trusted = TrustedTargets.load(server.targets)
            return trusted.agent_for(record.target, record.agent, record.run_id)
        except UsageError as e:
            raise ApiError(409, " ".join(str(e).split())) from None
        except Exception as e:  # the user's module failed to import: their bug, named
            raise ApiError(
                409,
                f"run {record.run_id}: its target {record.target!r} failed to load: "
                f"{type(e).__name__}: {e}",
            ) from None

    # health ------------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process answers."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["health"],
        responses={503: {"model": Problem, "description": "The store cannot be reached."}},
    )
    async def readyz() -> Any:
        """The store answers."""
        try:
            await (await server.rt.open()).list_runs(limit=1)
        except Exception as e:
            return JSONResponse({"detail": f"store: {type(e).__name__}: {e}"}, status_code=503)
        return Health(status="ready")

    @app.get("/metrics", response_class=PlainTextResponse, tags=["health"])
    async def metrics_text() -> PlainTextResponse:
        """Prometheus exposition (no key needed)."""
        text = await render_metrics(await server.rt.open())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # runs --------------------------------------------------------------------------------
    @app.post(
        "/api/runs",
        response_model=Started,
        status_code=202,
        tags=["runs"],
        responses={**CHANGE_ERRORS, 403: {"model": Problem, "description": "Role or target."}},
    )
    async def start_run(body: StartRun, who: Operator) -> Started:
        """Start a run of a trusted target: queued in the store, driven by a worker."""
        from podium.core.targets import TrustedTargets, load_target, normalise

        _check_value(body.input, "input")
        try:
            ref = normalise(body.target)
            why = TrustedTargets.load(server.targets).refusal(ref)
        except (TargetError, ValueError, OSError) as e:
            raise ApiError(422, f"target {body.target!r}: {e}") from None
        if why is not None:
            raise ApiError(
                403, f"{why}; this server loads only targets it trusts (podium serve --target)"
            )
        try:
            agent = load_target(ref)
        except UsageError as e:
            raise ApiError(422, str(e)) from None
        except Exception as e:  # the user's module failed to import: their bug, named
            raise ApiError(
                422, f"target {body.target!r} failed to load: {type(e).__name__}: {e}"
            ) from None
        run_id = None if body.run_id is None else check_run_id(body.run_id)
        if run_id is not None and await (await server.rt.open()).get_run(run_id) is not None:
            raise ApiError(409, f"run {run_id!r} exists already; pick another id or omit it")
        budget = None if body.budget is None else Budget.from_dict(dict(body.budget))
        value = body.input
        check = getattr(agent, "check_input", None)
        if check is not None:
            try:
                value = check(value)
            except ValidationError as e:
                detail = describe_validation_error(e)
                raise ApiError(422, f"input for agent {agent.name!r}: {detail}") from None
        rid = await server.rt.submit(agent, value, run_id=run_id, target=ref, budget=budget)
        await server.audit(rid, "api.run.started", who, {"target": ref, "agent": agent.name})
        return Started(run_id=rid, status="running", agent=agent.name)

    @app.get("/api/runs", response_model=RunPage, tags=["runs"], responses=ERRORS)
    async def list_runs(
        _: Reader,
        status: Annotated[RunStatus | None, Query(description="Only this status.")] = None,
        agent: Annotated[str | None, Query(max_length=400, description="Only this agent.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> RunPage:
        """Runs, newest first, as summaries (never their inputs or outputs)."""
        store = await server.rt.open()
        if agent is None:
            got = await store.list_runs(status=status, limit=offset + limit + 1)
        else:
            got = [r for r in await store.list_runs(status=status, limit=ALL) if r.agent == agent]
        page = got[offset : offset + limit]
        more = len(got) > offset + limit
        return RunPage(
            runs=[_summary(r) for r in page], next_offset=offset + limit if more else None
        )

    @app.get("/api/runs/{run_id}", response_model=RunDetail, tags=["runs"], responses=RUN_ERRORS)
    async def get_run(run_id: str, _: Reader) -> RunDetail:
        """One run whole: input, output, error, usage, its journal of steps, and the run and
        step it was forked from, if it is a fork."""
        from podium.runtime.runtime import FORK_KV

        record = await run_of(run_id)
        store = await server.rt.open()
        steps = await store.load_steps(run_id)
        origin = await store.kv_get(FORK_KV, run_id) or {}
        return RunDetail(
            **_summary(record).model_dump(),
            input=_value(record.input),
            output=_value(record.output),
            steps=[_step(s) for s in steps],
            forked_from=origin.get("from"),
            forked_at=origin.get("at"),
        )

    @app.get(
        "/api/runs/{run_id}/trace", response_model=RunTrace, tags=["runs"], responses=RUN_ERRORS
    )
    async def run_trace(run_id: str, _: Reader) -> RunTrace:
        """The run as a tree of steps: status, duration, attempts, tokens, retries, replayed
        and cached steps, decisions (what `podium trace` shows)."""
        from podium.observability.trace import build_trace, trace_to_dicts

        record = await run_of(run_id)
        store = await server.rt.open()
        roots = build_trace(await store.load_steps(run_id), await store.list_events(run_id))
        return RunTrace.model_validate(
            {"run": _summary(record).model_dump(), "steps": _value(trace_to_dicts(roots))}
        )

    @app.get(
        "/api/runs/{run_id}/graph",
        response_model=Graph,
        tags=["runs"],
        responses={**RUN_ERRORS, 409: {"model": Problem, "description": "Target not loadable."}},
    )
    async def run_graph(
        run_id: str,
        _: Reader,
        direction: Annotated[str, Query(pattern="^(TD|TB|LR|RL|BT)$")] = "TD",
    ) -> Graph:
        """The topology of the run's workflow as Mermaid (what `podium graph` prints), and the
        same drawing's nodes and edges as data. Its stored target is loaded only if this
        server trusts it."""
        from podium.spec.mermaid import to_graph

        record = await run_of(run_id)
        drawn = to_graph(trusted_agent(record), direction=direction)
        return Graph(
            run_id=run_id,
            agent=record.agent,
            mermaid=drawn.mermaid,
            nodes=[GraphNode(**n.to_dict()) for n in drawn.nodes],
            edges=[GraphEdge(**e.to_dict()) for e in drawn.edges],
        )

    @app.get(
        "/api/runs/{run_id}/events",
        tags=["runs"],
        responses={**RUN_ERRORS, 200: {"content": {"text/event-stream": {}}}},
        response_class=StreamingResponse,
    )
    async def run_events(
        run_id: str,
        request: Request,
        _: Reader,
        last_event_id: Annotated[str | None, Header()] = None,
        follow: Annotated[bool, Query(description="Stay open until the run ends.")] = True,
    ) -> StreamingResponse:
        """The run's events as Server-Sent Events (`id:` is the event's seq), live until the
        run ends; reconnect with `Last-Event-ID` to get only what came after."""
        await run_of(run_id)
        after = 0
        if last_event_id:
            try:
                after = int(last_event_id.strip())
            except ValueError:
                raise ApiError(
                    422, f"Last-Event-ID must be an event seq (an integer), not {last_event_id!r}"
                ) from None
        return StreamingResponse(
            _event_stream(server, run_id, after, follow, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post(
        "/api/runs/{run_id}/cancel", response_model=Done, tags=["runs"], responses=CHANGE_ERRORS
    )
    async def cancel(run_id: str, who: Operator) -> Done:
        """Cancel a running or waiting run (completed steps stay journaled)."""
        record = await run_of(run_id)
        if record.status in TERMINAL_STATUSES:
            raise ApiError(409, f"run {run_id} is {record.status}; only a live run is cancelled")
        await server.rt.cancel(run_id)
        await server.audit(run_id, "api.run.cancelled", who, {"was": str(record.status)})
        return Done(run_id=run_id, message="cancelled")

    @app.post(
        "/api/runs/{run_id}/resume",
        response_model=Accepted,
        status_code=202,
        tags=["runs"],
        responses=CHANGE_ERRORS,
    )
    async def resume(run_id: str, who: Operator, body: ResumeBody | None = None) -> Accepted:
        """Continue a run that crashed or was interrupted: replayed from its journal."""
        record = await run_of(run_id)
        if record.status in TERMINAL_STATUSES:
            raise ApiError(409, f"run {run_id} is {record.status}; nothing to resume")
        await _start_resume(server, run_id)
        await server.audit(run_id, "api.run.resumed", who, {})
        return Accepted(run_id=run_id, status="running", message="resumed")

    @app.post(
        "/api/runs/{run_id}/replay", response_model=Replayed, tags=["runs"], responses=CHANGE_ERRORS
    )
    async def replay(run_id: str, who: Operator) -> Replayed:
        """Re-execute a finished run's orchestration against its journal (the determinism
        check, as `podium replay`): nothing runs a model or a tool, nothing of the run is
        written. `ok`, or the step where the code now decides otherwise, and what differs."""
        record = await run_of(run_id)
        if record.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
            raise ApiError(
                409,
                f"run {run_id} is {record.status}: only a finished run (completed or "
                "failed) replays",
            )
        agent = trusted_agent(record)  # an untrusted target is refused before anything runs
        try:
            report = await server.rt.replay(run_id, agent)
        except UnknownRunError as e:
            raise ApiError(404, str(e)) from None
        except Exception as e:  # the run's code fails to replay at all: say how
            raise ApiError(
                409,
                f"run {run_id} cannot be replayed: {type(e).__name__}: " + " ".join(str(e).split()),
            ) from None
        if report.ok:
            message = (
                f"run {run_id} replays: {report.checked} journaled steps matched, "
                f"{len(report.rerun)} agents re-run"
            )
        else:
            message = str(report.error)
        await server.audit(run_id, "api.run.replayed", who, {"ok": report.ok, "step": report.step})
        return Replayed(
            run_id=run_id,
            ok=report.ok,
            step=report.step,
            problem=report.problem,
            message=message,
            checked=report.checked,
            rerun=list(report.rerun),
        )

    @app.post(
        "/api/runs/{run_id}/fork",
        response_model=Forked,
        status_code=202,
        tags=["runs"],
        responses=CHANGE_ERRORS,
    )
    async def fork(run_id: str, body: ForkBody, who: Operator) -> Forked:
        """Start a new run that reuses this run's completed steps journaled before `at` and
        runs on from there (as `podium fork`); `input` replaces the run's input. The new run
        is queued, driven by a worker; this run is left as it is."""
        from podium.runtime.effects import SAGA_KEY
        from podium.runtime.runtime import KEEP_INPUT

        _check_value(body.input, "input")
        record = await run_of(run_id)
        if record.status not in TERMINAL_STATUSES:
            raise ApiError(
                409,
                f"run {run_id} is {record.status}: only a finished run forks (wait for "
                "it, or cancel it first)",
            )
        steps = await (await server.rt.open()).load_steps(run_id)
        keys = [s.key for s in steps if s.key != SAGA_KEY]
        if body.at not in keys:
            raise ApiError(
                422,
                f"run {run_id} has no step {body.at[:200]!r}: fork at one of its steps",
                steps=keys,
            )
        agent = trusted_agent(record)
        value: Any = KEEP_INPUT
        if "input" in body.model_fields_set:
            value = body.input
            check = getattr(agent, "check_input", None)
            if check is not None:
                try:
                    check(value)
                except ValidationError as e:
                    detail = describe_validation_error(e)
                    raise ApiError(422, f"input for agent {agent.name!r}: {detail}") from None
        try:
            new_id = await server.rt.submit_fork(run_id, at=body.at, input=value, agent=agent)
        except UsageError as e:
            raise ApiError(409, " ".join(str(e).split())) from None
        await server.audit(
            new_id, "api.run.forked", who, {"from": run_id, "at": body.at, "agent": agent.name}
        )
        return Forked(
            run_id=new_id, status="running", agent=agent.name, forked_from=run_id, at=body.at
        )

    # people ------------------------------------------------------------------------------
    @app.get("/api/inbox", response_model=list[WaitingOut], tags=["people"], responses=ERRORS)
    async def inbox(_: Reader) -> list[WaitingOut]:
        """What waiting runs need from a person, oldest first."""
        return [WaitingOut.model_validate(to_plain(w.to_dict())) for w in await server.rt.inbox()]

    async def decide(run_id: str, decision: Decision, step: str | None, who: Principal) -> Accepted:
        record = await run_of(run_id)
        if record.status != RunStatus.WAITING:
            raise ApiError(409, f"run {run_id} is {record.status}, not waiting for a decision")
        await _start_resume(server, run_id, decision=decision, step=step, identity=who.identity)
        return Accepted(run_id=run_id, status="running", message=f"{decision.action} recorded")

    @app.post(
        "/api/runs/{run_id}/approve",
        response_model=Accepted,
        status_code=202,
        tags=["people"],
        responses=CHANGE_ERRORS,
    )
    async def approve(run_id: str, body: ApproveBody, who: Approver) -> Accepted:
        """Approve what the run proposes (`edited` replaces it) and resume it."""
        _check_value(body.edited, "edited")
        decision = Decision.approve(
            body.edited, comment=body.comment, by=who.identity, ttl=body.ttl
        )
        return await decide(run_id, decision, body.step, who)

    @app.post(
        "/api/runs/{run_id}/reject",
        response_model=Accepted,
        status_code=202,
        tags=["people"],
        responses=CHANGE_ERRORS,
    )
    async def reject(run_id: str, body: RejectBody, who: Approver) -> Accepted:
        """Reject what the run proposes; its flow stops with the comment as the reason."""
        if not body.comment.strip():
            raise ApiError(422, "a rejection needs a comment: say why, it is kept with the run")
        decision = Decision.reject(body.comment, by=who.identity)
        return await decide(run_id, decision, body.step, who)

    @app.post(
        "/api/runs/{run_id}/answer",
        response_model=Accepted,
        status_code=202,
        tags=["people"],
        responses=CHANGE_ERRORS,
    )
    async def answer(run_id: str, body: AnswerBody, who: Approver) -> Accepted:
        """Answer the question the run asks and resume it."""
        _check_value(body.answer, "answer")
        if body.answer is None:
            raise ApiError(422, "an answer must be a value, not null")
        decision = Decision.answer(body.answer, by=who.identity)
        return await decide(run_id, decision, body.step, who)

    # the dead-letter queue ---------------------------------------------------------------
    @app.get("/api/dlq", response_model=list[DeadLetter], tags=["dlq"], responses=ERRORS)
    async def dlq_list(_: Reader) -> list[DeadLetter]:
        """Runs that failed for good, oldest first, with their reason."""
        return [DeadLetter.model_validate(to_plain(e)) for e in await server.rt.dead_letters()]

    async def dead_entry(run_id: str) -> dict[str, Any]:
        await run_of(run_id)
        entry = await (await server.rt.open()).kv_get(DLQ, run_id)
        if entry is None:
            raise ApiError(404, f"run {run_id} is not in the dead-letter queue")
        return dict(entry)

    @app.post(
        "/api/dlq/{run_id}/requeue",
        response_model=Accepted,
        status_code=202,
        tags=["dlq"],
        responses=CHANGE_ERRORS,
    )
    async def dlq_requeue(run_id: str, who: Operator) -> Accepted:
        """Resume a dead-lettered run from its last completed step (after a fix)."""
        entry = await dead_entry(run_id)
        if (entry.get("saga") or {}).get("status") == "completed":
            raise ApiError(
                409, f"run {run_id}: its side effects were compensated; start a new run instead"
            )
        store = await server.rt.open()
        await store.kv_delete(DLQ, run_id)
        try:
            await _start_resume(server, run_id)
        except BaseException:
            await store.kv_put(DLQ, run_id, entry)  # not requeued: it stays in the queue
            raise
        await server.audit(run_id, "api.dlq.requeued", who, {"error": entry.get("error")})
        return Accepted(run_id=run_id, status="running", message="requeued")

    @app.post(
        "/api/dlq/{run_id}/discard", response_model=Done, tags=["dlq"], responses=CHANGE_ERRORS
    )
    async def dlq_discard(run_id: str, who: Operator) -> Done:
        """Drop a run from the dead-letter queue; it stays failed, with its journal."""
        entry = await dead_entry(run_id)
        await (await server.rt.open()).kv_delete(DLQ, run_id)
        await server.audit(run_id, "api.dlq.discarded", who, {"error": entry.get("error")})
        return Done(run_id=run_id, message="discarded")

    if static_dir is not None and Path(static_dir).is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(static_dir), html=True), name="ui")
    return app


async def _start_resume(
    server: Server,
    run_id: str,
    *,
    decision: Decision | None = None,
    step: str | None = None,
    identity: str | None = None,
) -> None:
    """Resume in the background; misuse becomes a 409 (the run's state) before anything is
    written (the runtime checks the decision, the target's trust and the lease first)."""
    # One at a time per run: two decisions sent at once would both pass the runtime's checks
    # (its lease is this process's either way) until the first one's run is under way.
    if run_id in server.busy:
        raise ApiError(409, f"run {run_id} is being resumed or decided by another request")
    server.busy.add(run_id)
    try:
        stream = server.rt.stream_resume(run_id, decision=decision, step=step, identity=identity)
        await server.launch(stream)
    except UnknownRunError as e:
        raise ApiError(404, str(e)) from None
    except UsageError as e:
        raise ApiError(409, " ".join(str(e).split())) from None
    finally:
        server.busy.discard(run_id)


async def _event_stream(
    server: Server, run_id: str, after: int, follow: bool, request: Request
) -> AsyncIterator[str]:
    """SSE text: stored events past `after`, then new ones as they are stored, until the run
    is over (completed, failed, cancelled) and every event of it was sent."""
    store = await server.rt.open()
    waiter = asyncio.Event()
    server.wake.setdefault(run_id, set()).add(waiter)
    quiet = 0.0
    behind_since: float | None = None
    looks = 0  # looks since the stream fell behind an announced event
    try:
        ended = False
        while True:
            events = await store.list_events(run_id)
            for event in events:
                if event.seq > after:
                    yield _sse(event)
                    after = event.seq
                    quiet = 0.0
            if ended or not follow:
                return
            record = await store.get_run(run_id)
            if record is None or record.status in TERMINAL_STATUSES:
                ended = True  # one more look: events stored just before the status
                continue
            if await request.is_disconnected():
                return
            # an event of this process announced but not stored yet (the store writes it
            # with its step's row, a moment later): look again soon, not a poll later
            # (for a second at most: an event a fenced-off writer dropped is never stored)
            behind = server.announced.get(run_id, 0) > after
            behind_since = (behind_since or time.monotonic()) if behind else None
            soon = behind_since is not None and time.monotonic() - behind_since < 1.0
            looks = looks + 1 if soon else 0
            wait = min(SOON * 2 ** (looks - 1), SOON_MAX) if soon else server.poll
            waiter.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), wait)
            quiet += wait
            if quiet >= KEEPALIVE:
                quiet = 0.0
                yield ": keepalive\n\n"
    finally:
        waiters = server.wake.get(run_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                server.wake.pop(run_id, None)
                server.announced.pop(run_id, None)


def _handlers(app: FastAPI) -> None:
    """Every refusal as `{"detail": ...}` with a 4xx: never a traceback, never a 500."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        body = {"detail": e.detail, **e.extra}
        return JSONResponse(body, status_code=e.status, headers=e.headers)

    @app.exception_handler(UnknownRunError)
    async def unknown_run(_: Request, e: UnknownRunError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(e).split())}, status_code=404)

    @app.exception_handler(UsageError)
    async def usage(_: Request, e: UsageError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(e).split())}, status_code=422)

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, e: ValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_validation_error(e)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = to_plain(e.errors())
        return JSONResponse({"detail": json.loads(json.dumps(errors, default=str))}, 422)
