"""`podium mcp serve`: podium workflows and agents as tools of an MCP server (extra `mcp`).

    podium mcp serve flow.yaml app.agents:triage                 # stdio, for a desktop client
    podium mcp serve flow.yaml --transport http --port 8765      # streamable HTTP at /mcp
    podium mcp serve flow.yaml --transport http --keys-file keys # bearer keys required

Targets load as `podium run` loads them (the user's own choice); runs journal in the store
`--store` names (default: the CLI's), where `podium inbox` / `approve` and `podium serve`
find the ones that wait for a person. See `podium.protocols.mcp_server` for the tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Annotated

import typer

from podium.cli.app import StoreOpt, app, load_agent, make_store, usage_errors
from podium.errors import UsageError

mcp_app = typer.Typer(
    name="mcp",
    help="Serve podium workflows and agents over MCP.",
    no_args_is_help=True,
)
app.add_typer(mcp_app, name="mcp")


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


@mcp_app.command("serve")
def serve(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Agents to serve, one tool each: module:object, path/file.py:object, or a "
            "YAML workflow file.",
            metavar="TARGET",
            show_default=False,
        ),
    ],
    transport: Annotated[
        Transport,
        typer.Option(help="stdio (a client starts this command) or streamable http."),
    ] = Transport.stdio,
    host: Annotated[str, typer.Option(help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (http; 0: any free one).")
    ] = 8000,
    path: Annotated[str, typer.Option(help="The endpoint's path (http).")] = "/mcp",
    name: Annotated[str, typer.Option(help="The server's name, as clients show it.")] = "podium",
    keys_file: Annotated[
        str | None,
        typer.Option(
            "--keys-file",
            help="API keys, `key:role[:name]` one a line (as for `podium serve`); also "
            "$PODIUM_API_KEYS (http). With either, every request needs `Authorization: "
            "Bearer KEY`: calling an agent's tool needs operator (or admin), listing tools "
            "and podium_run_status any role. With neither, anyone who reaches the port may "
            "start runs: keep it on loopback.",
            show_default=False,
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Serve each TARGET as an MCP tool: a call runs it durably and returns its output (with
    progress per completed step); a run that waits for a person returns its run id, to
    decide with `podium approve` or the inbox, and the tool podium_run_status gives its
    outcome later. See docs/interop.md."""
    with usage_errors():
        try:
            from podium.protocols.mcp_server import McpAgentServer, listen, served_tool, store_hint
        except ImportError as e:
            raise UsageError.missing_extra("podium mcp serve", "mcp", e) from None
        if not path.startswith("/"):
            raise UsageError(f"--path {path!r} must start with '/'")
        keys = None
        if transport is Transport.stdio:
            if keys_file is not None:
                raise UsageError(
                    "--keys-file is for --transport http: over stdio the client that starts "
                    "the server is its only user"
                )
        else:
            from podium.server.auth import KeyRing, configured_keys

            keys = configured_keys(keys_file)
        tools = [served_tool(*load_agent(target)) for target in targets]
        st = make_store(store)
        hint = store_hint(st.url, getattr(st, "path", None))
        if hint is None:
            typer.echo(
                f"warning: store {st.url} is this process's memory: a run that waits for a "
                "person cannot be decided from another process",
                err=True,
            )
        from podium.runtime.runtime import Runtime

        server = McpAgentServer(tools, Runtime(st), name=name, store_hint=hint)
        sock = None if transport is Transport.stdio else listen(host, port)
    if sock is None:
        asyncio.run(server.serve_stdio())
        return
    from podium.protocols.bearer import unguarded_warning

    if keys is None and (warning := unguarded_warning("podium mcp serve", host, "start runs")):
        typer.echo(warning, err=True)
    bound, port = sock.getsockname()[:2]
    shown = f"[{bound}]" if ":" in bound else bound
    guard = "" if keys is None else f", {len(keys)} API key(s)"
    typer.echo(
        f"podium mcp: {len(tools)} tool(s) at http://{shown}:{port}{path} "
        f"(store {hint or st.url}{guard})",
        err=True,
    )
    authenticate = None if keys is None else KeyRing(keys).find
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve_http(sock, path, authenticate))
