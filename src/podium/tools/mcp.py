"""MCP servers' tools as podium tools (the `mcp` extra: `pip install 'podium[mcp]'`).

    time = MCPServer("python -m mcp_server_time", allow=["get_current_time"])
    files = MCPServer(url="http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer ..."})
    clerk = LLMAgent("clerk", model=..., instructions=..., tools=[lookup, time, files])

An `MCPServer` in an agent's `tools` gives the agent the server's tools, listed once (on the
agent's first run) with the JSON Schemas the server declares. Each is an `MCPTool`, a
`podium.Tool`: its arguments are checked against that schema before the call (a clear error
naming the field), and every call goes through the door like any tool's: policies, retries,
timeouts, the journal (a resumed run gets a journaled result back without calling the server
again). What a tool returns is untrusted content (`podium.governance.taint`): the server is
someone else's, and so is its text. A tool the server hints is read-only has no side effect;
any other is a side effect (`effect=True`, idempotent if the server hints so), with what
that means for the exactly-once layer (`podium.runtime.effects`).

A server is reached through the runtime's shared connections (`podium.runtime.connections`):
one session per server (its command, or its URL and headers) per runtime, whichever agents
and `MCPServer` objects name it; a command is started once, as a subprocess, and ends when
the runtime closes. A server that died (or restarted) is reconnected on the next call.

Errors: `MCPConnectionError` (a `TransientError`: retried) when the server cannot be reached
or its connection breaks mid-call; `MCPServerError` (not retried) when the server answers
with a failure: the tool's `isError` result, or a refusal of the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.core.bounds import SECONDS
from podium.core.names import check_name
from podium.core.tools import ToolSpec
from podium.errors import MCPConnectionError, MCPServerError, UsageError
from podium.runtime.connections import ConnectionLost, Connections, Held
from podium.tools.tool import Tool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from podium.runtime.door import Call
    from podium.runtime.policies import Retry

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.:\-]")
_REQUEST_TIMEOUT = -32001  # mcp_types.REQUEST_TIMEOUT (the SDK is imported lazily)
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


class _HasConnections(Protocol):
    @property
    def connections(self) -> Connections | None: ...


def _sdk() -> Any:
    try:
        import mcp
    except ImportError:
        raise UsageError(
            "MCPServer needs the official MCP SDK: pip install 'podium[mcp]'"
        ) from None
    return mcp


class MCPServer:
    """An MCP server whose tools, resources and prompts podium uses.

    `MCPServer("python -m mcp_server_time")` starts the command (split like a shell would, or
    given as a list) as a subprocess and speaks MCP over its stdin and stdout (`env` is added
    to a minimal environment; `cwd` is where it runs). `MCPServer(url="http://host/mcp",
    headers={...})` speaks streamable HTTP to a server that runs already.

    `allow` (tool names) keeps only those tools; `deny` drops those; `prefix` goes in front
    of every tool's name as the model sees it (two servers with a `search` each); `timeout`
    (seconds) bounds each call, connecting included, and `retry` is how calls are retried
    (else the runtime's default). `resource_tool=True` adds a tool `<prefix>read_resource`
    that reads one of the server's resources by URI. `name` names the server in errors and
    events (default: the command's program, or the URL's host).
    """

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        *,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] = (),
        prefix: str = "",
        timeout: float | None = None,
        retry: Retry | None = None,
        name: str | None = None,
        resource_tool: bool = False,
    ) -> None:
        if (command is None) == (url is None):
            got = "both" if command is not None else "neither"
            raise UsageError(
                f"MCPServer needs one of a command (stdio) or url= (streamable HTTP), got {got}"
            )
        self.argv: tuple[str, ...] = ()
        self.url = url
        self.headers = dict(headers or {})
        self.env = dict(env or {})
        self.cwd = cwd
        if command is not None:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
            if not argv or not all(isinstance(a, str) and a for a in argv):
                raise UsageError(f"MCPServer: command {command!r} names no program to run")
            self.argv = tuple(argv)
            if self.headers:
                raise UsageError("MCPServer: headers= go with url=, not with a command")
        else:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise UsageError(f"MCPServer: url must be an http(s) URL, got {url!r}")
            if self.env or cwd is not None:
                raise UsageError("MCPServer: env= and cwd= go with a command, not with url=")
        where = _default_name(self.argv, url)
        self.name = name or where
        self.allow = None if allow is None else _names(allow, "allow")
        self.deny = _names(deny, "deny")
        if not isinstance(prefix, str) or (prefix and _BAD_CHARS.search(prefix)):
            raise UsageError(
                f"MCPServer {self.name!r}: prefix {prefix!r} may hold only letters, digits, "
                "'_', '-', '.' or ':'"
            )
        self.prefix = prefix
        self.timeout = (
            None
            if timeout is None
            else SECONDS.check(f"MCPServer {self.name!r}", "timeout", timeout)
        )
        self.retry = retry
        self.resource_tool = bool(resource_tool)
        # What identifies the connection: servers that differ only in which tools they show
        # (allow, deny, prefix) or how calls are timed share one session in a runtime. The
        # environment and headers (tokens, often) are in it as a digest only.
        self.key: tuple[Any, ...] = (
            ("mcp", "stdio", self.argv, _digest(self.env), cwd)
            if url is None
            else ("mcp", "http", url, _digest(self.headers))
        )
        self._tools: list[Tool] | None = None

    def __repr__(self) -> str:
        where = shlex.join(self.argv) if self.url is None else self.url
        return f"MCPServer({where!r})"

    # connecting ---------------------------------------------------------------------------
    def _open(self) -> AbstractAsyncContextManager[Any]:
        mcp = _sdk()
        if self.url is None:
            params = mcp.StdioServerParameters(
                command=self.argv[0], args=list(self.argv[1:]), env=self.env or None, cwd=self.cwd
            )
            client: AbstractAsyncContextManager[Any] = mcp.Client(params, cache=None)
            return client
        return _http_client(self.url, self.headers)

    async def _held(self, connections: Connections) -> Held[Any]:
        try:
            return await connections.get(self.key, self._open)
        except UsageError:
            raise
        except Exception as e:
            raise MCPConnectionError(self.name, f"cannot connect: {_describe(e)}") from None

    async def request(
        self,
        source: _HasConnections,
        what: str,
        ask: Callable[[Any], Any],
        *,
        bound: bool = True,
    ) -> Any:
        """`ask(client)` on this server's session in `source`'s runtime (an `mcp.Client`),
        with its failures as podium errors: a broken connection is dropped (the next request
        reconnects) and raised as `MCPConnectionError`; a refusal as `MCPServerError`. With
        `bound`, no answer within the server's `timeout` is an `MCPConnectionError` too (a
        call through the door is bounded by the door instead)."""
        if not bound or self.timeout is None:
            return await self._request(source, what, ask)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._request(source, what, ask)
        except TimeoutError:
            raise MCPConnectionError(
                self.name, f"no answer to {what} within {self.timeout:g}s"
            ) from None

    async def _request(self, source: _HasConnections, what: str, ask: Callable[[Any], Any]) -> Any:
        connections = source.connections
        if connections is None:
            raise UsageError(
                f"MCP server {self.name!r}: {what} needs a runtime's connections (call it in a "
                "run, or pass the Runtime)"
            )
        held = await self._held(connections)
        mcp = _sdk()
        try:
            return await held.watch(ask(held.value))
        except ConnectionLost as e:
            connections.drop(held)
            cause = e.cause
            raise MCPConnectionError(
                self.name,
                f"the connection broke during {what}"
                + ("" if cause is None else f": {_describe(cause)}"),
            ) from None
        except mcp.MCPError as e:
            if e.code == _REQUEST_TIMEOUT:  # the SDK gave up waiting: worth another try
                raise MCPConnectionError(self.name, f"{what} timed out: {e.message}") from None
            if _is_connection_error(e, mcp):
                connections.drop(held)
                raise MCPConnectionError(
                    self.name, f"the connection broke during {what}: {e.message}"
                ) from None
            raise MCPServerError(self.name, what, e.message) from None
        except (OSError, EOFError) as e:
            connections.drop(held)
            raise MCPConnectionError(
                self.name, f"the connection broke during {what}: {_describe(e)}"
            ) from None
        except (ValidationError, RuntimeError) as e:
            if not held.alive:
                connections.drop(held)
                raise MCPConnectionError(
                    self.name, f"the connection broke during {what}: {_describe(e)}"
                ) from None
            # an answer that does not fit the protocol, or the tool's own output schema
            problem = f"the server's answer is not valid MCP: {_describe(e)}"
            raise MCPServerError(self.name, what, problem) from None

    # tools --------------------------------------------------------------------------------
    async def tools(self, source: _HasConnections) -> list[Tool]:
        """The server's tools as podium tools (allowed, not denied, prefixed), listed once per
        `MCPServer` object; `source` is a `RunContext` or a `Runtime`."""
        if self._tools is None:
            listed: list[Any] = []
            cursor = None
            while True:
                page = await self.request(source, "tools/list", _list_tools(cursor))
                listed += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
            self._tools = self._chosen(listed)
        return list(self._tools)

    def _chosen(self, listed: Sequence[Any]) -> list[Tool]:
        names = {t.name for t in listed}
        named = (self.allow or frozenset()) | self.deny
        unknown = sorted(named - names)
        if unknown:
            raise UsageError(
                f"MCP server {self.name!r} has no tool {', '.join(map(repr, unknown))} (named in "
                f"allow/deny); its tools: {', '.join(sorted(names)) or 'none'}"
            )
        chosen: list[Tool] = [
            MCPTool(self, t)
            for t in listed
            if (self.allow is None or t.name in self.allow) and t.name not in self.deny
        ]
        if self.resource_tool:
            chosen.append(ResourceTool(self))
        return chosen

    # resources and prompts ------------------------------------------------------------------
    async def list_resources(self, source: _HasConnections) -> list[dict[str, Any]]:
        """The server's resources: `uri`, `name`, `description`, `mime_type` of each."""
        result = await self.request(source, "resources/list", lambda c: c.list_resources())
        return [_dump(r) for r in result.resources]

    async def read_resource(self, source: _HasConnections, uri: str) -> Any:
        """A resource's content: its text (the texts of its parts joined), or its parts
        (`uri`, `mime_type`, `text` or base64 `blob`) when some are binary."""
        return await self._read(source, uri, bound=True)

    async def _read(self, source: _HasConnections, uri: str, *, bound: bool) -> Any:
        result = await self.request(
            source, f"resources/read {uri}", lambda c: c.read_resource(uri), bound=bound
        )
        parts = [_dump(p) for p in result.contents]
        if all("text" in p for p in parts):
            return "\n".join(p["text"] for p in parts)
        return parts

    async def list_prompts(self, source: _HasConnections) -> list[dict[str, Any]]:
        """The server's prompts: `name`, `description` and `arguments` of each."""
        result = await self.request(source, "prompts/list", lambda c: c.list_prompts())
        return [_dump(p) for p in result.prompts]

    async def get_prompt(
        self, source: _HasConnections, name: str, arguments: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """A prompt filled in: its messages, each `{"role", "content"}` (content as text when
        it is text)."""
        args = dict(arguments or {})
        result = await self.request(
            source, f"prompts/get {name}", lambda c: c.get_prompt(name, args)
        )
        return [{"role": m.role, "content": _content(m.content)} for m in result.messages]


class MCPTool(Tool):
    """One tool of an MCP server, behind the door like any `Tool`: the server's JSON Schema
    is what the model sees and what arguments are checked against."""

    def __init__(self, server: MCPServer, remote: Any) -> None:
        self.server = server
        self.remote_name: str = remote.name
        self.fn = self._call_remote
        self.name = check_name(server.prefix + _BAD_CHARS.sub("_", remote.name), "tool")
        self.description = remote.description or remote.title or ""
        schema = dict(remote.input_schema or {"type": "object"})
        schema.pop("title", None)
        self.parameters = schema
        out = getattr(remote, "output_schema", None) or {}
        # A server built on the SDK wraps a result that is not an object as {"result": x}
        # (MCP's structured content is an object): such a result is given back unwrapped.
        self._wrapped = set(out.get("properties", {})) == {"result"} and out.get("required") == [
            "result"
        ]
        self.spec = ToolSpec(self.name, self.description, self.parameters)
        hints = remote.annotations
        read_only = bool(hints is not None and hints.read_only_hint)
        # Only a read-only hint makes a tool pure: MCP's default is that a tool may change
        # the world, so podium treats it as a side effect (started/completed journaled).
        self.effect = not read_only
        self.idempotent = read_only or bool(hints is not None and hints.idempotent_hint)
        self.cache = None
        self.needs_approval = False
        self.trusted = False  # another party's server: its output is untrusted content
        self.sanitiser = False
        self.reconcile = None
        self.compensate = None
        self.retry = server.retry
        self.timeout = server.timeout
        self.thread = False
        self.sees_pii = frozenset()
        self.is_async = True
        self.ctx_param = None
        self.check_output = None
        self._arg_names = tuple(schema.get("properties", {}))
        self._validator = _validator(schema, self.name)
        self.__doc__ = self.description

    def check_input(self, args: Any) -> dict[str, Any]:
        """The arguments, checked against the server's schema; raises pydantic's
        `ValidationError` naming each bad field (the door reports it as for any tool)."""
        value = {} if args is None else args
        problems: dict[tuple[Any, ...], InitErrorDetails] = {}
        if not isinstance(value, dict):
            problems[()] = {
                "type": PydanticCustomError("mcp_schema", "tool arguments are an object"),
                "loc": (),
                "input": value,
            }
            raise ValidationError.from_exception_data(f"{self.name}_args", list(problems.values()))
        for error in self._validator.iter_errors(value):
            problem = _problem(error, value)
            problems.setdefault(tuple(problem["loc"]), problem)
        if problems:
            raise ValidationError.from_exception_data(f"{self.name}_args", list(problems.values()))
        return dict(value)

    def cache_identity(self, args: Any) -> dict[str, Any]:
        return {"mcp": list(self.server.key), "tool": self.remote_name, "args": args}

    async def invoke(self, call: Call) -> Any:
        return await self._call_remote(call.run, dict(call.input or {}))

    async def _call_remote(self, source: Any, args: dict[str, Any]) -> Any:
        name = self.remote_name
        result = await self.server.request(
            source, f"tool {name}", lambda c: c.call_tool(name, args), bound=False
        )
        if result.is_error:
            text = _content_text(result.content) or "the tool reported an error"
            raise MCPServerError(self.server.name, name, text)
        value = result.structured_content
        if value is None:
            return _content(result.content)
        if self._wrapped and isinstance(value, dict) and set(value) == {"result"}:
            return value["result"]
        return value

    def __repr__(self) -> str:
        return f"MCPTool({self.name!r} of {self.server.name!r})"


class ResourceTool(MCPTool):
    """`<prefix>read_resource(uri)`: reads one of the server's resources (untrusted, like
    any MCP output; no side effect)."""

    def __init__(self, server: MCPServer) -> None:
        remote = _Remote(
            "read_resource",
            f"Read a resource of the MCP server {server.name!r} by its URI.",
            {
                "type": "object",
                "properties": {"uri": {"type": "string", "description": "the resource's URI"}},
                "required": ["uri"],
                "additionalProperties": False,
            },
        )
        super().__init__(server, remote)
        self.effect = False
        self.idempotent = True

    async def invoke(self, call: Call) -> Any:
        return await self.server._read(call.run, str(call.input["uri"]), bound=False)


class _Remote:
    """The fields of an MCP tool listing an `MCPTool` reads."""

    def __init__(self, name: str, description: str, schema: dict[str, Any]) -> None:
        self.name = name
        self.title = None
        self.description = description
        self.input_schema = schema
        self.output_schema = None
        self.annotations = None


# helpers ------------------------------------------------------------------------------------
def _list_tools(cursor: str | None) -> Callable[[Any], Any]:
    return lambda client: client.list_tools(cursor=cursor)


@asynccontextmanager
async def _http_client(url: str, headers: Mapping[str, str]) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30.0, read=300.0)  # the SDK's defaults: a stream may stay open
    async with httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, cache=None) as client:
            yield client


def _digest(values: Mapping[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(values.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _default_name(argv: Sequence[str], url: str | None) -> str:
    if url is not None:
        from urllib.parse import urlsplit

        return urlsplit(url).netloc or url
    program = argv[0].rsplit("/", 1)[-1]
    if program.startswith("python") and len(argv) > 2 and argv[1] == "-m":
        return argv[2]
    if program.startswith("python") and len(argv) > 1:
        return argv[1].rsplit("/", 1)[-1]
    return program


def _names(names: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(names, str):
        raise UsageError(f"MCPServer: {what} is a list of tool names, got the string {names!r}")
    found = frozenset(names)
    if not all(isinstance(n, str) and n for n in found):
        raise UsageError(f"MCPServer: {what} holds something that is not a tool name")
    return found


def _describe(e: BaseException) -> str:
    """The first real error inside exception groups (the SDK's task groups wrap them)."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


def _is_connection_error(e: Any, mcp: Any) -> bool:
    import mcp_types

    if e.code == mcp_types.CONNECTION_CLOSED:
        return True
    # a server that restarted does not know the session any more (streamable HTTP, 404)
    return "session" in e.message.lower() and (
        "not found" in e.message.lower() or "terminated" in e.message.lower()
    )


def _validator(schema: dict[str, Any], tool: str) -> Any:
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the mcp extra brings it
        raise UsageError("MCP tools need jsonschema: pip install 'podium[mcp]'") from None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise UsageError(f"MCP tool {tool!r}: its input schema is not valid: {e.message}") from None
    return cls(schema)


def _problem(error: Any, value: Any) -> InitErrorDetails:
    """A jsonschema error as a pydantic one: the field's path, the schema's complaint."""
    loc = tuple(error.absolute_path)
    missing = _REQUIRED.match(error.message) if error.validator == "required" else None
    if missing:
        return {
            "type": PydanticCustomError("missing", "Field required"),
            "loc": (*loc, missing.group(1)),
            "input": value,
        }
    return {
        "type": PydanticCustomError("mcp_schema", "{problem}", {"problem": error.message}),
        "loc": loc,
        "input": error.instance,
    }


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    dumped.pop("meta", None)
    return dumped


def _content_text(content: Sequence[Any]) -> str:
    return "\n".join(c.text for c in content if getattr(c, "type", None) == "text")


def _content(content: Any) -> Any:
    """MCP content as a value: text as text (parts joined), else the parts as JSON."""
    parts = content if isinstance(content, list) else [content]
    if all(getattr(c, "type", None) == "text" for c in parts):
        return "\n".join(c.text for c in parts)
    return [_dump(c) for c in parts]
