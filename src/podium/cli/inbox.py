"""People's side of the CLI: what waits for them, and their decisions.

    podium inbox [--json]
    podium approve RUN [--comment ...] [--edit JSON] [--step KEY] [--by NAME] [--ttl S]
    podium reject RUN --comment ...
    podium answer RUN JSON
    podium sweep            # apply deadlines to overdue requests

A decision is recorded in the journal as the waiting step's output, then the run resumes to
completion (or to its next wait) in this process.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from podium.agents.human import Decision
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
    parse_input,
    store_is_absent,
    usage_errors,
)
from podium.core.records import RunStatus
from podium.errors import SweepError, UnknownRunError, UsageError
from podium.runtime.runtime import RunResult, Runtime
from podium.runtime.waiting import WaitingRequest

CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="Why; kept with the run.")]
StepOpt = Annotated[
    str | None, typer.Option("--step", help="The waiting step, when a run waits at several.")
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who decides, as you name them (default: $USER). The account running this "
        "command is recorded beside it in any case.",
    ),
]


@app.command()
def inbox(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """What waiting runs need from a person: the proposed action or question, and context."""
    with usage_errors():
        st = make_store(store)
        items: list[WaitingRequest] = [] if store_is_absent(st) else _read(st, _inbox)
    if json_out:
        typer.echo(render.dumps([w.to_dict() for w in items]))
        return
    if not items:
        typer.echo("nothing waits for a decision")
        return
    for w in items:
        due = ""
        if w.deadline_at is not None:
            left = w.deadline_at - time.time()
            due = " (overdue)" if left <= 0 else f" (due in {int(left)}s)"
        typer.echo(f"{w.run_id}  {w.step}{due}\n  {w.reason}")
        request = w.request if isinstance(w.request, dict) else {}
        if request.get("kind") == "approval" and "tool" in request:  # a tool call, exactly
            typer.echo(f"  agent {request.get('agent')!r} calls {request['tool']}:")
            args = json.dumps(request.get("args"), ensure_ascii=False, default=str)
            typer.echo(f"  args: {args}")
            typer.echo(f"  args_hash: {request.get('args_hash')}")
            typer.echo(f"  why: {request.get('reason') or 'needs approval'}")
        for field in ("proposed", "context", "input", "candidates", "sources"):
            if field in request:
                typer.echo(f"  {field}: {render.dumps(request[field])}")


async def _inbox(rt: Runtime) -> list[WaitingRequest]:
    return await rt.inbox()


@app.command()
def approve(
    run_id: RunArg,
    comment: CommentOpt = "",
    edit: Annotated[
        str | None, typer.Option("--edit", help="JSON that replaces the proposed value.")
    ] = None,
    step: StepOpt = None,
    by: ByOpt = None,
    ttl: Annotated[
        float | None,
        typer.Option(
            "--ttl",
            help="Seconds the approval of a tool call stays good; past them the run asks again.",
        ),
    ] = None,
    target: TargetsOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve what a waiting run proposes (optionally edited) and resume it. A tool call's
    approval is bound to its exact arguments (the edited ones, with --edit) and used once."""
    with usage_errors():
        edited = None if edit is None else parse_input(edit, "--edit")
        if ttl is not None and not (0 < ttl < float("inf")):
            raise UsageError(f"--ttl must be a positive number of seconds, got {ttl}")
        decision = Decision.approve(edited, comment=comment, by=_who(by), ttl=ttl)
        result, agent = _decide(store, run_id, decision, step, json_out, target)
    _finish(result, agent, json_out, store=store)


@app.command()
def reject(
    run_id: RunArg,
    comment: CommentOpt = "",
    step: StepOpt = None,
    by: ByOpt = None,
    target: TargetsOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reject what a waiting run proposes; its flow stops with your comment as the reason."""
    with usage_errors():
        if not comment.strip():
            raise UsageError("reject needs --comment: say why, it is kept with the run")
        decision = Decision.reject(comment, by=_who(by))
        result, agent = _decide(store, run_id, decision, step, json_out, target)
    _finish(result, agent, json_out, fail_exit=False, store=store)


@app.command()
def answer(
    run_id: RunArg,
    value: Annotated[str, typer.Argument(help="The answer: JSON, or @file.")],
    step: StepOpt = None,
    by: ByOpt = None,
    target: TargetsOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer the question a waiting run asks (a HumanAgent, a router's triage, an effect
    whose outcome is unknown) and resume it."""
    with usage_errors():
        decision = Decision.answer(_answer(value), by=_who(by))
        result, agent = _decide(store, run_id, decision, step, json_out, target)
    _finish(result, agent, json_out, store=store)


@app.command()
def sweep(target: TargetsOpt = None, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Resume waiting runs whose deadline passed, so their timeout rule applies. A run that
    cannot be resumed is reported and the others still are; the exit code is then 1."""
    with usage_errors():
        st = make_store(store)
        results, failures = (
            ([], {}) if store_is_absent(st) else _drive(st, _sweep, "sweep", json_out, target or ())
        )
    if json_out:
        rows = [{**r.to_dict(), "resumed": True} for r in results]
        rows += [{"run_id": k, "resumed": False, "error": v} for k, v in failures.items()]
        typer.echo(render.dumps(rows))
    else:
        typer.echo(f"{len(results)} overdue run(s) resumed")
        for r in results:
            typer.echo(f"  {r.run_id}  {r.status}  {r.error or ''}")
        if failures:
            typer.echo(f"{len(failures)} overdue run(s) not resumed")
        for run_id, why in failures.items():
            typer.echo(f"  {run_id}  not resumed: {why}")
    if failures:
        raise typer.Exit(EXIT_FAILED)


async def _sweep(rt: Runtime) -> tuple[list[RunResult], dict[str, str]]:
    try:
        return await rt.sweep(), {}
    except SweepError as e:
        return e.results, e.failures


def _decide(
    store: str | None,
    run_id: str,
    decision: Decision,
    step: str | None,
    json_out: bool,
    targets: list[str] | None,
) -> tuple[RunResult, str]:
    """Record `decision` and resume: the runtime checks it fits and loads the run's stored
    target only if trusted, both before anything is written."""
    st = make_store(store)
    if store_is_absent(st):
        raise UnknownRunError(run_id)
    record = _read(st, lambda rt: rt.get_run(run_id))
    if record.status != RunStatus.WAITING:
        raise UsageError(f"run {run_id} is {record.status}, not waiting for a decision")
    result = _drive(
        make_store(store),
        lambda rt: rt.resume(run_id, decision=decision, step=step),
        run_id,
        json_out,
        targets or (),
    )
    return result, record.agent


def _answer(value: str) -> Any:
    """JSON if it parses, else the text as it is (a person types words)."""
    try:
        return parse_input(value, "answer")
    except UsageError:
        if value.startswith("@"):
            raise
        return value


def _who(by: str | None) -> str:
    import getpass

    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
