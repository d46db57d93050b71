"""podium workflows and agents as MCP tools: `podium mcp serve TARGET...` (extra `mcp`).

Each served agent is one tool, named after the agent (a `:` in its name becomes `_`), and
described by its `description` (an `@agent` function's docstring). A call starts a durable
run on the server's store, the one every other podium command and `podium serve` read, and
answers with what the run came to:

- arguments: an agent whose input type is a JSON object (a pydantic model, a TypedDict, a
  dataclass, a `dict[str, X]`) takes its fields as the tool's arguments; any other input (a
  `str`, a number, a list, `Any`) is the one argument `input`. Bad arguments are a tool
  error (`isError`) naming the field, before anything is written.
- completed: the output as text (a string as it is, anything else as JSON) and, where the
  output type has a JSON schema, as structured content: an object output as it is, any other
  output as `{"result": ...}`; the tool's `outputSchema` says which.
- failed: a tool error with podium's error message and the run id (`podium show RUN`).
- waiting for a person (a `HumanAgent`, an approval): the call returns at once with a
  ticket, `{"run_id", "status": "waiting", "waiting_for", "decide"}`, as structured content
  (so a tool with an `outputSchema` declares it as the other branch of an `anyOf`). The
  person decides with podium's inbox, `podium approve RUN` / `answer` / `reject` or the HTTP
  server on the same store; the client then reads the outcome with the `podium_run_status`
  tool, which every server has (for runs of its own tools only: the store may hold others).
- progress: with a progress token on the call, one `notifications/progress` per completed
  step (`progress` counts them; no `total`, a workflow's length is not known in advance).
- keys (HTTP only, `serve_http(authenticate=...)`; the CLI passes `podium serve`'s keys):
  every request needs `Authorization: Bearer KEY` of a known key (401 otherwise), and its
  role decides, by `podium serve`'s permissions: calling an agent's tool starts a run, so
  it needs `operate` (operator, admin); listing the tools and `podium_run_status` need
  `read` (every role). A refused request is a 403 whose body is a JSON-RPC error saying
  why. A run started with a key is chained in the audit trail as `mcp.run.started`, the
  key's identity its actor (`podium audit show RUN`).

A server never decides a waiting run itself: the model that asked would be approving its
own request. Nothing here raises into the SDK: an unexpected error is a tool error too.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp import types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from pydantic import TypeAdapter, ValidationError

from podium.core.audit import AuditDraft, canonical, sha256
from podium.core.records import RunRecord, RunStatus
from podium.core.serde import Validator, describe_validation_error, to_plain, validator_for
from podium.errors import UnknownRunError, UsageError
from podium.protocols.bearer import ASK_FOR_KEY, bearer_key, send_json
from podium.runtime.privacy import scrub_text
from podium.runtime.runtime import Runtime, new_run_id
from podium.runtime.waiting import WaitingRequest, waiting_requests

__all__ = ["STATUS_TOOL", "McpAgentServer", "ServedTool", "listen", "served_tool", "store_hint"]

STATUS_TOOL = "podium_run_status"
RUN_META = "podium/run_id"  # `_meta` key of every result about a run: its id
INPUT = "input"  # the one argument of an agent whose input is not a JSON object
RESULT = "result"  # the structured content of an output that is not a JSON object
MAX_TOOL_NAME = 128  # MCP's limit on a tool name
CALLER = "podium.caller"  # the key's holder, in the request scope's state (see _KeyCheck)
REFUSED = -32001  # the JSON-RPC error code of a request refused for its key (a server error)
Authenticate = Callable[[str], Any]
"""A bearer key -> who sends it (with `.identity`, `.role`, `.may(permission)`), or None."""

WAITING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "PodiumWaiting",
    "description": "The run waits for a person. Decide it with podium's inbox (the commands "
    f"in `decide`), then call {STATUS_TOOL} with `run_id` for its outcome.",
    "properties": {
        "run_id": {"type": "string"},
        "status": {"const": "waiting"},
        "agent": {"type": "string"},
        "waiting_for": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "step": {"type": "string"},
                    "kind": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
        "decide": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["run_id", "status", "decide"],
}

STATUS_TOOL_DEF = types.Tool(
    name=STATUS_TOOL,
    title="podium run status",
    description="The status of a podium run started by a tool of this server (its run id is "
    "in a waiting result, and in every result's _meta as 'podium/run_id'): running, "
    "waiting (with what it waits for and the commands that decide it), completed (with its "
    "output) or failed (with its error).",
    input_schema={
        "type": "object",
        "properties": {"run_id": {"type": "string", "description": "The run's id."}},
        "required": ["run_id"],
    },
    output_schema={
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "agent": {"type": "string"},
            "status": {"enum": [s.value for s in RunStatus]},
            "output": {"description": "The run's output, when it completed."},
            "error": {"type": ["string", "null"]},
            "waiting_for": WAITING_SCHEMA["properties"]["waiting_for"],
            "decide": WAITING_SCHEMA["properties"]["decide"],
        },
        "required": ["run_id", "agent", "status"],
    },
)


# one agent as one tool ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServedTool:
    """An agent served as an MCP tool: its definition, and how arguments become the agent's
    input and its output becomes a result."""

    agent: Any
    target: str | None  # how `podium approve` in another process loads the agent again
    tool: types.Tool
    wraps_input: bool  # arguments are `{"input": value}`, not the input's own fields
    structured: str | None  # "object": output as it is, "result": wrapped, None: text only
    check: Validator | None  # the input type's, as the schema says (a pattern's own is off)

    @property
    def name(self) -> str:
        return self.tool.name

    def input_of(self, arguments: Mapping[str, Any] | None) -> Any:
        """The agent's input from a call's arguments, checked against its input type;
        `UsageError` naming the field otherwise."""
        args = dict(arguments or {})
        value: Any = args
        if self.wraps_input:
            extra = sorted(set(args) - {INPUT})
            if extra:
                raise UsageError(f"unexpected argument {extra[0]!r}: the input goes in {INPUT!r}")
            if INPUT not in args and _required(self.tool.input_schema):
                raise UsageError(f"field {INPUT!r}: Field required")
            value = args.get(INPUT)
        if self.check is None:
            return value
        try:
            return self.check(value)
        except ValidationError as e:
            why = describe_validation_error(e)
            if self.wraps_input:
                why = f"field {INPUT!r}: {why.removeprefix('value: ')}"
            raise UsageError(why) from None

    def content_of(self, output: Any) -> Any:
        """The structured content of a completed run's output, or None for text only."""
        plain = to_plain(output)
        if self.structured == "object":
            return plain
        if self.structured == RESULT:
            return {RESULT: plain}
        return plain if isinstance(plain, dict) else None


def served_tool(agent: Any, target: str | None = None) -> ServedTool:
    """`agent` as a tool: schemas from its input and output types (see the module
    docstring), its description from the agent's."""
    name = agent.name.replace(":", "_")
    if len(name) > MAX_TOOL_NAME:
        raise UsageError(f"agent {agent.name!r}: an MCP tool name has at most 128 characters")
    input_type = getattr(agent, "input_type", Any)
    input_schema, wraps = _input_schema(input_type)
    output_schema, structured = _output_schema(getattr(agent, "output_type", Any))
    description = getattr(agent, "description", "") or (
        f"Runs the podium agent {agent.name!r} durably and returns its output."
    )
    tool = types.Tool(
        name=name,
        title=agent.name,
        description=f"{description}\n\nIf the run waits for a person, the result is its run "
        f"id and how to decide it; {STATUS_TOOL} gives the outcome later.",
        input_schema=input_schema,
        output_schema=output_schema,
    )
    return ServedTool(agent, target, tool, wraps, structured, validator_for(input_type))


def _schema(tp: Any) -> dict[str, Any] | None:
    """The JSON schema of `tp`; None for `Any` or a type with none."""
    if tp is Any or tp is None or tp is object:
        return None
    try:
        return TypeAdapter(tp).json_schema()
    except Exception:  # a type pydantic cannot describe: served as any JSON value
        return None


def _input_schema(tp: Any) -> tuple[dict[str, Any], bool]:
    schema = _schema(tp)
    if schema is not None and schema.get("type") == "object":
        return schema, False
    defs = {} if schema is None else schema.pop("$defs", {})
    inner = schema or {"description": "The agent's input: any JSON value."}
    wrapped: dict[str, Any] = {"type": "object", "properties": {INPUT: inner}}
    if schema is not None:
        wrapped["required"] = [INPUT]
    if defs:
        wrapped["$defs"] = defs
    return wrapped, True


def _output_schema(tp: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The tool's `outputSchema` (the output, or else the waiting ticket) and how a result
    is structured; (None, None) for a text or untyped output."""
    if tp is str:
        return None, None
    schema = _schema(tp)
    if schema is None:
        return None, None
    defs = schema.pop("$defs", {})
    how = "object"
    if schema.get("type") != "object":
        how = RESULT
        schema = {"type": "object", "properties": {RESULT: schema}, "required": [RESULT]}
    defs["PodiumWaiting"] = WAITING_SCHEMA
    union = {"type": "object", "anyOf": [schema, {"$ref": "#/$defs/PodiumWaiting"}], "$defs": defs}
    return union, how


def _required(schema: Mapping[str, Any]) -> bool:
    return INPUT in schema.get("required", ())


# the server --------------------------------------------------------------------------------
class McpAgentServer:
    """An MCP server (the SDK's low-level `Server`) whose tools are podium agents run on
    `runtime`'s store. `store_hint` is what the decide commands of a waiting run add to
    `podium approve` so that they reach this store (`--store ...`), if anything."""

    def __init__(
        self,
        tools: Sequence[ServedTool],
        runtime: Runtime,
        *,
        name: str = "podium",
        store_hint: str | None = None,
    ) -> None:
        self.tools: dict[str, ServedTool] = {}
        for t in tools:
            if t.name == STATUS_TOOL:
                raise UsageError(f"agent {t.name!r}: the name of the server's own status tool")
            if t.name in self.tools:
                raise UsageError(f"two tools would be named {t.name!r}: serve one of them")
            self.tools[t.name] = t
        self._agents = {t.agent.name for t in self.tools.values()}
        self.runtime = runtime
        self.store_hint = store_hint
        self.server: Server[Any] = Server(
            name,
            version=_version(),
            instructions=f"Each tool runs a podium workflow or agent durably. A run that waits "
            f"for a person returns its run id; call {STATUS_TOOL} later for its outcome.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[*(t.tool for t in self.tools.values()), STATUS_TOOL_DEF]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            if params.name == STATUS_TOOL:
                return await self._status(params.arguments)
            served = self.tools.get(params.name)
            if served is None:
                known = ", ".join([*self.tools, STATUS_TOOL])
                return _error(f"no tool named {params.name!r}: this server has {known}")
            return await self._run(ctx, served, params.arguments)
        except UsageError as e:
            return _error(f"{params.name}: {e}")
        except Exception as e:  # never a crash of the server: the client reads what broke
            return _error(f"{params.name}: {type(e).__name__}: {scrub_text(str(e))}")

    async def _run(
        self,
        ctx: ServerRequestContext[Any],
        served: ServedTool,
        arguments: Mapping[str, Any] | None,
    ) -> types.CallToolResult:
        value = served.input_of(arguments)
        done = 0
        rid = new_run_id()
        caller = _caller(ctx)
        async with self.runtime.stream(
            served.agent, value, run_id=rid, target=served.target
        ) as stream:
            if caller is not None:
                await self._audit(rid, served, caller)
            async for event in stream:
                if event.kind == "step.completed":
                    done += 1
                    await _progress(ctx, done, f"{event.key} completed")
        result = await stream.result()
        meta = {RUN_META: result.run_id}
        if result.status == RunStatus.COMPLETED:
            content = served.content_of(result.output)
            return types.CallToolResult(
                content=[_text(result.output)], structured_content=content, _meta=meta
            )
        if result.status == RunStatus.WAITING:
            record = await self.runtime.get_run(result.run_id)
            ticket = await self._ticket(record)
            return types.CallToolResult(
                content=[_json_text(ticket)], structured_content=ticket, _meta=meta
            )
        error = scrub_text(result.error) or "no error recorded"
        return _error(
            f"podium run {result.run_id} {result.status}: {error} "
            f"(podium show {result.run_id} has its steps)",
            meta,
        )

    async def _status(self, arguments: Mapping[str, Any] | None) -> types.CallToolResult:
        run_id = (arguments or {}).get("run_id")
        if not isinstance(run_id, str) or not run_id:
            return _error(f"{STATUS_TOOL}: field 'run_id': a run id (a string) is required")
        try:
            record = await self.runtime.get_run(run_id)
        except UnknownRunError:
            record = None
        if record is None or record.agent not in self._agents:
            # the store may hold other workflows' runs: those are not this server's to show
            return _error(f"{STATUS_TOOL}: no run {run_id!r} of this server's tools")
        data: dict[str, Any] = {
            "run_id": record.run_id,
            "agent": record.agent,
            "status": str(record.status),
            "error": scrub_text(record.error),
        }
        if record.status == RunStatus.COMPLETED:
            data["output"] = record.output
        elif record.status == RunStatus.WAITING:
            ticket = await self._ticket(record)
            data |= {"waiting_for": ticket["waiting_for"], "decide": ticket["decide"]}
        text = _text(record.output) if record.status == RunStatus.COMPLETED else _json_text(data)
        return types.CallToolResult(
            content=[text], structured_content=data, _meta={RUN_META: record.run_id}
        )

    async def _audit(self, run_id: str, served: ServedTool, caller: Any) -> None:
        """Chain who started a run (the key's identity, never the key), as `podium serve`
        chains `api.run.started`."""
        data = {"role": caller.role, "tool": served.name, "agent": served.agent.name}
        payload = canonical({**data, "target": served.target})
        draft = AuditDraft(
            run_id, "mcp.run.started", time.time(), caller.identity, payload, sha256(payload)
        )
        await (await self.runtime.open()).append_audit([draft])

    async def _ticket(self, record: RunRecord) -> dict[str, Any]:
        """What a waiting run waits for, and the commands that decide it."""
        requests = waiting_requests(record, await self.runtime.steps(record.run_id))
        return {
            "run_id": record.run_id,
            "status": "waiting",
            "agent": record.agent,
            "waiting_for": [
                {"step": w.step, "kind": _kind(w), "reason": w.reason} for w in requests
            ],
            "decide": decide_commands(record.run_id, requests, self.store_hint),
        }

    # transports ----------------------------------------------------------------------------
    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout until stdin closes."""
        from mcp.server.stdio import stdio_server

        async with self.runtime, stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    async def serve_http(
        self, sock: socket.socket, path: str = "/mcp", authenticate: Authenticate | None = None
    ) -> None:
        """Serve streamable HTTP at `path` on `sock` (see `listen`) until the process is
        stopped. On a loopback address the SDK refuses other `Host` and `Origin` headers (DNS
        rebinding). With `authenticate`, every request needs a bearer key it knows, of a role
        that may do what the request asks (see the module docstring)."""
        import uvicorn

        host = sock.getsockname()[0]
        app: Any = self.server.streamable_http_app(streamable_http_path=path, host=host)
        if authenticate is not None:
            app = _KeyCheck(app, authenticate)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        async with self.runtime:
            await uvicorn.Server(config).serve(sockets=[sock])


class _KeyCheck:
    """ASGI middleware in front of the MCP app: a known bearer key on every request (401),
    of a role that may do what its JSON-RPC message asks (403; see `_needs`). The caller
    rides to the tool handler in the scope's state (the SDK hands the handler the request)."""

    def __init__(self, app: Any, authenticate: Authenticate) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = bearer_key(scope)
        caller = None if key is None else self.authenticate(key)
        if caller is None:
            await send_json(send, 401, _rpc_error(None, ASK_FOR_KEY), challenge=True)
            return
        body = b""
        if scope.get("method") == "POST":
            read = await _read_body(receive)
            if read is None:  # the client went away
                return
            body, receive = read
        permission, request_id, why = _needs(body)
        if not caller.may(permission):
            message = (
                f"the key {caller.identity!r} is a {caller.role}, which may not {permission}: {why}"
            )
            await send_json(send, 403, _rpc_error(request_id, message))
            return
        scope = {**scope, "state": {**(scope.get("state") or {}), CALLER: caller}}
        await self.app(scope, receive, send)


async def _read_body(
    receive: Callable[[], Awaitable[Any]],
) -> tuple[bytes, Callable[[], Awaitable[Any]]] | None:
    """A request's whole body, and a `receive` that gives it again to the app behind;
    None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    given = False

    async def again() -> Any:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, again


def _needs(body: bytes) -> tuple[str, Any, str]:
    """The permission a request's JSON-RPC message(s) need, the id to answer, and why:
    `operate` to call an agent's tool (it starts a run), `read` for anything else (a body
    that is not JSON-RPC too: the SDK answers it)."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    messages = parsed if isinstance(parsed, list) else [parsed]
    first = None
    for m in messages:
        if not isinstance(m, dict):
            continue
        first = m.get("id") if first is None else first
        params = m.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if m.get("method") == "tools/call" and name != STATUS_TOOL:
            return "operate", m.get("id"), f"calling the tool {name!r} starts a run"
    return "read", first, "reading this server"


def _rpc_error(request_id: Any, message: str) -> dict[str, Any]:
    """A JSON-RPC error body: the SDK's client raises it as the request's error."""
    error = {"code": REFUSED, "message": message}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _caller(ctx: ServerRequestContext[Any]) -> Any:
    """Who sent the request in progress (its key's holder), or None without keys or over
    stdio."""
    scope = getattr(ctx.request, "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    return state.get(CALLER) if isinstance(state, dict) else None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (0: any free port), or `UsageError` saying why not:
    the address is taken, or not this machine's."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def decide_commands(
    run_id: str, requests: Sequence[WaitingRequest], store_hint: str | None
) -> list[str]:
    """The podium commands that decide what a waiting run asks, as `podium inbox` shows it."""
    where = "" if store_hint is None else f" --store {shlex.quote(store_hint)}"
    kinds = {_kind(w) for w in requests}
    lines = []
    if "approval" in kinds or "effect_unknown" in kinds:
        lines += [f"podium approve {run_id}{where}", f"podium reject {run_id} --comment WHY{where}"]
    if kinds - {"approval"}:
        lines.append(f"podium answer {run_id} JSON{where}")
    return [*lines, f"podium inbox{where}"]


def store_hint(url: str, path: str | None) -> str | None:
    """How a command in another process names this store: a SQLite file by its absolute path,
    another store by its URL without a password; None for `memory://`, which no other
    process can reach."""
    if path is not None:
        return None if path == ":memory:" else f"sqlite:///{Path(path).resolve()}"
    if url.startswith("memory:"):
        return None
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        netloc = f"{user}{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _version() -> str:
    """podium's installed version, as the server tells clients."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("podium")
    except PackageNotFoundError:
        return "unknown"


def _kind(request: WaitingRequest) -> str:
    kind = request.request.get("kind") if isinstance(request.request, dict) else None
    return kind if isinstance(kind, str) else "question"


async def _progress(ctx: ServerRequestContext[Any], done: int, message: str) -> None:
    """One progress notification (a no-op when the call carried no progress token); a client
    that went away does not stop the run."""
    try:
        await ctx.session.report_progress(done, None, message)
    except Exception:
        return


def _text(value: Any) -> types.TextContent:
    if isinstance(value, str):
        return types.TextContent(type="text", text=value)
    return _json_text(value)


def _json_text(value: Any) -> types.TextContent:
    return types.TextContent(type="text", text=json.dumps(to_plain(value), ensure_ascii=False))


def _error(message: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True, _meta=meta
    )
