"""Reading the YAML and JSON files people hand podium (workflows, price tables, tier tables).

Aliases let a few hundred bytes of YAML describe a billion nodes (or an infinite one), and
each nesting level costs Python stack in the YAML composer, so every YAML text is first
checked from its event stream alone, before anything is composed or expanded: a hostile file
costs time and memory in proportion to its own length. Real files stay far below the bounds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.errors import UsageError

if TYPE_CHECKING:
    import yaml

MAX_NODES = 100_000
MAX_DEPTH = 300


def _fast_loader() -> Any:
    """libyaml's safe loader where PyYAML has it: PyYAML's own scanner is quadratic in flow
    nesting. Imported on first use: `import podium` does not pay for YAML."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class HostileYAMLError(ValueError):
    """YAML refused before it is loaded; `line` is where (1-based), when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def check_yaml_size(text: str) -> None:
    """Refuse recursive aliases, more than `MAX_NODES` nodes once aliases are expanded, and
    nesting deeper than `MAX_DEPTH` (`HostileYAMLError`). Bad syntax passes: the loader reports it,
    in its own words and with its line."""
    import yaml

    try:
        _count(yaml.parse(text, Loader=_fast_loader()))
    except yaml.YAMLError:
        return


def read_table(path: str | Path, what: str, key: str) -> Any:
    """The data of a JSON (`.json`) or YAML file, unwrapped from a single top-level `key:`;
    a `UsageError` naming the file (as `what`) when it cannot be read, is hostile, or does not
    parse."""
    import yaml

    file = Path(path)
    where = f"{what} {str(file)!r}"
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise UsageError(f"cannot read {where}: {reason}") from None
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            check_yaml_size(text)
            data = yaml.load(text, Loader=_fast_loader())
    except HostileYAMLError as e:
        at = "" if e.line is None else f" (line {e.line})"
        raise UsageError(f"{where} is refused{at}: {e.message}") from None
    except (ValueError, yaml.YAMLError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise UsageError(f"{where} does not parse: {e}") from None
    if isinstance(data, Mapping) and set(data) == {key}:
        data = data[key]
    return data


@dataclass(slots=True)
class _Open:
    """A collection whose end the size check has not reached yet."""

    anchor: str | None
    size: int = 1


def _count(events: Iterator[yaml.Event]) -> None:
    import yaml

    sizes: dict[str, int] = {}  # expanded node count of each anchored node seen so far
    stack: list[_Open] = []
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Open(event.anchor))
            if len(stack) > MAX_DEPTH:
                _refuse(event, f"the YAML is nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, yaml.AliasEvent):
            if any(o.anchor == event.anchor for o in stack):
                _refuse(event, f"recursive alias *{event.anchor} (it contains itself)")
            # an alias to an anchor not seen yet counts 1: the composer then says it is unknown
            size, anchor = sizes.get(str(event.anchor), 1), None
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            size, anchor = done.size, done.anchor
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        else:  # stream and document boundaries
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1].size += size
            if stack[-1].size > MAX_NODES:
                _refuse(event, f"more than {MAX_NODES} nodes once its aliases are expanded")


def _refuse(event: yaml.Event, message: str) -> None:
    raise HostileYAMLError(message, None if event.start_mark is None else event.start_mark.line + 1)
