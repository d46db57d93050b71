"""Operating runs: the dead-letter queue and workers.

podium dlq list [--json]          runs that failed for good, with their reason
podium dlq show RUN               the run, its error, journal and saga
podium dlq requeue RUN            resume it from the last completed step (after a fix)
podium dlq discard RUN            drop it from the queue (it stays failed)
podium submit TARGET --input ...  queue a run for workers
podium worker [--concurrency N]   drive queued runs; SIGTERM parks them gracefully
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any

import typer

from podium.cli import render
from podium.cli.app import (
    BudgetOpt,
    JsonOpt,
    RunArg,
    StoreOpt,
    TargetsOpt,
    _drive,
    _finish,
    _load_run,
    _read,
    app,
    check_input,
    load_agent,
    make_store,
    opened,
    parse_budget,
    parse_input,
    store_is_absent,
    usage_errors,
)
from podium.core.names import check_run_id
from podium.errors import UsageError
from podium.runtime.runtime import Runtime

dlq = typer.Typer(help="The dead-letter queue: runs that failed for good.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


@dlq.command("list")
def dlq_list(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Runs in the dead-letter queue, oldest first."""
    with usage_errors():
        st = make_store(store)
        entries: list[dict[str, Any]] = [] if store_is_absent(st) else _read(st, _dead)
    if json_out:
        typer.echo(render.dumps(entries))
        return
    if not entries:
        typer.echo("the dead-letter queue is empty")
    for e in entries:
        saga = (e.get("saga") or {}).get("status")
        note = f"  (saga {saga})" if saga else ""
        typer.echo(f"{e['run_id']}  {e['agent']}  {e.get('kind', 'error')}{note}\n  {e['error']}")


async def _dead(rt: Runtime) -> list[dict[str, Any]]:
    return await rt.dead_letters()


@dlq.command("show")
def dlq_show(run_id: RunArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """A dead-lettered run: its entry, input, error and journal."""
    with usage_errors():
        record, steps, _ = _load_run(store, run_id, events=False)
        entry = _read(make_store(store), lambda rt: _entry(rt, run_id))
    if json_out:
        typer.echo(render.dumps({"dead_letter": entry, **render.run_dict(record, steps)}))
        return
    typer.echo(f"dead letter: {entry.get('kind', 'error')}: {entry['error']}")
    if entry.get("saga"):
        typer.echo(f"saga: {render.dumps(entry['saga'])}")
    render.print_run(record, steps)


async def _entry(rt: Runtime, run_id: str) -> dict[str, Any]:
    store = await rt.open()
    entry = await store.kv_get("dlq", run_id)
    if entry is None:
        raise UsageError(f"run {run_id} is not in the dead-letter queue")
    return dict(entry)


@dlq.command("requeue")
def dlq_requeue(
    run_id: RunArg, target: TargetsOpt = None, store: StoreOpt = None, json_out: JsonOpt = False
) -> None:
    """Resume a dead-lettered run from its last completed step (its stored target loads
    only if trusted: see --target)."""
    with usage_errors():
        record, _, _ = _load_run(store, run_id, events=False)
        result = _drive(
            make_store(store), lambda rt: rt.requeue(run_id), run_id, json_out, target or ()
        )
    _finish(result, record.agent, json_out, store=store)


@dlq.command("discard")
def dlq_discard(run_id: RunArg, store: StoreOpt = None) -> None:
    """Drop a run from the dead-letter queue; it stays failed, with its journal."""
    with usage_errors():
        st = make_store(store)
        if store_is_absent(st):
            raise UsageError(f"run {run_id} is not in the dead-letter queue")
        _read(st, lambda rt: rt.discard(run_id))
    typer.echo(f"discarded {run_id}")


@app.command()
def submit(
    target: Annotated[str, typer.Argument(help="module:object, file.py:object or a YAML file.")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON, or @file.")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Id for the run.")] = None,
    budget: BudgetOpt = None,
    store: StoreOpt = None,
) -> None:
    """Queue a run for workers and print its id."""
    with usage_errors():
        limits = parse_budget(budget)
        if run_id is not None:
            check_run_id(run_id)
        agent, stored = load_agent(target)
        value = check_input(agent, parse_input(input))
        st = make_store(store)

        async def go() -> str:
            rt = Runtime(st)
            try:
                await opened(rt, st)
                return await rt.submit(agent, value, run_id=run_id, target=stored, budget=limits)
            finally:
                await rt.close()

        typer.echo(asyncio.run(go()))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Runs driven at once.")] = 8,
    lease: Annotated[float, typer.Option(min=0.1, help="Seconds a run's lease lasts.")] = 30.0,
    grace: Annotated[float, typer.Option(help="Seconds to let steps finish on SIGTERM.")] = 30.0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when none is left.")
    ] = False,
    target: TargetsOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Drive queued runs. SIGTERM: take no new runs, let running steps finish, park the rest
    (still `running`, resumable by any worker). A run's stored target loads only if trusted:
    with --target, only those agents run; a run it refuses counts in `errors`.
    PODIUM_OTEL=1 traces the runs with OpenTelemetry (docs/observability.md)."""
    with usage_errors():
        _seconds("--lease", lease)
        _seconds("--grace", grace)
        st = make_store(store)
        pinned = target or ()
        if pinned:  # fail now, not once per run, if a pinned target itself does not load
            for ref in pinned:
                load_agent(ref)

        async def go() -> Any:
            rt = Runtime(st, targets=pinned)
            try:
                await opened(rt, st)
                return await rt.work(
                    concurrency=concurrency, lease=lease, grace=grace, until_idle=until_idle
                )
            finally:
                await rt.close()

        stats = asyncio.run(go())
    summary = {k: getattr(stats, k) for k in stats.__slots__}
    typer.echo(render.dumps(summary) if json_out else f"worker done: {summary}")


def _seconds(option: str, value: float) -> None:
    """A duration must be a number of seconds: `inf` would never expire (a lease no other
    worker could take over), `nan` compares false with everything."""
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{option} must be a finite number of seconds, at least 0, got {value}")
