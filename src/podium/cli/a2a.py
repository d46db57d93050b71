"""`podium a2a`: agents over A2A (needs the `a2a` extra).

    podium a2a serve flow.yaml --port 9000 --store sqlite:///runs.db   # serve an agent
    podium a2a card http://127.0.0.1:9000/                            # a card and its sha256
    podium a2a trust shouter approval                                 # lower a remote's trust

`serve` prints `listening URL` once it listens (with `--port 0`, on a free port).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from podium.cli.app import StoreOpt, _read, app, load_agent, make_store, usage_errors
from podium.errors import UsageError
from podium.runtime.runtime import Runtime

a2a = typer.Typer(
    help="Agents over A2A: serve one, read a card, set a remote's trust.", no_args_is_help=True
)
app.add_typer(a2a, name="a2a")

_LEVELS = "untrusted, approval or denied"


@a2a.command("serve")
def serve(
    target: Annotated[
        str, typer.Argument(help="The agent: module:object, file.py:object or a YAML file.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port (beside `podium serve`'s 8000); 0: a free one."),
    ] = 9000,
    url: Annotated[
        str | None,
        typer.Option(help="The URL the card gives (behind a proxy); default where it listens."),
    ] = None,
    keys_file: Annotated[
        str | None,
        typer.Option(
            "--keys-file",
            help="API keys, `key:role[:name]` one a line (as for `podium serve`); also "
            "$PODIUM_API_KEYS. With either, every request but the card's needs "
            "`Authorization: Bearer KEY`: sending needs operator, replying approver. "
            "With neither, anyone who reaches the port may: keep it on loopback.",
            show_default=False,
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Serve an agent over A2A: its card at /.well-known/agent-card.json, JSON-RPC at /.
    Each task is a durable run on the store, the task id its run id."""
    with usage_errors():
        try:
            from podium.protocols.a2a_server import serve_a2a
        except ImportError as e:
            raise UsageError.missing_extra("podium a2a", "a2a", e) from None
        from podium.protocols.bearer import unguarded_warning
        from podium.server.auth import KeyRing, configured_keys

        keys = configured_keys(keys_file)
        agent, stored = load_agent(target)
        make_store(store)  # a bad URL fails here, with the usual message
    what = "start and decide runs"
    if keys is None and (warning := unguarded_warning("podium a2a serve", host, what)):
        typer.echo(warning, err=True)
    serve_a2a(
        agent,
        host=host,
        port=port,
        url=url,
        store=store,
        target=stored,
        authenticate=None if keys is None else KeyRing(keys).find,
        announce=lambda line: typer.echo(line),
    )


@a2a.command("card")
def card(url: Annotated[str, typer.Argument(help="The agent's base URL.")]) -> None:
    """Fetch an agent's card and print it with its sha256 (what `card_sha256:` pins)."""
    with usage_errors():
        try:
            import httpx
            from a2a.client import A2ACardResolver
            from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
        except ImportError as e:
            raise UsageError.missing_extra("podium a2a", "a2a", e) from None
        from podium.agents.remote import card_digest

        async def fetch() -> dict[str, object]:
            async with httpx.AsyncClient(timeout=30) as http:
                return dict(MessageToDict(await A2ACardResolver(http, url).get_agent_card()))

        try:
            plain = asyncio.run(fetch())
        except Exception as e:
            raise UsageError(f"cannot read the agent card at {url}: {e}") from None
    typer.echo(json.dumps({"sha256": card_digest(plain), "card": plain}, indent=2))


@a2a.command("trust")
def trust(
    name: Annotated[str, typer.Argument(help="The remote agent's name (its `name:`).")],
    level: Annotated[str, typer.Argument(help=f"One of {_LEVELS}.")],
    store: StoreOpt = None,
) -> None:
    """Set a remote agent's trust for every call from now on, in every process on the store:
    `approval` makes each call wait for a person, `denied` refuses it (rule a2a.trust),
    `untrusted` (the default) lets calls go. A RemoteAgent built with a lower trust keeps it."""
    from podium.agents.remote import set_trust

    with usage_errors():
        st = make_store(store)

        async def job(rt: Runtime) -> str:
            return str(await set_trust(await rt.open(), name, level))

        now = _read(st, job)
    typer.echo(f"{name}: trust {now}")
