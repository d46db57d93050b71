"""What a run cost.

podium cost RUN            totals, then tables by agent, by model and by step
podium cost RUN --json     the same as JSON; its object has `usd` and `tokens` totals
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from podium.cli import render
from podium.cli.app import (
    JsonOpt,
    RunArg,
    StoreOpt,
    _read,
    app,
    make_store,
    store_is_absent,
    usage_errors,
)
from podium.errors import UnknownRunError, format_spend
from podium.observability.cost import CostLine, CostReport
from podium.runtime.runtime import Runtime

money = render.money


@app.command()
def cost(run_id: RunArg, store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """What a run cost: tokens and dollars by agent, by model and by step (priced when the
    run ran), its budget and the alerts it raised."""
    with usage_errors():
        st = make_store(store)
        if store_is_absent(st):
            raise UnknownRunError(run_id)
        report = _read(st, lambda rt: _report(rt, run_id))
    if json_out:
        typer.echo(render.dumps(report.to_dict()))
    else:
        print_cost(report)


async def _report(rt: Runtime, run_id: str) -> CostReport:
    return await rt.cost(run_id)


def print_cost(report: CostReport) -> None:
    out = render.console()
    t = report.total
    u = t.usage
    cached = f", {u.cache_read_tokens:,} cached" if u.cache_read_tokens else ""
    out.print(
        f"run [bold]{escape(report.run_id)}[/]  {escape(report.agent)}  "
        f"{render._status(report.status)}  [bold magenta]{money(t.usd)}[/]  "
        f"{t.tokens:,} tokens ({u.input_tokens:,} in, {u.output_tokens:,} out{cached})  "
        f"{_count(t.model_calls, 'model call')}  {_count(t.tool_calls, 'tool call')}"
    )
    if report.budget:
        limits = ", ".join(
            f"{k} {format_spend(k, v)}" for k, v in report.budget.items() if k != "alert_at"
        )
        alert_at = report.budget.get("alert_at", 0.7)
        out.print(f"budget   {escape(limits)} (alert at {alert_at:.0%})")
    if report.cache_hits:
        out.print(
            f"cache    [cyan]{_count(report.cache_hits, 'hit')} saved {money(report.saved_usd)}[/]"
            f" ({report.saved_tokens:,} tokens)"
        )
    for alert in report.alerts:
        out.print(_alert_line(alert))
    if not report.steps:
        out.print("no model or tool calls")
        return
    out.print(_table("by agent", "agent", report.by_agent, models=False))
    out.print(_table("by model", "model", report.by_model, models=True))
    out.print(_steps(report.steps))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _alert_line(alert: dict[str, Any]) -> str:
    limit = str(alert.get("limit"))
    spent = format_spend(limit, float(alert.get("spent", 0)))
    maximum = format_spend(limit, float(alert.get("max", 0)))
    where = escape(str(alert.get("step", "")))
    scope = escape(str(alert.get("scope", "")))
    if alert.get("kind") == "budget.exceeded":
        return f"[red]✗ {scope} budget exhausted: {limit} {spent} of {maximum}; {where} refused[/]"
    share = float(alert.get("fraction", 0))
    return f"[yellow]⚠ {scope} budget: {limit} at {share:.0%} ({spent} of {maximum}) at {where}[/]"


def _table(title: str, first: str, lines: list[CostLine], *, models: bool) -> Table:
    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    table.add_column(first)
    heads = (
        ("calls", "in", "out", "cached", "usd")
        if models
        else ("model calls", "tool calls", "tokens", "usd")
    )
    for head in heads:
        table.add_column(head, justify="right")
    for line in lines:
        u = line.usage
        cells = (
            (
                f"{line.model_calls}",
                f"{u.input_tokens:,}",
                f"{u.output_tokens:,}",
                f"{u.cache_read_tokens:,}",
            )
            if models
            else (f"{line.model_calls}", f"{line.tool_calls}", f"{line.tokens:,}")
        )
        table.add_row(escape(line.name), *cells, money(line.usd))
    return table


def _steps(lines: list[CostLine]) -> Table:
    table = Table(title="by step", title_justify="left", box=None, header_style="bold")
    for head in ("step", "agent", "model", "status"):
        table.add_column(head, overflow="fold")
    for head in ("attempts", "tokens", "usd"):
        table.add_column(head, justify="right")
    for line in lines:
        attempts = line.model_calls or line.tool_calls
        table.add_row(
            escape(line.name),
            escape(line.agent),
            escape(line.model or ("(tool)" if line.kind == "tool" else "")),
            render._status(line.status) + (" [cyan]cached[/]" if line.cached else ""),
            str(attempts),
            f"{line.tokens:,}" if line.tokens else "",
            money(line.usd) if line.kind == "model" else "",
        )
    return table
