"""Watching and re-checking runs from a terminal.

podium metrics [--store URL]                 a store's state as Prometheus exposition text
podium replay RUN [--store URL]              re-run a finished run's orchestration against its
                                             journal; exit 1 naming the step where it differs
podium fork RUN --at STEP [--input JSON]     a new run reusing RUN's journal before STEP
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from podium.cli import render
from podium.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    RunArg,
    StoreOpt,
    TargetsOpt,
    _drive,
    _finish,
    _read,
    app,
    make_store,
    opened,
    parse_input,
    store_is_absent,
    usage_errors,
)
from podium.errors import UnknownRunError, UsageError
from podium.runtime.runtime import KEEP_INPUT, Runtime
from podium.stores import Store

if TYPE_CHECKING:
    from podium.observability.metrics import Metrics

T = TypeVar("T")


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


async def _scrape(rt: Runtime, m: Metrics) -> bytes:
    return await m.scrape(await rt.open())


@app.command()
def replay(
    run_id: RunArg,
    store: StoreOpt = None,
    target: TargetsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-execute a finished run's orchestration against its journal (the determinism
    check): models, tools and agents that made no calls are answered from the journal,
    nothing is written. Exits 1, naming the step, if the code now decides differently."""
    with usage_errors():
        st = make_store(store)
        if store_is_absent(st):
            raise UnknownRunError(run_id)
        report = _with_targets(st, target or (), lambda rt: rt.replay(run_id))
    if json_out:
        typer.echo(render.dumps(report.to_dict()))
    elif report.ok:
        typer.echo(
            f"run {run_id} replays: {report.checked} journaled steps matched, "
            f"{len(report.rerun)} agents re-run"
        )
    else:
        typer.echo(f"error: {report.error}", err=True)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def fork(
    run_id: RunArg,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            help="The step key to run again from (see `podium show RUN`); the completed "
            "steps journaled before it are reused.",
            show_default=False,
        ),
    ],
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="JSON (or @file) replacing the run's input; the reused steps stay as they were.",
            show_default=False,
        ),
    ] = None,
    store: StoreOpt = None,
    target: TargetsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a new run that reuses RUN's journal up to (not including) step --at and runs
    on from there; RUN itself is untouched. Exits 2 for a step RUN does not have."""
    with usage_errors():
        value = KEEP_INPUT if input is None else parse_input(input)
        st = make_store(store)
        if store_is_absent(st):
            raise UnknownRunError(run_id)
        record = _read(st, lambda rt: rt.get_run(run_id))
        result = _drive(
            make_store(store),
            lambda rt: rt.fork(run_id, at=at, input=value),
            run_id,
            json_out,
            target or (),
        )
    _finish(result, record.agent, json_out, store=store)


def _with_targets(st: Store, targets: Sequence[str], job: Callable[[Runtime], Awaitable[T]]) -> T:
    async def go() -> T:
        rt = Runtime(st, targets=targets)
        try:
            return await job(await opened(rt, st))
        finally:
            await rt.close()

    return asyncio.run(go())
