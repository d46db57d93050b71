"""Watching and re-checking runs from a terminal.

podium metrics [--store URL]                 a store's state as Prometheus exposition text
podium replay RUN [--store URL]              re-run a finished run's orchestration against its
                                             journal; exit 1 naming the step where it differs
podium fork RUN --at STEP [--input JSON]     a new run reusing RUN's journal before STEP
"""

from __future__ import annotations

import typer

from podium.cli.app import StoreOpt, _read, app, make_store, store_is_absent, usage_errors
from podium.errors import UsageError


@app.command()
def metrics(store: StoreOpt = None) -> None:
    """Print a store's state as Prometheus metrics: runs by status, waiting runs and the
    dead-letter queue's size (`podium serve` serves these, and its own runs' counters, at
    /metrics). Needs the `server` extra."""
    from podium.observability.metrics import Metrics

    with usage_errors():
        st = make_store(store)
        if store_is_absent(st):
            raise UsageError(f"no store at {st.url}: nothing has run there yet")
        m = Metrics()
        text = _read(st, lambda rt: _scrape(rt, m))
    typer.echo(text.decode(), nl=False)


async def _scrape(rt: object, m: object) -> bytes:
    from podium.observability.metrics import Metrics
    from podium.runtime.runtime import Runtime

    assert isinstance(rt, Runtime) and isinstance(m, Metrics)
    return await m.scrape(await rt.open())
