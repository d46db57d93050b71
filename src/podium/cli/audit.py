"""The audit chain and purging payloads, from a terminal.

podium audit verify [RUN] [--store URL]   exit 0 when every chain is intact, 1 naming the
                                          first broken record of each run that is not
podium audit show RUN [--json]            a run's chain, record by record
podium purge RUN... | --before DATE       delete payloads of finished runs, keep the chain
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from podium.cli import render
from podium.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    RunArg,
    StoreOpt,
    _read,
    app,
    make_store,
    store_is_absent,
    usage_errors,
)
from podium.core.audit import AuditRecord
from podium.core.names import check_run_id
from podium.errors import UnknownRunError, UsageError
from podium.governance.audit import Report
from podium.runtime.audit import purge as purge_runs
from podium.runtime.audit import verify_store
from podium.runtime.runtime import Runtime

audit = typer.Typer(
    help="The tamper-evident audit log: every security-relevant record, hash-chained.",
    no_args_is_help=True,
)
app.add_typer(audit, name="audit")


@audit.command("verify")
def audit_verify(
    run_id: Annotated[
        str | None, typer.Argument(help="A run id; all runs if omitted.", show_default=False)
    ] = None,
    store: StoreOpt = None,
    signed: Annotated[
        bool,
        typer.Option(
            "--signed", help="Also fail when a chain's head is not signed (PODIUM_AUDIT_KEY)."
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check the hash chains: exit 0 when intact, 1 naming the first broken record of
    each broken run (payload edited, record altered, rows deleted or reordered, head cut
    off or signature not matching). With PODIUM_AUDIT_KEY set, signed heads are checked."""
    with usage_errors():
        if run_id is not None:
            check_run_id(run_id)
        st = make_store(store)
        if store_is_absent(st):
            if run_id is not None:
                raise UnknownRunError(run_id)
            report = Report()
        else:
            report = _read(st, lambda rt: _verify(rt, run_id, signed))
    if json_out:
        typer.echo(
            render.dumps(
                {
                    "ok": report.ok,
                    "runs": report.runs,
                    "records": report.records,
                    "breaks": [
                        {"run_id": b.run_id, "seq": b.seq, "problem": b.problem, "detail": b.detail}
                        for b in report.breaks
                    ],
                    "signatures": report.signatures,
                    "unaudited": report.unaudited,
                }
            )
        )
    else:
        typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


async def _verify(rt: Runtime, run_id: str | None, signed: bool) -> Report:
    return await verify_store(await rt.open(), run_id, require_signature=signed)


@audit.command("show")
def audit_show(run_id: RunArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """A run's audit chain: seq, time, kind, actor and payload of each record."""
    with usage_errors():
        check_run_id(run_id)
        st = make_store(store)
        if store_is_absent(st):
            raise UnknownRunError(run_id)
        records = _read(st, lambda rt: _chain(rt, run_id))
    if json_out:
        typer.echo(render.dumps([r.to_dict() for r in records]))
        return
    for r in records:
        at = datetime.fromtimestamp(r.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        payload = "(purged)" if r.payload is None else r.payload
        typer.echo(f"{r.seq:>4}  {at}  {r.kind:<20} {r.actor}  {r.hash[:12]}  {payload}")


async def _chain(rt: Runtime, run_id: str) -> list[AuditRecord]:
    store = await rt.open()
    if await store.get_run(run_id) is None and run_id not in await store.audit_runs():
        raise UnknownRunError(run_id)
    return await store.load_audit(run_id)


def parse_date(text: str) -> float:
    """An ISO date or date-time (`2026-01-31`, `2026-01-31T12:00`, with an offset or not:
    without one it is UTC) as a Unix time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--before {text!r} is not a date: give an ISO date like 2026-01-31 or "
            "2026-01-31T12:00:00 (UTC unless it has an offset)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@app.command()
def purge(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Runs whose payloads to delete.", show_default=False),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Purge every finished run last updated before this ISO date (UTC unless "
            "it has an offset).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Purge running or waiting runs too.")
    ] = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete the payloads of finished runs (inputs, outputs, errors, event data, their
    dead-letter entries and audit payloads), keeping the audit chain verifiable: a
    `purge.done` record keeps the sha256 of everything deleted."""
    with usage_errors():
        if bool(run_ids) == (before is not None):
            raise UsageError("purge takes run ids or --before DATE (not both, not neither)")
        cutoff = None if before is None else parse_date(before)
        for rid in run_ids or ():
            check_run_id(rid)
        st = make_store(store)
        if store_is_absent(st):
            if run_ids:
                raise UnknownRunError(run_ids[0])
            done: list[AuditRecord] = []
        else:
            done = _read(st, lambda rt: _purge(rt, run_ids or None, cutoff, force))
    if json_out:
        typer.echo(render.dumps([r.to_dict() for r in done]))
        return
    for r in done:
        value = r.value or {}
        typer.echo(f"purged {r.run_id}: {value.get('count', 0)} payload(s), hashes kept")
    if not done:
        typer.echo("nothing to purge")


async def _purge(
    rt: Runtime, run_ids: list[str] | None, before: float | None, force: bool
) -> list[AuditRecord]:
    return await purge_runs(await rt.open(), run_ids, before=before, force=force)
