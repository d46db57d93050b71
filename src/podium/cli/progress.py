"""The live view of a run in a terminal: one row per step, fed by the run's events.

`ProgressView.on_event` is a runtime listener (cheap: it only updates a dict); rich's `Live`
calls `__rich__` a few times a second from its own thread to draw the current state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from podium.core.records import Event

__all__ = ["ProgressView"]

_DONE = {
    "step.completed": ("completed", "green", "✓"),
    "step.failed": ("failed", "red", "✗"),
    "step.suspended": ("waiting", "yellow", "⏸"),
    "step.cancelled": ("cancelled", "red", "✗"),
    "step.replayed": ("replayed", "dim", "↺"),
}


@dataclass(slots=True)
class _Row:
    key: str
    agent: str
    kind: str = "agent"
    status: str = "running"
    color: str = "cyan"
    mark: str = ""
    attempt: int = 1
    duration: float | None = None
    tokens: int = 0
    spinner: Spinner = field(default_factory=lambda: Spinner("dots", style="cyan"))


class ProgressView:
    """What a run is doing right now, as a table that grows as steps start."""

    def __init__(self, max_rows: int = 30) -> None:
        self.max_rows = max_rows
        self.rows: dict[str, _Row] = {}
        self.run_status = "running"
        self.usd = 0.0  # spent so far: every finished model step's cost, failed ones too
        self._t0 = time.perf_counter()
        self._t1: float | None = None

    def on_event(self, event: Event) -> None:
        kind = event.kind
        if kind.startswith("run."):
            if kind not in ("run.started", "run.resumed"):
                self.run_status = kind.removeprefix("run.")
                self._t1 = time.perf_counter()
            return
        if not kind.startswith("step."):
            return
        row = self.rows.get(event.key)
        if row is None:
            row = self.rows[event.key] = _Row(event.key, event.agent)
        if kind == "step.started":
            row.kind = str((event.data or {}).get("kind", "agent"))
        elif kind == "step.retried":
            row.attempt = event.attempt + 1
        elif kind in _DONE:
            row.status, row.color, row.mark = _DONE[kind]
            row.duration = event.duration
            if event.usage is not None:
                row.tokens = event.usage.total_tokens
                self.usd += event.usage.usd

    def __rich__(self) -> RenderableType:
        rows = list(self.rows.values())
        done = sum(1 for r in rows if r.status != "running")
        elapsed = (self._t1 or time.perf_counter()) - self._t0
        cost = f"  [magenta]${self.usd:,.4f}[/]" if self.usd else ""
        header = Text.from_markup(
            f"[bold]{escape(self.run_status)}[/]  {elapsed:.1f}s  "
            f"{done}/{len(rows)} steps finished{cost}"
        )
        table = Table.grid(padding=(0, 1))
        for _ in range(5):
            table.add_column()
        hidden = max(0, len(rows) - self.max_rows)
        for row in rows[hidden:]:
            table.add_row(*_cells(row))
        parts: list[RenderableType] = [header]
        if hidden:
            parts.append(Text(f"… {hidden} earlier steps", style="dim"))
        parts.append(table)
        return Group(*parts)


def _cells(row: _Row) -> tuple[RenderableType, ...]:
    depth = max(0, row.key.count("/") - 1)
    mark: RenderableType = row.spinner if row.status == "running" else Text(row.mark, row.color)
    name = Text("  " * depth + row.agent, style="bold" if depth == 0 else "")
    if row.kind != "agent":
        name.append(f" ({row.kind})", style="dim")
    status = Text(row.status, style=row.color)
    if row.attempt > 1:
        status.append(f" attempt {row.attempt}", style="yellow")
    duration = Text("" if row.duration is None else f"{row.duration:.2f}s", style="dim")
    tokens = Text(f"{row.tokens} tok" if row.tokens else "", style="magenta")
    return mark, name, status, duration, tokens
