"""How `podium run --stream` shows a run as it happens: model text as it is written, with the
step tree beside it.

- On a terminal, `StreamView`: rich's `Live` draws the step tree (`ProgressView`) on the
  left and, on the right, the text of the model step that wrote last (its tail, as much as
  fits).
- Piped, `PlainStream`: plain text, written as it arrives: each model step's text under a
  `▸ STEP` line, and one line per step as it finishes, indented by depth.
- With `--json`, `JsonLines`: one JSON object per event (deltas included), one a line.

Each is fed the stream's events through `on_event`; none may block (the run does not wait
for the reader, but the reader should keep up).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from podium.cli.progress import ProgressView
from podium.core.records import Event
from podium.core.serde import to_plain
from podium.runtime.privacy import scrub_secrets
from podium.runtime.stream import DELTA

__all__ = ["JsonLines", "PlainStream", "StreamDisplay", "StreamView"]

_FINISHED = {
    "step.completed": "✓",
    "step.failed": "✗",
    "step.suspended": "⏸",
    "step.cancelled": "✗",
    "step.replayed": "↺",
}


class StreamDisplay(Protocol):
    def on_event(self, event: Event) -> None: ...


class _Texts:
    """The text each model step has streamed (its current attempt's), by step key."""

    def __init__(self) -> None:
        self.by_key: dict[str, str] = {}
        self.last: str | None = None

    def feed(self, event: Event) -> str | None:
        """The new text in `event`, if it is a delta; a retry forgets the step's text."""
        if event.kind == "step.retried":
            self.by_key.pop(event.key, None)
        if event.kind != DELTA or not event.data:
            return None
        text = str(event.data.get("text", ""))
        self.by_key[event.key] = self.by_key.get(event.key, "") + text
        self.last = event.key
        return text


class _Tail:
    """The last `height` lines of a text as laid out at the width it is given."""

    def __init__(self, text: Text, height: int) -> None:
        self.text = text
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.text, options.update(height=None), pad=False)
        for line in lines[-self.height :]:
            yield from line
            yield Segment.line()


class StreamView:
    """The live view: the step tree beside the text being written."""

    def __init__(self, text_lines: int = 20) -> None:
        self.steps = ProgressView()
        self.texts = _Texts()
        self.text_lines = text_lines

    def on_event(self, event: Event) -> None:
        self.texts.feed(event)
        self.steps.on_event(event)

    def __rich__(self) -> RenderableType:
        key = self.texts.last
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        if key is None:
            writing: RenderableType = Text("(no model text yet)", style="dim")
            title = "text"
        else:
            writing = _Tail(Text(self.texts.by_key.get(key, "").rstrip("\n")), self.text_lines)
            title = key
        grid.add_row(self.steps, Panel(writing, title=title, title_align="left", style="none"))
        return Group(grid)


class PlainStream:
    """Plain text for pipes and logs, written as the run goes."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.texts = _Texts()
        self.writing: tuple[str, int] | None = None  # the step and attempt being written

    def on_event(self, event: Event) -> None:
        text = self.texts.feed(event)
        if text is not None:
            if self.writing != (event.key, event.attempt):
                self._end_text()
                attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                self.out.write(f"▸ {event.key}{attempt}\n")
                self.writing = (event.key, event.attempt)
            self.out.write(text)
            self.out.flush()
            return
        mark = _FINISHED.get(event.kind)
        if mark is None:
            return
        if self.writing is not None and event.key == self.writing[0]:
            self._end_text()
        self.out.write(self._step_line(mark, event) + "\n")
        self.out.flush()

    def _end_text(self) -> None:
        if self.writing is not None:
            self.out.write("\n")
            self.writing = None

    @staticmethod
    def _step_line(mark: str, event: Event) -> str:
        depth = max(0, event.key.count("/") - 1)
        name = event.key.rsplit("/", 1)[-1]
        parts = ["  " * depth + f"{mark} {name}", event.kind.removeprefix("step.")]
        if event.duration is not None:
            parts.append(f"{event.duration:.2f}s")
        if event.usage is not None and event.usage.total_tokens:
            parts.append(f"{event.usage.total_tokens} tok")
        if event.kind == "step.failed" and event.data:
            parts.append(str(event.data.get("error", "")))
        return "  ".join(parts)

    def close(self) -> None:
        self._end_text()
        self.out.flush()


class JsonLines:
    """One JSON object per event, for programs reading the run as it goes."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def on_event(self, event: Event) -> None:
        # secrets masked (stored events have them masked already; a model's streamed text
        # is masked piece by piece, so a key cut across two pieces can pass: see security.md)
        data = scrub_secrets(to_plain(event.to_dict()))
        self.out.write(json.dumps(data, ensure_ascii=False) + "\n")
        self.out.flush()

    def write(self, value: Any) -> None:
        self.out.write(json.dumps(scrub_secrets(to_plain(value)), ensure_ascii=False) + "\n")
        self.out.flush()
