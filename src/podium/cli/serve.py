"""`podium serve`: the HTTP API (and the UI at `/`) over a store.

    podium serve --host 127.0.0.1 --port 8000 --store sqlite:///runs.db [--workers 4]
    podium serve --open      # and open the UI in the browser, signed in at a first start

Needs the `server` extra. With no key configured (`PODIUM_API_KEYS`, `--keys-file`), the
first start makes an admin key, keeps its hash in the store, and prints it once, with a
link that signs the UI in (as Jupyter prints its token's URL). The key rides in the link's
fragment (`#key=`), which a browser never sends: it stays out of access logs and referrers,
and the page moves it to its own storage and drops it from the address bar.
"""

from __future__ import annotations

import asyncio
import threading
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

import typer

from podium.cli.app import StoreOpt, TargetsOpt, app, make_store, opened, usage_errors
from podium.errors import UsageError
from podium.runtime.runtime import Runtime
from podium.stores import Store


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Runs the server drives at once in its own worker; 0 leaves queued runs to "
            "`podium worker` processes on the same store.",
        ),
    ] = 4,
    keys_file: Annotated[
        str | None,
        typer.Option(
            "--keys-file",
            help="API keys, `key:role[:name]` one a line (roles: viewer, operator, approver, "
            "admin); also $PODIUM_API_KEYS. With neither, the keys kept in the store (the "
            "first start makes an admin key and prints it once).",
            show_default=False,
        ),
    ] = None,
    target: TargetsOpt = None,
    store: StoreOpt = None,
    open_ui: Annotated[
        bool,
        typer.Option(
            "--open",
            help="Open the UI in a web browser once the server listens (signed in, at the "
            "first start that makes the admin key).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API under /api/ (runs, live events over SSE, approvals, the DLQ),
    /metrics, /healthz and /readyz, and the UI at /. Every /api/ call needs
    `Authorization: Bearer KEY`; see docs/server.md."""
    with usage_errors():
        try:
            import uvicorn

            from podium.server.app import create_app
            from podium.server.auth import configured_keys, ensure_admin_key
        except ImportError as e:
            raise UsageError.missing_extra("podium serve", "server", e) from None
        keys = configured_keys(keys_file)
        st = make_store(store)
        ui = ui_url(host, port)
        if keys is None:
            key = asyncio.run(_first_key(st, ensure_admin_key))
            if key is not None:
                ui = f"{ui}#key={quote(key, safe='')}"
                typer.echo(
                    "podium serve: no API key was configured, so this admin key was made and "
                    "its hash kept in the store. It is shown this once:\n\n"
                    f"    {key}\n\n"
                    "Send it as `Authorization: Bearer KEY`. Configure keys with "
                    "PODIUM_API_KEYS=key:role,... or --keys-file. To sign the UI in, open\n\n"
                    f"    {ui}\n",
                    err=True,
                )
        if open_ui:
            # uvicorn.run blocks; the browser asks a moment later, when it listens
            threading.Timer(1.0, webbrowser.open, (ui,)).start()
        application = create_app(make_store(store), keys, workers=workers, targets=target or ())
    # open event streams (a waiting run's) must not hold a shutdown up for ever
    uvicorn.run(application, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)


def ui_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the UI (a wildcard address is reached on
    loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


async def _first_key(store: Store, ensure: Callable[[Store], Awaitable[str | None]]) -> str | None:
    rt = Runtime(store)
    try:
        return await ensure(await (await opened(rt, store)).open())
    finally:
        await rt.close()
