"""`podium batch`: one run per line of a JSONL file, resumable, with a progress bar.

    podium batch flow.yaml --input tickets.jsonl --out results.jsonl --concurrency 8

Each line of the input is one item and one run, `--concurrency` at a time. A run's id comes
from the target, the input file and the line (its number and its text), so running the same
command again finds the runs it started: items completed before are skipped, runs that were
interrupted or failed are resumed from their journal (what they completed is not done
again), and new lines are run. `results.jsonl` gets one line per item as it finishes, and
is rewritten at the end in the input's order, one line per item.

Ctrl-C stops cleanly: no new item starts, the steps in flight finish and each unfinished run
stops at its next step, resumable (a second Ctrl-C stops at once). Completed items are in the
store and in the results file; the next run of the command goes on from there. A line that
is not JSON, or not a valid input for the target, is reported with its number and skipped;
the others run. Exit code: 0 when every item completed, 1 when one failed or a line was bad,
130 when interrupted, 2 for misuse (nothing written).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from podium.cli import render
from podium.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BudgetOpt,
    JsonOpt,
    StoreOpt,
    app,
    load_agent,
    make_store,
    opened,
    parse_budget,
    usage_errors,
)
from podium.core.bounds import MAX_CONCURRENCY
from podium.core.records import Event, RunRecord, RunStatus, Usage
from podium.core.serde import describe_validation_error, to_plain
from podium.errors import Parked, UsageError
from podium.runtime.budget import Budget
from podium.runtime.runtime import RunResult, Runtime


@dataclass(slots=True)
class Item:
    line: int
    value: Any
    run_id: str


@dataclass(slots=True)
class Job:
    """What one `podium batch` command does, and what came of it so far."""

    agent: Any
    target: str
    items: list[Item]
    bad: list[tuple[int, str]]
    out: Path
    concurrency: int
    budget: Budget | None
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # line -> record
    before: int = 0  # items completed by an earlier command
    counts: dict[str, int] = field(default_factory=dict)  # this command's outcomes
    usd: float = 0.0  # spent by this command (finished model steps, failed ones too)
    tokens: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


@app.command()
def batch(
    target: Annotated[
        str, typer.Argument(help="module:object, path/file.py:object, or a YAML workflow file.")
    ],
    input: Annotated[
        Path, typer.Option("--input", "-i", help="A JSONL file: one JSON input per line.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where results go: one JSON line per item.")
    ],
    concurrency: Annotated[
        int, typer.Option(min=1, max=MAX_CONCURRENCY, help="Items run at once (at most 10,000).")
    ] = 4,
    budget: BudgetOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run TARGET once per line of --input, --concurrency at a time; results go to --out.
    Run it again to go on: completed items are skipped, interrupted ones resumed. --budget
    applies to each item's run."""
    with usage_errors():
        limits = parse_budget(budget)
        agent, stored = load_agent(target)
        items, bad = read_items(input, agent, stored)
        previous = read_results(out)
        st = make_store(store)
    job = Job(agent, stored, items, bad, out, concurrency, limits)
    job.results = {line: r for line, r in previous.items() if _belongs(r, items)}
    for line, error in bad:
        typer.echo(f"{input}: line {line}: {error}", err=True)
    try:
        asyncio.run(_drive(job, st))
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        job.interrupted = True
    finally:
        write_results(job)
    _report(job, json_out)
    if job.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if job.bad or job.counts.get("failed") or job.counts.get("cancelled"):
        raise typer.Exit(EXIT_FAILED)


# the input and the results files -----------------------------------------------------------
def run_id_for(target: str, input: Path, line: int, text: str) -> str:
    """The same target, input file, line number and line text give the same run id."""
    where = str(input.resolve())
    digest = hashlib.sha256(f"{target}\n{where}\n{line}\n{text}".encode()).hexdigest()
    return digest[:16]


def read_items(path: Path, agent: Any, target: str) -> tuple[list[Item], list[tuple[int, str]]]:
    """The items of a JSONL file, and the lines that are not (line number, what is wrong).
    Blank lines are not items."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read --input file {str(path)!r}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"--input file {str(path)!r} is not UTF-8 text: {e}") from None
    items: list[Item] = []
    bad: list[tuple[int, str]] = []
    check = getattr(agent, "check_input", None)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append((number, f"not valid JSON ({e.msg} at column {e.colno})"))
            continue
        if check is not None:
            try:
                value = check(value)
            except ValidationError as e:
                bad.append(
                    (number, f"input for agent {agent.name!r}: {describe_validation_error(e)}")
                )
                continue
        items.append(Item(number, value, run_id_for(target, path, number, line)))
    if not items and not bad:
        raise UsageError(f"--input file {str(path)!r} has no items (one JSON value per line)")
    return items, bad


def read_results(path: Path) -> dict[int, dict[str, Any]]:
    """What an earlier command wrote to --out (the last record of each line wins; a line cut
    short by a kill is ignored). A file that is not a results file is misuse: never
    overwrite what is not ours."""
    if not path.parent.is_dir():
        raise UsageError(f"--out {str(path)!r}: no such directory {str(path.parent)!r}")
    if not path.exists():
        return {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read --out file {str(path)!r}: {e}") from None
    out: dict[int, dict[str, Any]] = {}
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1 and line.startswith('{"line": '):
                continue  # our last line, cut short by a kill
            record = None
        if not isinstance(record, dict) or not {"line", "run_id", "status"} <= set(record):
            raise UsageError(
                f"--out file {str(path)!r} exists and is not a podium batch results file "
                f"(line {i + 1}); give another --out"
            )
        out[int(record["line"])] = record
    return out


def _belongs(record: dict[str, Any], items: list[Item]) -> bool:
    """Whether a record from an earlier command is about an item of this input."""
    return any(i.line == record["line"] and i.run_id == record["run_id"] for i in items)


def write_results(job: Job) -> None:
    """Rewrite --out in the input's order, one line per item, atomically."""
    tmp = job.out.with_name(job.out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in sorted(job.results):
            f.write(json.dumps(job.results[line], ensure_ascii=False) + "\n")
    os.replace(tmp, job.out)


def _append(job: Job, record: dict[str, Any]) -> None:
    """Add one finished item to --out at once, so a kill loses nothing completed."""
    job.results[record["line"]] = record
    with job.out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _record(
    item: Item, status: str, output: Any, error: str | None, usage: Usage
) -> dict[str, Any]:
    return {
        "line": item.line,
        "run_id": item.run_id,
        "status": status,
        "input": to_plain(item.value),
        "output": to_plain(output),
        "error": error,
        "usage": usage.to_dict(),
    }


# driving the runs --------------------------------------------------------------------------
async def _drive(job: Job, store: Any) -> None:
    progress = BatchProgress(job) if sys.stdout.isatty() and not job.interrupted else None
    rt = Runtime(store, on_event=lambda e: _on_event(job, progress, e))
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    workers: list[asyncio.Task[None]] = []

    def on_sigint() -> None:
        if not job.interrupted:  # first Ctrl-C: start nothing new, park at the next step
            job.interrupted = True
            rt.stop()
            message = "stopping: no new items; press Ctrl-C again to stop at once"
            if progress is not None:  # above the bar, not through it
                progress.progress.console.print(f"[yellow]{message}[/]")
            else:
                typer.echo(message, err=True)
        else:
            for w in workers:
                w.cancel()

    try:
        await opened(rt, store)
        todo = await _pending(job, rt)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        queue = iter(todo)
        with progress or contextlib.nullcontext():
            if progress is not None:
                progress.start_items(job)
            workers = [
                asyncio.create_task(_worker(job, rt, queue, progress))
                for _ in range(min(job.concurrency, len(todo)) or 1)
            ]
            await asyncio.gather(*workers, return_exceptions=True)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        job.seconds = time.perf_counter() - t0
        await rt.close()


async def _pending(job: Job, rt: Runtime) -> list[tuple[Item, RunRecord | None]]:
    """The items still to do, each with its run if an earlier command started it; items
    completed before are recorded (from the store, if --out lost them) and skipped."""
    store = await rt.open()
    todo = []
    for item in job.items:
        record = await store.get_run(item.run_id)
        if record is not None and record.status == RunStatus.COMPLETED:
            job.before += 1
            if item.line not in job.results or job.results[item.line]["status"] != "completed":
                done = _record(item, "completed", record.output, None, record.usage)
                job.results[item.line] = done
            continue
        todo.append((item, record))
    return todo


async def _worker(job: Job, rt: Runtime, queue: Any, progress: BatchProgress | None) -> None:
    for item, record in queue:
        if job.interrupted:
            return
        result = await _one(job, rt, item, record)
        if isinstance(result, RunResult) and isinstance(result.exception, Parked):
            job.count("interrupted")
            continue  # stopped at a step boundary by Ctrl-C: the next command resumes it
        status, output, error, usage = _outcome(result)
        job.count(status)
        _append(job, _record(item, status, output, error, usage))
        if progress is not None:
            progress.item_done(status)
        elif status == "failed":
            typer.echo(f"line {item.line}: failed: {error}", err=True)


async def _one(job: Job, rt: Runtime, item: Item, record: RunRecord | None) -> RunResult | str:
    """Start, resume or requeue the item's run; a run that cannot be driven (cancelled,
    driven by another process) is an error message instead."""
    try:
        if record is None:
            return await rt.run(
                job.agent, item.value, run_id=item.run_id, target=job.target, budget=job.budget
            )
        if record.status == RunStatus.CANCELLED:
            return f"run {item.run_id} was cancelled"
        if record.status == RunStatus.FAILED:
            with contextlib.suppress(UsageError):  # not in the dead-letter queue: resume it
                return await rt.requeue(item.run_id, job.agent)
        return await rt.resume(item.run_id, job.agent, budget=job.budget)
    except UsageError as e:
        return str(e)


def _outcome(result: RunResult | str) -> tuple[str, Any, str | None, Usage]:
    if isinstance(result, str):
        status = "cancelled" if result.endswith("was cancelled") else "failed"
        return status, None, result, Usage()
    return str(result.status), result.output, result.error, result.usage


def _on_event(job: Job, progress: BatchProgress | None, event: Event) -> None:
    """Cost so far: every finished model step's usage, failed attempts included."""
    if event.usage is not None and event.kind in ("step.completed", "step.failed"):
        job.usd += event.usage.usd
        job.tokens += event.usage.total_tokens
        if progress is not None:
            progress.spent(job.usd)


# showing it --------------------------------------------------------------------------------
class BatchProgress:
    """A rich progress bar: items done of all, failures, cost so far, time left."""

    def __init__(self, job: Job) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("[magenta]${task.fields[usd]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=render.console(),
        )
        self.task = self.progress.add_task(
            job.out.name, total=len(job.items), failed=0, usd=0.0, start=False
        )
        self.failed = 0

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def start_items(self, job: Job) -> None:
        self.progress.update(self.task, completed=job.before)
        self.progress.start_task(self.task)

    def item_done(self, status: str) -> None:
        if status == "failed":
            self.failed += 1
        self.progress.update(self.task, advance=1, failed=self.failed)

    def spent(self, usd: float) -> None:
        self.progress.update(self.task, usd=usd)


def _summary(job: Job) -> dict[str, Any]:
    statuses = [r["status"] for r in job.results.values()]
    total_usd = sum(float((r.get("usage") or {}).get("usd", 0.0)) for r in job.results.values())
    unfinished = len(job.items) - sum(1 for s in statuses if s in ("completed",))
    return {
        "items": len(job.items),
        "completed": statuses.count("completed"),
        "done_before": job.before,
        "failed": statuses.count("failed"),
        "waiting": statuses.count("waiting"),
        "cancelled": statuses.count("cancelled"),
        "not_finished": unfinished,
        "bad_lines": [{"line": n, "error": e} for n, e in job.bad],
        "usd": round(job.usd, 10),
        "tokens": job.tokens,
        "usd_all_items": round(total_usd, 10),
        "seconds": round(job.seconds, 3),
        "interrupted": job.interrupted,
        "out": str(job.out),
    }


def _report(job: Job, json_out: bool) -> None:
    summary = _summary(job)
    if json_out:
        typer.echo(render.dumps(summary))
    else:
        _print_summary(summary)
    if job.interrupted:
        typer.echo(
            f"interrupted: {summary['not_finished']} of {summary['items']} items not finished; "
            "run the same command again to go on",
            err=True,
        )


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="podium batch", title_justify="left", box=None, header_style="bold")
    table.add_column("items")
    table.add_column("count", justify="right")
    rows = [
        ("[green]completed[/]", s["completed"]),
        ("  of which before this run", s["done_before"]),
        ("[red]failed[/]", s["failed"]),
        ("[yellow]waiting[/]", s["waiting"]),
        ("cancelled", s["cancelled"]),
        ("not finished", s["not_finished"]),
        ("[red]bad lines[/]", len(s["bad_lines"])),
        ("[bold]all items[/]", s["items"]),
    ]
    for name, n in rows:
        if n or name in ("[green]completed[/]", "[bold]all items[/]"):
            table.add_row(name, str(n))
    out = render.console()
    out.print(table)
    out.print(
        f"spent now [magenta]{render.money(s['usd'])}[/] ({s['tokens']:,} tokens) in "
        f"{s['seconds']:.1f}s; all items so far [magenta]{render.money(s['usd_all_items'])}[/]"
    )
    out.print(f"results: {s['out']}")
