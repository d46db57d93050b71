"""How the CLI shows runs: JSON for tools, rich tables for people.

JSON is printed with plain `print` (rich would wrap long lines at the terminal width and
break it); tables and trees go through one rich console that drops colour when stdout is not
a terminal.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from podium.core.records import Event, RunRecord, RunStatus, StepRecord
from podium.core.serde import to_plain
from podium.errors import Suspended, format_spend
from podium.runtime.privacy import scrub_secrets, scrub_text
from podium.runtime.runtime import RunResult

_STATUS_STYLE = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "waiting": ("⏸", "yellow"),
    "running": ("…", "cyan"),
    "cancelled": ("✗", "dim"),
}


@cache
def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal:  # piped: do not cut tables to 80 columns
        out.width = max(out.width, 160)
    return out


def dumps(value: Any) -> str:
    """JSON for people, secrets masked (what runs store has them masked already; this
    also covers a value straight from a run in this process, and older stores)."""
    return json.dumps(to_plain(scrub_secrets(value)), indent=2, ensure_ascii=False)


def step_dict(step: StepRecord) -> dict[str, Any]:
    return {
        "key": step.key,
        "agent": step.agent,
        "kind": step.kind,
        "status": str(step.status),
        "attempt": step.attempt,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "duration": step.duration,
        "usage": None if step.usage is None else step.usage.to_dict(),
        "error": scrub_text(step.error),
        "output": to_plain(scrub_secrets(step.output)),
    }


def run_dict(run: RunRecord, steps: Sequence[StepRecord] | None = None) -> dict[str, Any]:
    """A run as JSON: what `podium show --json` and `podium runs --json` print."""
    data = run.to_dict()
    data["input"] = to_plain(scrub_secrets(run.input))
    data["output"] = to_plain(scrub_secrets(run.output))
    data["error"] = scrub_text(run.error)
    data["duration"] = (run.updated_at - run.created_at) if run.created_at else None
    if steps is not None:
        data["steps"] = [step_dict(s) for s in steps]
    return data


def summary_dict(run: RunRecord) -> dict[str, Any]:
    """A run as `podium runs --json` lists it: no input, no output (`podium show` has them)."""
    data = run.to_dict()
    del data["input"], data["output"]
    data["duration"] = (run.updated_at - run.created_at) if run.created_at else None
    return data


def _status(status: str) -> str:
    mark, color = _STATUS_STYLE.get(status, ("?", "white"))
    return f"[{color}]{mark} {status}[/]"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def _value(value: Any) -> str:
    return scrub_text(value) or "" if isinstance(value, str) else dumps(value)


def money(usd: float) -> str:
    """Dollars as the CLI shows them: four decimals, since one call costs fractions of a cent."""
    return f"${usd:,.4f}"


def budget_warning(event: Event) -> str | None:
    """The warning line for a `budget.alert` event (None for any other event)."""
    if event.kind != "budget.alert" or not event.data:
        return None
    d = event.data
    limit = str(d.get("limit"))
    spent, maximum = float(d.get("spent", 0)), float(d.get("max", 0))
    return (
        f"warning: {d.get('scope')} budget: {limit} at {float(d.get('fraction', 0)):.0%} "
        f"({format_spend(limit, spent)} of {format_spend(limit, maximum)}) at {d.get('step')}"
    )


def print_result(result: RunResult, agent: str, store: str | None = None) -> None:
    """The end of `podium run` / `podium resume`: status, run id, then output or error, or
    for a waiting run what it waits for and the commands that answer it (with `--store`
    when the user named one)."""
    out = console()
    tokens = result.usage.total_tokens
    usd = result.usage.usd
    out.print(
        f"{_status(str(result.status))}  run [bold]{escape(result.run_id)}[/]  "
        f"agent {escape(agent)}"
        + (f"  [magenta]{tokens} tokens[/]" if tokens else "")
        + (f"  [magenta]{money(usd)}[/]" if usd else "")
    )
    if result.status == RunStatus.COMPLETED:
        print(_value(result.output))
    elif result.status == RunStatus.WAITING:
        out.print(f"waiting: {escape(result.error or '')}")
        where = "" if store is None else f" --store {shlex.quote(store)}"
        for line in waiting_hints(result):
            out.print(escape(line + where))
    else:
        out.print(f"[red]{escape(scrub_text(result.error) or 'no error recorded')}[/]")


def waiting_hints(result: RunResult) -> list[str]:
    """The commands that answer what a waiting run asks: approve or reject an approval,
    answer a question (or a triage), settle an effect of unknown outcome."""
    rid = result.run_id
    error = result.exception
    request = error.payload if isinstance(error, Suspended) else None
    kind = request.get("kind") if isinstance(request, dict) else None
    if kind == "approval":
        lines = [
            f"approve:  podium approve {rid}   (--edit JSON to change what it proposes)",
            f"reject:   podium reject {rid} --comment WHY",
        ]
    elif kind == "effect_unknown":
        lines = [
            f"it happened:     podium answer {rid} JSON   (JSON: what it returned)",
            f"it did not:      podium approve {rid}   (runs it)",
            f"neither, stop:   podium reject {rid} --comment WHY",
        ]
    else:
        lines = [f"answer:   podium answer {rid} JSON"]
    return [*lines, "see all that waits: podium inbox"]


def print_runs(runs: Sequence[RunRecord]) -> None:
    if not runs:
        console().print("no runs")
        return
    table = Table(box=None, header_style="bold")
    for column in ("run", "agent", "status", "started", "duration", "tokens", "cost"):
        table.add_column(column, no_wrap=True, justify="right" if column == "cost" else "left")
    table.add_column("error", overflow="ellipsis", no_wrap=True, max_width=60)
    for r in runs:
        duration = r.updated_at - r.created_at if r.created_at else 0.0
        table.add_row(
            escape(r.run_id),
            escape(r.agent),
            _status(str(r.status)),
            _when(r.created_at),
            f"{duration:.2f}s",
            str(r.usage.total_tokens or ""),
            money(r.usage.usd) if r.usage.usd else "",
            escape((r.error or "")[:60]),
        )
    console().print(table)


def print_run(run: RunRecord, steps: Sequence[StepRecord]) -> None:
    out = console()
    out.print(f"run      [bold]{escape(run.run_id)}[/]  {_status(str(run.status))}")
    out.print(f"agent    {escape(run.agent)}")
    out.print(f"target   {escape(run.target or '-')}")
    out.print(f"started  {_when(run.created_at)}   updated {_when(run.updated_at)}")
    usage = run.usage
    out.print(
        f"usage    {usage.input_tokens} in + {usage.output_tokens} out tokens, "
        f"{usage.requests} requests, {money(usage.usd)}"
    )
    out.print("input", style="bold")
    print(_value(to_plain(run.input)))
    if run.output is not None:
        out.print("output", style="bold")
        print(_value(to_plain(run.output)))
    if run.error:
        out.print(f"[bold]error[/]  [red]{escape(run.error)}[/]")
    out.print(f"[bold]steps[/]  {len(steps)} (see `podium trace {escape(run.run_id)}`)")
