"""`podium`: run agents and look at runs from a terminal.

    podium run flow.yaml --input '{"text": "where is my parcel?"}'
    podium runs --status failed
    podium show RUN --json
    podium trace RUN
    podium cost RUN [--json]
    podium batch TARGET --input items.jsonl --out results.jsonl [--concurrency N]
    podium resume RUN
    podium inbox / approve RUN / reject RUN --comment ... / answer RUN JSON / sweep
    podium audit verify [RUN] / audit show RUN / purge RUN... | --before DATE
    podium serve --port 8000 --store URL   (the HTTP API and UI; extra `server`)
    podium mcp serve TARGET... [--transport stdio|http]   (agents as MCP tools; extra `mcp`)
    podium metrics / replay RUN / fork RUN --at STEP

Misuse (an unknown target, bad input JSON, an unknown run, a malformed spec, a bad store URL)
prints one line, `error: ...`, exits with 2, and writes nothing: targets and input are checked
before the store is opened, and read-only commands never create a store. A run that fails
exits with 1; one that completes, or waits for the outside world, with 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from podium.cli import render
from podium.core.names import check_run_id
from podium.core.records import Event, RunRecord, RunStatus, StepRecord
from podium.core.serde import describe_validation_error, to_plain
from podium.errors import UnknownRunError, UsageError
from podium.runtime.budget import Budget
from podium.runtime.limits import RunLimits, given_limits
from podium.runtime.runtime import RunResult, Runtime, new_run_id
from podium.runtime.stream import RunStream
from podium.stores import Store, open_store

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="podium",
    help="Orchestrate teams of AI agents, durably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL (memory://, sqlite:///path.db, postgresql://...). "
        "Default: $PODIUM_STORE, else sqlite under ./.podium/",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TargetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="A target this command may load to drive a stored run (repeatable). Given, "
        "only these load; else also PODIUM_TARGETS and [tool.podium] targets; with none of "
        "them, targets inside the project directory and installed modules.",
        show_default=False,
    ),
]
RunArg = Annotated[str, typer.Argument(help="A run id.", show_default=False)]
BudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="Limits on the run's spend, e.g. 'usd=0.50,tokens=20000' (also model_calls, "
        "tool_calls, seconds, alert_at). Stored with the run: a resume keeps it.",
        show_default=False,
    ),
]
DeadlineOpt = Annotated[
    float | None,
    typer.Option(
        "--deadline",
        help="Seconds the run may spend running (waiting for a person does not count; "
        "default 24 h, or PODIUM_RUN_DEADLINE). Stored with the run: a resume keeps it.",
        show_default=False,
    ),
]
MaxStepsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-steps",
        help="Steps the run may journal (default 10,000, or PODIUM_MAX_STEPS). Stored with "
        "the run: a resume keeps it.",
        show_default=False,
    ),
]
MaxJournalOpt = Annotated[
    int | None,
    typer.Option(
        "--max-journal-bytes",
        help="Bytes of step outputs the run may keep in all (default 1 GiB, or "
        "PODIUM_MAX_JOURNAL_BYTES). Stored with the run: a resume keeps it.",
        show_default=False,
    ),
]
MaxOutputOpt = Annotated[
    int | None,
    typer.Option(
        "--max-output-bytes",
        help="Bytes one step's output may take as JSON (default 16 MiB, or "
        "PODIUM_MAX_OUTPUT_BYTES).",
        show_default=False,
    ),
]
MaxInputOpt = Annotated[
    int | None,
    typer.Option(
        "--max-input-bytes",
        help="Bytes the run's input may take as JSON (default 16 MiB, or PODIUM_MAX_INPUT_BYTES).",
        show_default=False,
    ),
]
StreamOpt = Annotated[
    bool,
    typer.Option(
        "--stream",
        help="Show model text as it is written, beside the steps (plain text when piped; "
        "JSON lines, one event each, with --json).",
    ),
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# errors ------------------------------------------------------------------------------------
@contextmanager
def usage_errors() -> Iterator[None]:
    """Misuse becomes one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except UsageError as e:
        message = " ".join(str(e).split("\n"))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


# inputs, targets, stores -------------------------------------------------------------------
def parse_input(text: str | None, option: str = "--input") -> Any:
    """JSON given on the command line as `option` (`--input`, `--edit`, an answer), or
    `@file` holding JSON (`@-` reads stdin). Errors name the option the user typed."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = text[1:]
        noun = "input" if option == "--input" else option
        source = f"{noun} file {path}"
        try:
            text = _read_capped(path).decode("utf-8")
        except OSError as e:
            raise UsageError(f"cannot read {noun} file {path!r}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise UsageError(f"{noun} file {path!r} is not UTF-8 text: {e}") from None
        except _TooLargeError:
            raise UsageError(
                f"{noun} file {path!r} is larger than {MAX_INPUT_BYTES // 2**20} MiB: "
                "a run's input is journaled whole; pass a path or a URL to the data instead"
            ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        quoted = f"{option} " if option.startswith("-") else ""
        raise UsageError(
            f"{source} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
            f"quote strings: {quoted}'\"hello\"'"
        ) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply to read") from None
    except ValueError as e:  # valid JSON Python will not read: an integer of 5,000 digits
        raise UsageError(f"{source} cannot be read: {str(e).split(';')[0]}") from None
    check_storable(value, source)
    return value


MAX_INPUT_DEPTH = 200
MAX_INPUT_BYTES = 64 * 2**20  # an input is journaled whole; /dev/zero must not be read forever


class _TooLargeError(Exception):
    pass


def _read_capped(path: str) -> bytes:
    """The bytes of `path` (`-`: stdin), or `_TooLargeError` once more than `MAX_INPUT_BYTES`
    have come: a device or a pipe that never ends is refused, not read until memory runs out."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise _TooLargeError
    return data


def check_storable(value: Any, source: str) -> None:
    """Refuse, before a run starts, an input the journal could not store: nested deeper than
    `MAX_INPUT_DEPTH` (the JSON encoder's limit, less room for the records it is kept in),
    or holding a lone surrogate (JSON's `\\ud800` escape, which is not Unicode text)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _has_surrogate(item):
                raise UsageError(f"{source} holds a lone surrogate, which is not Unicode text")
        elif isinstance(item, list | dict):
            if depth > MAX_INPUT_DEPTH:
                raise UsageError(f"{source} is nested more than {MAX_INPUT_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _sizes(max_input_bytes: int | None, max_output_bytes: int | None) -> dict[str, int | None]:
    """The size limits given on the command line, for the runtime (checked by it)."""
    sizes = {"max_input_bytes": max_input_bytes, "max_output_bytes": max_output_bytes}
    RunLimits().over(sizes)  # a wrong one fails here, before anything is loaded
    return sizes


def parse_budget(text: str | None) -> Budget | None:
    """`--budget usd=0.5,tokens=20000` as a `Budget`; a mistake names the option."""
    if text is None:
        return None
    values: dict[str, Any] = {}
    for part in text.replace(" ", "").split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            values[name] = float(value)
        except ValueError:
            raise UsageError(
                f"--budget {text!r}: write limits as name=number, e.g. 'usd=0.50,tokens=20000'"
            ) from None
    try:
        return Budget.from_dict(values)
    except UsageError as e:
        raise UsageError(f"--budget {text!r}: {e}") from None


def load_agent(target: str) -> tuple[Any, str]:
    """The agent a target typed on the command line names (the user's own choice, loaded as
    given), and the target as stored with the run (file paths made absolute). A YAML file's
    renamed keys are `warning:` lines on stderr, as `podium validate` prints them."""
    from podium.core.targets import load_target, normalise

    notes: list[Any] = []
    agent = load_target(target, notes=notes)
    for note in notes:
        typer.echo(f"warning: {target}: {note}", err=True)
    return agent, normalise(target)


def check_input(agent: Any, value: Any) -> Any:
    check = getattr(agent, "check_input", None)
    if check is None:
        return value
    try:
        return check(value)
    except ValidationError as e:
        raise UsageError(
            f"input for agent {agent.name!r}: {describe_validation_error(e)}"
        ) from None


def make_store(url: str | None) -> Store:
    """The store a URL names, not yet opened (a bad URL fails here, before any I/O)."""
    try:
        return open_store(url)
    except UsageError:
        raise
    except ImportError as e:
        raise UsageError(f"store {url!r} needs a driver that is not installed: {e}") from None


def store_is_absent(store: Store) -> bool:
    """True for a file-backed store whose file does not exist yet: reading it must not
    create it."""
    path = getattr(store, "path", None)
    return isinstance(path, str) and path != ":memory:" and not Path(path).exists()


async def opened(rt: Runtime, store: Store) -> Runtime:
    """The runtime with its store open; a store that cannot be reached is misuse (exit 2)."""
    try:
        await rt.open()
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"cannot open store {store.url}: {type(e).__name__}: {e}") from None
    return rt


def _read(store: Store, job: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run a read-only job against a store (the caller checked that it exists)."""

    async def go() -> T:
        rt = Runtime(store)
        try:
            return await job(await opened(rt, store))
        finally:
            await rt.close()

    return asyncio.run(go())


def _live(enabled: bool) -> tuple[Any, AbstractContextManager[Any]]:
    """A progress view and the `Live` that draws it, only on a terminal."""
    if not enabled:
        return None, nullcontext()
    from rich.live import Live

    from podium.cli.progress import ProgressView

    view = ProgressView()
    return view, Live(view, console=render.console(), refresh_per_second=8, transient=False)


def _drive(
    store: Store,
    start: Callable[[Runtime], Awaitable[T]],
    run_id: str,
    json_out: bool,
    targets: Sequence[str] = (),
    sizes: Mapping[str, Any] | None = None,
    taint: bool | None = None,
) -> T:
    """Open the store, start or resume the run under a live view, close the store. The
    runtime loads stored targets only as `targets` and the project allow."""
    view, live = _live(sys.stdout.isatty() and not json_out)

    def on_event(event: Event) -> None:
        if view is not None:
            view.on_event(event)
        warning = render.budget_warning(event)
        if warning is not None:
            typer.echo(warning, err=True)

    async def go() -> T:
        rt = Runtime(store, on_event=on_event, targets=targets, taint=taint, **(sizes or {}))
        try:
            return await start(await opened(rt, store))
        finally:
            await rt.close()

    try:
        with live:
            return asyncio.run(go())
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: run {run_id} can continue with `podium resume {run_id}`", err=True
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _drive_stream(
    store: Store,
    open_stream: Callable[[Runtime], RunStream],
    run_id: str,
    json_out: bool,
    targets: Sequence[str] = (),
    sizes: Mapping[str, Any] | None = None,
    taint: bool | None = None,
) -> RunResult:
    """`_drive` for `--stream`: read the run's events as they happen and show them (the
    text beside the step tree on a terminal, plain text when piped, JSON lines with
    `--json`)."""
    from podium.cli.stream import JsonLines, PlainStream, StreamDisplay, StreamView

    display: StreamDisplay
    live: AbstractContextManager[Any] = nullcontext()
    if json_out:
        display = JsonLines()
    elif sys.stdout.isatty():
        from rich.live import Live

        display = StreamView()
        live = Live(display, console=render.console(), refresh_per_second=12)
    else:
        display = PlainStream()

    async def go() -> RunResult:
        rt = Runtime(store, targets=targets, taint=taint, **(sizes or {}))
        try:
            async with open_stream(await opened(rt, store)) as stream:
                async for event in stream:
                    display.on_event(event)
                    warning = render.budget_warning(event)
                    if warning is not None:
                        typer.echo(warning, err=True)
            return await stream.result()
        finally:
            await rt.close()

    try:
        with live:
            result = asyncio.run(go())
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: run {run_id} can continue with `podium resume {run_id}`", err=True
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if isinstance(display, PlainStream):
        display.close()
    return result


def _finish(
    result: RunResult,
    agent: str,
    json_out: bool,
    *,
    fail_exit: bool = True,
    store: str | None = None,
    lines: bool = False,
) -> None:
    """Print what the run came to (`lines`: as the last of `--stream --json`'s JSON lines,
    on one line) and exit 1 if it failed."""
    if json_out:
        data = {"agent": agent, **result.to_dict()}
        typer.echo(json.dumps(to_plain(data), ensure_ascii=False) if lines else render.dumps(data))
    else:
        render.print_result(result, agent, store)
    if fail_exit and result.status == RunStatus.FAILED:
        raise typer.Exit(EXIT_FAILED)


# commands ----------------------------------------------------------------------------------
@app.command()
def run(
    target: Annotated[
        str,
        typer.Argument(help="module:object, path/file.py:object, or a YAML workflow file."),
    ],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="JSON input, or @file with JSON.")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Id for the new run.")] = None,
    budget: BudgetOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    stream: StreamOpt = False,
    deadline: DeadlineOpt = None,
    max_steps: MaxStepsOpt = None,
    max_journal_bytes: MaxJournalOpt = None,
    max_output_bytes: MaxOutputOpt = None,
    max_input_bytes: MaxInputOpt = None,
    taint: Annotated[
        bool | None,
        typer.Option(
            "--taint/--no-taint",
            help="Contain prompt injection: a side-effecting tool call derived from untrusted "
            "content (tool results, documents, other agents) waits for a person unless the "
            "agent's plan pins it or a sanitiser vouched for it. Default: $PODIUM_TAINT. "
            "Stored with the run: a resume keeps it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run an agent on an input and show the result. Every run has limits (steps, running
    time, sizes: see docs/security.md); --deadline and the --max-* options set them.
    PODIUM_OTEL=1 sends an OpenTelemetry span of every step over OTLP/HTTP to
    $OTEL_EXPORTER_OTLP_ENDPOINT (see docs/observability.md)."""
    with usage_errors():
        limits = parse_budget(budget)
        bounds = given_limits(
            deadline=deadline, max_steps=max_steps, max_journal_bytes=max_journal_bytes
        )
        sizes = _sizes(max_input_bytes, max_output_bytes)
        agent, stored = load_agent(target)
        value = check_input(agent, parse_input(input))
        rid = new_run_id() if run_id is None else check_run_id(run_id)
        st = make_store(store)
        if stream:
            result = _drive_stream(
                st,
                lambda rt: rt.stream(
                    agent, value, run_id=rid, target=stored, budget=limits, **bounds
                ),
                rid,
                json_out,
                sizes=sizes,
                taint=taint,
            )
        else:
            result = _drive(
                st,
                lambda rt: rt.run(agent, value, run_id=rid, target=stored, budget=limits, **bounds),
                rid,
                json_out,
                sizes=sizes,
                taint=taint,
            )
    _finish(result, agent.name, json_out, store=store, lines=stream)


@app.command()
def resume(
    run_id: RunArg,
    target: TargetsOpt = None,
    budget: BudgetOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    stream: StreamOpt = False,
    deadline: DeadlineOpt = None,
    max_steps: MaxStepsOpt = None,
    max_journal_bytes: MaxJournalOpt = None,
    max_output_bytes: MaxOutputOpt = None,
    max_input_bytes: MaxInputOpt = None,
) -> None:
    """Continue a run that crashed, was interrupted or waits: completed steps are replayed
    from the journal, the rest run. Its stored target loads only if trusted (--target). It
    keeps its budget and its limits, counting on from what it spent; --budget, --deadline
    and --max-* replace them (to give a run that passed one more room)."""
    with usage_errors():
        limits = parse_budget(budget)
        bounds = given_limits(
            deadline=deadline, max_steps=max_steps, max_journal_bytes=max_journal_bytes
        )
        sizes = _sizes(max_input_bytes, max_output_bytes)
        st = make_store(store)
        if store_is_absent(st):
            raise UnknownRunError(run_id)
        record = _read(st, lambda rt: rt.get_run(run_id))
        if stream:
            result = _drive_stream(
                make_store(store),
                lambda rt: rt.stream_resume(run_id, budget=limits, **bounds),
                run_id,
                json_out,
                target or (),
                sizes,
            )
        else:
            result = _drive(
                make_store(store),
                lambda rt: rt.resume(run_id, budget=limits, **bounds),
                run_id,
                json_out,
                target or (),
                sizes,
            )
    _finish(result, record.agent, json_out, store=store, lines=stream)


@app.command("runs")
def list_runs(
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs with this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List runs, newest first: status, time, tokens, cost and the start of any error,
    never their inputs or outputs (`podium show RUN` has those)."""
    with usage_errors():
        wanted = None if status is None else _status(status)
        st = make_store(store)
        runs = (
            []
            if store_is_absent(st)
            else _read(st, lambda rt: rt.list_runs(status=wanted, limit=limit))
        )
    if json_out:
        typer.echo(render.dumps([render.summary_dict(r) for r in runs]))
    else:
        render.print_runs(runs)


@app.command()
def show(run_id: RunArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Everything stored about one run: input, output, error, usage, steps."""
    with usage_errors():
        record, steps, _ = _load_run(store, run_id, events=False)
    if json_out:
        typer.echo(render.dumps(render.run_dict(record, steps)))
    else:
        render.print_run(record, steps)


@app.command()
def trace(run_id: RunArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """The run as a tree of steps: status, duration, attempts, tokens, retries."""
    from podium.observability.trace import build_trace, render_trace, trace_to_dicts

    with usage_errors():
        record, steps, events = _load_run(store, run_id, events=True)
    roots = build_trace(steps, events)
    if json_out:
        typer.echo(render.dumps({"run": render.run_dict(record), "steps": trace_to_dicts(roots)}))
    else:
        render.console().print(render_trace(roots, record))


def _load_run(
    store_url: str | None, run_id: str, *, events: bool
) -> tuple[RunRecord, list[StepRecord], list[Event]]:
    st = make_store(store_url)
    if store_is_absent(st):
        raise UnknownRunError(run_id)

    async def job(rt: Runtime) -> tuple[RunRecord, list[StepRecord], list[Event]]:
        record = await rt.get_run(run_id)
        return record, await rt.steps(run_id), (await rt.events(run_id) if events else [])

    return _read(st, job)


def _status(value: str) -> RunStatus:
    try:
        return RunStatus(value.lower())
    except ValueError:
        choices = ", ".join(s.value for s in RunStatus)
        raise UsageError(f"unknown status {value!r}: use one of {choices}") from None


def main() -> None:
    """The `podium` console script."""
    _project_last()
    app()


def _project_last() -> None:
    """`python -m podium` puts the working directory first on `sys.path`, where a file of
    the project (a `json.py`, a `yaml/`) would shadow the installed module a target needs:
    move it last, after installed packages."""
    cwd = os.getcwd()
    here = [p for p in sys.path if p in ("", cwd)]
    if here:
        sys.path[:] = [p for p in sys.path if p not in ("", cwd)] + here


# Commands kept in their own modules register themselves on `app`.
from podium.cli import a2a as _a2a  # noqa: E402, F401
from podium.cli import audit as _audit  # noqa: E402, F401
from podium.cli import batch as _batch  # noqa: E402, F401
from podium.cli import cost as _cost  # noqa: E402, F401
from podium.cli import inbox as _inbox  # noqa: E402, F401
from podium.cli import mcp as _mcp  # noqa: E402, F401
from podium.cli import observe as _observe  # noqa: E402, F401
from podium.cli import ops as _ops  # noqa: E402, F401
from podium.cli import serve as _serve  # noqa: E402, F401
from podium.cli import spec as _spec  # noqa: E402, F401

if __name__ == "__main__":
    # Run as a script, this file is `__main__`; the commands registered by other modules are
    # on the imported `podium.cli.app`, so start that one.
    from podium.cli.app import main as _main

    _main()
