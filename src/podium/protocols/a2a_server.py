"""A podium agent served over A2A (protocol 1.0, JSON-RPC binding, the official `a2a-sdk`).

    podium a2a serve flow.yaml --port 9000 --store sqlite:///runs.db

The agent card (at `/.well-known/agent-card.json`) names the agent, says what it does (its
description and skills, `skills_of`) and where to reach it (`--url`, default the address it
listens on). Every A2A task is a durable podium run on the store, the task id
its run id, so `podium runs`, `podium trace` and the UI show it like any other, and
`tasks/get` answers from the store (after a restart too):

    podium run status     A2A task state
    running               working
    waiting               input-required (a person, or the client, must decide)
    completed             completed (the output as an artifact)
    failed                failed (the error as the status message)
    cancelled             canceled

A message with the id of an `input-required` task is the reply: its text (or data) answers
the question the run waits on (`Decision.answer`); an approval takes `approve` / `reject`
(or `yes` / `no`), and a data part `{"action": ..., ...}` states any `Decision`. The run
then goes on. A message id seen before (a client resending after a crash) gets the task it
started, not a second run.

A server stopped mid-task (or killed) leaves the run `running`; one started again on the same
store goes on with it from its journal, so the task still ends.

With API keys (`create_a2a_app(authenticate=...)`; the CLI passes `podium serve`'s keys),
every request but the card's needs a bearer key, and its role decides what it may do.

`tasks/cancel` cancels the run; `SubscribeToTask` follows a task that is not over (its steps
as this server drives them, then its end); push notifications are not offered (the card says
so); `tasks/list` lists this agent's runs, newest first, filtered and paged. A task's
history is the client's messages (kept beside the run in the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import socket
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from podium.agents.remote import parts_value, to_part
from podium.core.records import TERMINAL_STATUSES, Event, RunRecord, RunStatus
from podium.core.serde import describe_validation_error
from podium.errors import UsageError
from podium.protocols.bearer import ASK_FOR_KEY, bearer_key, send_json
from podium.runtime.leases import holder_is_gone
from podium.runtime.runtime import Runtime, new_run_id
from podium.runtime.waiting import Decision, as_decision, waiting_requests

try:
    from a2a.server.context import ServerCallContext
    from a2a.server.request_handlers import RequestHandler
    from a2a.server.request_handlers.request_handler import validate_request_params
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.types import a2a_pb2 as pb
    from a2a.utils import errors as a2a_errors
    from a2a.utils.task import validate_history_length, validate_page_size
    from google.protobuf import json_format  # type: ignore[import-untyped]
except ImportError as e:  # pragma: no cover - the extra is installed in tests
    raise UsageError.missing_extra("serving over A2A", "a2a", e) from None

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from podium.stores import Store

__all__ = [
    "A2AHandler",
    "STATES",
    "agent_card",
    "create_a2a_app",
    "serve_a2a",
    "skills_of",
]

MESSAGES_KV = "a2a.messages"  # message id -> the run it started (a resend gets that run)
TASKS_KV = "a2a.tasks"  # run id -> {"context_id": ..., "history": [the client's messages]}
CARD_PATH = "/.well-known/agent-card.json"
IDENTITY = "a2a"  # who decided, as a decision over A2A is recorded (beside the OS account)

STATES: dict[RunStatus, Any] = {
    RunStatus.RUNNING: pb.TASK_STATE_WORKING,
    RunStatus.WAITING: pb.TASK_STATE_INPUT_REQUIRED,
    RunStatus.COMPLETED: pb.TASK_STATE_COMPLETED,
    RunStatus.FAILED: pb.TASK_STATE_FAILED,
    RunStatus.CANCELLED: pb.TASK_STATE_CANCELED,
}
# Who the request in progress comes from (set by the app's key check; None: no keys).
_CALLER: contextvars.ContextVar[Any] = contextvars.ContextVar("a2a_caller", default=None)
Authenticate = Callable[[str], Any]
"""A bearer key -> who sends it (with `.identity` and `.may(permission)`), or None."""
_YES = frozenset({"approve", "approved", "yes", "y", "ok"})
_NO = frozenset({"reject", "rejected", "no", "n"})


def skills_of(agent: Any) -> list[Any]:
    """What the card says the agent can do: its own `skills` if it declares them (dicts with
    `id`, `name`, `description`, `tags`, `examples`), one per route of a `Router` (a route is
    a skill the router picks for the caller), else one: the agent itself."""
    declared = getattr(agent, "skills", None)
    if declared:
        return [
            pb.AgentSkill(**({"id": s, "name": s} if isinstance(s, str) else s)) for s in declared
        ]
    described = getattr(agent, "description", "") or f"the podium agent {agent.name}"
    routes = getattr(agent, "routes", None)
    if isinstance(routes, dict) and routes:
        return [
            pb.AgentSkill(
                id=name,
                name=name,
                description=getattr(route, "description", "") or f"{agent.name}: {name}",
                tags=["podium", "route"],
            )
            for name, route in routes.items()
        ]
    return [
        pb.AgentSkill(
            id=agent.name,
            name=agent.name,
            description=described,
            tags=["podium", type(agent).__name__],
        )
    ]


def agent_card(agent: Any, url: str, *, version: str = "1.0.0", bearer: bool = False) -> Any:
    """The A2A card of `agent` served at `url` (saying it wants a bearer key, if `bearer`)."""
    description = getattr(agent, "description", "") or f"the podium agent {agent.name}"
    card = pb.AgentCard(
        name=agent.name,
        description=description,
        version=version,
        supported_interfaces=[
            pb.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=skills_of(agent),
    )
    if bearer:
        scheme = pb.HTTPAuthSecurityScheme(scheme="bearer", description="a podium API key")
        card.security_schemes["bearer"].CopyFrom(
            pb.SecurityScheme(http_auth_security_scheme=scheme)
        )
        card.security_requirements.append(
            pb.SecurityRequirement(schemes={"bearer": pb.StringList()})
        )
    return card


def _text(text: str, task_id: str, context_id: str) -> Any:
    return pb.Message(
        message_id=f"{task_id}-status",
        role=pb.Role.ROLE_AGENT,
        parts=[pb.Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


class A2AHandler(RequestHandler):
    """The SDK's request handler interface, answered from a podium `Runtime`: tasks are runs."""

    def __init__(self, runtime: Runtime, agent: Any, target: str | None = None) -> None:
        self.rt = runtime
        self.agent = agent
        self.target = target
        self._running: dict[str, asyncio.Task[Any]] = {}
        # Readers of a run's events (a stream, a subscriber, a send waiting for it to begin).
        # One listener, subscribed before any run starts, hands every event to them.
        self._readers: dict[str, list[asyncio.Queue[Event]]] = {}
        runtime.subscribe(self._hand_on)

    def _hand_on(self, event: Event) -> None:
        for queue in self._readers.get(event.run_id, ()):
            queue.put_nowait(event)

    @contextlib.contextmanager
    def _reading(self, rid: str) -> Iterator[asyncio.Queue[Event]]:
        """A queue of `rid`'s events from now on, while the block runs."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        readers = self._readers.setdefault(rid, [])
        readers.append(queue)
        try:
            yield queue
        finally:
            readers.remove(queue)
            if not readers:
                del self._readers[rid]

    async def _store(self) -> Store:
        return await self.rt.open()

    # tasks as runs ---------------------------------------------------------------------------
    async def _record(self, store: Store, run_id: str) -> RunRecord:
        """The run that is task `run_id`: a run of this agent only (a store may hold others,
        which are no task of this server)."""
        record = await store.get_run(run_id) if run_id else None
        if record is None or record.agent != self.agent.name:
            raise a2a_errors.TaskNotFoundError(f"no task {run_id!r}")
        return record

    async def task(self, run_id: str, history_length: int | None = None) -> Any:
        """The A2A task for a run, from the store (with the last `history_length` messages
        of its history; None: all)."""
        store = await self._store()
        return await self._as_task(store, await self._record(store, run_id), history_length)

    async def _as_task(
        self, store: Store, record: RunRecord, history_length: int | None = None
    ) -> Any:
        rid = record.run_id
        meta = await store.kv_get(TASKS_KV, rid) or {}
        context_id = str(meta.get("context_id") or rid)
        status = pb.TaskStatus(state=STATES[record.status])
        if record.updated_at:
            status.timestamp.FromNanoseconds(int(record.updated_at * 1e9))
        if record.status == RunStatus.WAITING:
            asks = waiting_requests(record, await store.load_steps(rid))
            prompts = [_prompt_of(w.request, w.reason) for w in asks]
            status.message.CopyFrom(_text("\n".join(prompts), rid, context_id))
        elif record.status in (RunStatus.FAILED, RunStatus.CANCELLED):
            status.message.CopyFrom(_text(record.error or str(record.status), rid, context_id))
        task = pb.Task(id=rid, context_id=context_id, status=status)
        history = meta.get("history") or []
        if history_length is not None:
            history = history[len(history) - history_length :] if history_length else []
        task.history.extend(json_format.ParseDict(m, pb.Message()) for m in history)
        if record.status == RunStatus.COMPLETED:
            task.artifacts.append(
                pb.Artifact(
                    artifact_id=f"{rid}-output", name="output", parts=[to_part(record.output)]
                )
            )
        return task

    def _input(self, message: Any) -> Any:
        value = parts_value(message.parts)
        check = getattr(self.agent, "check_input", None)
        if check is None:
            return value
        try:
            return check(value)
        except ValidationError as first:
            error = first
        if isinstance(value, str):  # JSON sent as text: the error is the parsed value's
            try:
                return check(json.loads(value))
            except ValueError as second:  # not JSON (a ValidationError is a ValueError too)
                if isinstance(second, ValidationError):
                    error = second
        raise a2a_errors.InvalidParamsError(
            f"input for agent {self.agent.name!r}: {describe_validation_error(error)}"
        )

    async def _begin(self, message: Any, rid: str) -> str:
        """Start the run a message asks for as `rid` (or find the one it started before, or
        go on with the one it replies to); the run's id."""
        store = await self._store()
        if message.task_id:
            await self._reply(store, message)
            return str(message.task_id)
        if message.message_id:
            seen = await store.kv_get(MESSAGES_KV, message.message_id)
            if seen is not None and await store.get_run(str(seen)) is not None:
                return str(seen)
        value = self._input(message)
        if message.message_id:
            await store.kv_put(MESSAGES_KV, message.message_id, rid)
        context_id = message.context_id or rid
        await store.kv_put(
            TASKS_KV, rid, {"context_id": context_id, "history": [_said(message, rid, context_id)]}
        )
        running = await self._begun(
            rid, self.rt.run(self.agent, value, run_id=rid, target=self.target)
        )
        refused = running.done() and not running.cancelled() and running.exception() is not None
        if refused and await store.get_run(rid) is None:  # refused before it started
            raise a2a_errors.InvalidParamsError(str(running.exception()))
        return rid

    async def _reply(self, store: Store, message: Any) -> None:
        rid = message.task_id
        record = await self._record(store, rid)
        if record.status != RunStatus.WAITING:
            raise a2a_errors.InvalidParamsError(
                f"task {rid} is {STATES_NAMES[record.status]}, not input-required: "
                "a reply goes only to a task that asks for input"
            )
        asks = waiting_requests(record, await store.load_steps(rid))
        kind = asks[0].request.get("kind") if asks and isinstance(asks[0].request, dict) else None
        decision = _decision(parts_value(message.parts), kind)
        # The resume records the decision (refusing one that does not fit) and goes on.
        resume = self.rt.resume(rid, self.agent, decision=decision, identity=_identity())
        running = await self._begun(rid, resume)
        if running.done() and not running.cancelled():
            error = running.exception()
            if isinstance(error, UsageError):
                raise a2a_errors.InvalidParamsError(str(error)) from None
        meta = await store.kv_get(TASKS_KV, rid) or {}
        context_id = str(meta.get("context_id") or rid)
        history = [*meta.get("history", []), _said(message, rid, context_id)]
        await store.kv_put(TASKS_KV, rid, {**meta, "context_id": context_id, "history": history})

    async def _begun(self, rid: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Drive `work` (a run or a resume of `rid`) in the background, and wait until it has
        begun (its first event: the run's record, or the decision, is written) or ended
        (refused); its task."""
        with self._reading(rid) as events:
            running = self._drive(rid, work)
            begun = asyncio.ensure_future(events.get())
            try:
                await asyncio.wait({begun, running}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                begun.cancel()
        return running

    def _drive(self, rid: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._running[rid] = task
        task.add_done_callback(lambda _: self._running.pop(rid, None))
        return task

    async def _settled(self, rid: str) -> None:
        task = self._running.get(rid)
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(task)

    # the SDK's interface ---------------------------------------------------------------------
    @validate_request_params  # a message without id, role or parts is InvalidParams
    async def on_message_send(self, params: Any, context: ServerCallContext) -> Any:
        _allow("decide" if params.message.task_id else "operate")
        rid = await self._begin(params.message, new_run_id())
        if not params.configuration.return_immediately:
            await self._settled(rid)
        return await self.task(rid)

    @validate_request_params
    async def on_message_send_stream(
        self, params: Any, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        message = params.message
        _allow("decide" if message.task_id else "operate")
        rid = str(message.task_id) if message.task_id else new_run_id()
        with self._reading(rid) as events:
            found = await self._begin(message, rid)
            if found != rid:  # a resent message: its first run's stream from now on
                async for item in self._follow_anew(found):
                    yield item
                return
            async for item in self._follow(rid, events):
                yield item

    async def _follow_anew(self, rid: str) -> AsyncGenerator[Any]:
        with self._reading(rid) as events:
            async for item in self._follow(rid, events):
                yield item

    @validate_request_params
    async def on_subscribe_to_task(
        self, params: Any, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        _allow("read")
        record = await self._record(await self._store(), params.id)
        if record.status in TERMINAL_STATUSES:
            raise a2a_errors.UnsupportedOperationError(
                f"task {params.id} is {STATES_NAMES[record.status]}: nothing more will happen"
            )
        async for item in self._follow_anew(params.id):
            yield item

    async def _follow(self, rid: str, events: asyncio.Queue[Event]) -> AsyncGenerator[Any]:
        """A task's stream: the task as it is (working), a `working` update as each step of
        the run this server drives completes, then the output artifact and the last status."""
        task = await self.task(rid)
        context_id = task.context_id
        if task.status.state not in (pb.TASK_STATE_INPUT_REQUIRED,) or rid in self._running:
            task.status.CopyFrom(pb.TaskStatus(state=pb.TASK_STATE_WORKING))
        task.ClearField("artifacts")
        yield task  # its end comes last (it may have run on already)
        while rid in self._running or not events.empty():
            try:
                event = await asyncio.wait_for(events.get(), 0.05)
            except TimeoutError:
                continue
            if event.run_id == rid and event.kind == "step.completed" and event.key:
                yield pb.TaskStatusUpdateEvent(
                    task_id=rid,
                    context_id=context_id,
                    status=pb.TaskStatus(
                        state=pb.TASK_STATE_WORKING,
                        message=_text(f"{event.agent} done", rid, context_id),
                    ),
                )
        final = await self.task(rid)
        for artifact in final.artifacts:
            yield pb.TaskArtifactUpdateEvent(
                task_id=rid, context_id=context_id, artifact=artifact, last_chunk=True
            )
        yield pb.TaskStatusUpdateEvent(task_id=rid, context_id=context_id, status=final.status)

    @validate_request_params
    async def on_get_task(self, params: Any, context: ServerCallContext) -> Any:
        _allow("read")
        validate_history_length(params)
        length = params.history_length if params.HasField("history_length") else None
        return await self.task(params.id, length)

    @validate_request_params
    async def on_cancel_task(self, params: Any, context: ServerCallContext) -> Any:
        _allow("operate")
        store = await self._store()
        record = await self._record(store, params.id)
        if record.status in TERMINAL_STATUSES:
            raise a2a_errors.TaskNotCancelableError(
                f"task {params.id} is {STATES_NAMES[record.status]}: it cannot be canceled"
            )
        await self.rt.cancel(params.id)
        await self._settled(params.id)
        return await self.task(params.id)

    async def on_list_tasks(self, params: Any, context: ServerCallContext) -> Any:
        """This agent's tasks, newest first, filtered (context, state, status time) and
        paged (`pageSize` 1 to 100, default 50; the page token is an offset); artifacts only
        with `includeArtifacts`."""
        _allow("read")
        validate_history_length(params)
        size = params.page_size if params.HasField("page_size") else 50
        validate_page_size(size)
        offset = _offset(params.page_token)
        store = await self._store()
        runs = [r for r in await self.rt.list_runs(limit=2**62) if r.agent == self.agent.name]
        if params.status != pb.TASK_STATE_UNSPECIFIED:
            runs = [r for r in runs if STATES[r.status] == params.status]
        if params.HasField("status_timestamp_after"):
            after = params.status_timestamp_after.ToNanoseconds() / 1e9
            runs = [r for r in runs if r.updated_at >= after]
        length = params.history_length if params.HasField("history_length") else None

        async def as_task(record: RunRecord) -> Any:
            if params.include_artifacts and record.status == RunStatus.COMPLETED:
                record = await store.get_run(record.run_id) or record  # a listing has no output
            task = await self._as_task(store, record, length)
            if not params.include_artifacts:
                task.ClearField("artifacts")
            return task

        if params.context_id:  # known only from each task: every candidate is read
            tasks = [
                t for t in [await as_task(r) for r in runs] if t.context_id == params.context_id
            ]
            total = len(tasks)
            page = tasks[offset : offset + size]
        else:  # only the page's tasks are read (a store may hold thousands of runs)
            total = len(runs)
            page = [await as_task(r) for r in runs[offset : offset + size]]
        more = offset + size < total
        return pb.ListTasksResponse(
            tasks=page,
            next_page_token=str(offset + size) if more else "",
            page_size=size,
            total_size=total,
        )

    async def _no_push(self, params: Any, context: ServerCallContext) -> Any:
        raise a2a_errors.PushNotificationNotSupportedError()

    on_create_task_push_notification_config = _no_push
    on_get_task_push_notification_config = _no_push
    on_list_task_push_notification_configs = _no_push
    on_delete_task_push_notification_config = _no_push

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        raise a2a_errors.ExtendedAgentCardNotConfiguredError()

    async def recover(self) -> list[str]:
        """Go on with this agent's runs that a stopped server left `running` (their tasks
        `working`): each resumes from its journal, once its lease is free. The ids resumed."""
        store = await self._store()
        resumed = []
        for record in await store.list_runs(status=RunStatus.RUNNING, limit=10_000):
            if record.agent != self.agent.name or record.run_id in self._running:
                continue
            lease = await store.get_lease(record.run_id)
            if lease is not None and not holder_is_gone(lease.holder):
                continue  # driven by a live process (a worker, another server)
            self._drive(record.run_id, self._quietly(self.rt.resume(record.run_id, self.agent)))
            resumed.append(record.run_id)
        return resumed

    @staticmethod
    async def _quietly(work: Any) -> Any:
        """A resume nobody awaits: a run another process took meanwhile is not an error."""
        with contextlib.suppress(UsageError):
            return await work

    async def aclose(self) -> None:
        """Let runs this server drives stop where they are (resumable), then close."""
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(BaseException):
                await task


STATES_NAMES = {
    RunStatus.RUNNING: "working",
    RunStatus.WAITING: "input-required",
    RunStatus.COMPLETED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "canceled",
}


def _said(message: Any, task_id: str, context_id: str) -> dict[str, Any]:
    """A client's message as the task's history keeps it (JSON, in the store)."""
    said = pb.Message()
    said.CopyFrom(message)
    said.task_id, said.context_id = task_id, context_id
    return dict(json_format.MessageToDict(said))


def _offset(token: str) -> int:
    """Where a page token says the page starts (no token: the first task)."""
    if not token:
        return 0
    if not token.isdigit():
        raise a2a_errors.InvalidParamsError(f"page token {token!r} is not one this server gave")
    return int(token)


def _allow(permission: str) -> None:
    """Refuse the request in progress unless its caller's role grants `permission` (with
    keys configured; without, anyone on the network may: keep the server on loopback)."""
    caller = _CALLER.get()
    if caller is not None and not caller.may(permission):
        raise a2a_errors.UnsupportedOperationError(
            f"the key {caller.identity!r} (role {caller.role}) may not {permission}"
        )


def _identity() -> str:
    caller = _CALLER.get()
    return IDENTITY if caller is None else f"{IDENTITY}:{caller.identity}"


def _prompt_of(request: Any, reason: str) -> str:
    if isinstance(request, dict) and request.get("prompt"):
        return str(request["prompt"])
    return reason


def _decision(value: Any, kind: Any) -> Decision:
    """What a reply message decides, for a request of `kind`."""
    if isinstance(value, dict) and "action" in value:
        try:
            decided: Decision = as_decision(value)
            return decided
        except UsageError as e:
            raise a2a_errors.InvalidParamsError(str(e)) from None
    if kind == "approval":
        word = str(value).strip().lower()
        if word in _YES:
            return Decision.approve()
        if word in _NO:
            return Decision.reject("rejected over A2A")
        raise a2a_errors.InvalidParamsError(
            "this task waits for an approval: reply `approve` or `reject` "
            '(or data {"action": "reject", "comment": "..."})'
        )
    return Decision(action="answer", answer=value)


def create_a2a_app(
    agent: Any,
    *,
    url: str,
    store: str | Store | None = None,
    runtime: Runtime | None = None,
    target: str | None = None,
    authenticate: Authenticate | None = None,
) -> Starlette:
    """A Starlette app serving `agent` over A2A at `url` (what its card says), its tasks runs
    on `store` (or on `runtime`'s). With `authenticate`, every request but the card's needs
    `Authorization: Bearer KEY` that it knows (401 otherwise), and the key's role decides:
    reading tasks needs `read`, sending and cancelling `operate`, a reply `decide` (the roles
    of `podium serve`)."""
    from starlette.applications import Starlette

    rt = runtime or Runtime(store, targets=[target] if target else ())
    handler = A2AHandler(rt, agent, target)
    card = agent_card(agent, url, bearer=authenticate is not None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncGenerator[None]:
        await rt.open()
        await handler.recover()
        try:
            yield
        finally:
            await handler.aclose()
            if runtime is None:
                await rt.close()

    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.a2a_handler = handler
    if authenticate is not None:
        app.add_middleware(_KeyCheck, authenticate=authenticate)
    return app


class _KeyCheck:
    """ASGI middleware: a known bearer key on every request but the card's; its holder is
    the request's caller (`_CALLER`) while the request runs."""

    def __init__(self, app: Any, authenticate: Authenticate) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].endswith(CARD_PATH):
            await self.app(scope, receive, send)
            return
        key = bearer_key(scope)
        caller = None if key is None else self.authenticate(key)
        if caller is None:
            await send_json(send, 401, {"error": ASK_FOR_KEY}, challenge=True)
            return
        token = _CALLER.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            _CALLER.reset(token)


def serve_a2a(
    agent: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    url: str | None = None,
    store: str | Store | None = None,
    target: str | None = None,
    authenticate: Authenticate | None = None,
    announce: Any = print,
) -> None:
    """Listen on `host:port` (0: a free port) and serve until stopped. `announce` is told
    `listening URL` once the socket is bound, before the first request can arrive."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from now on, while the app starts
    bound = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    shown = f"[{shown}]" if ":" in shown else shown
    public = url or f"http://{shown}:{bound}/"
    app = create_a2a_app(agent, url=public, store=store, target=target, authenticate=authenticate)
    announce(f"listening {public}")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
