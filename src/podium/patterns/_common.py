"""Small checks several patterns share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator

from podium.agents.base import is_agent
from podium.errors import UsageError

VERDICT_FIELDS = ("done", "approved", "stop", "passed")


def _verdict(value: Any) -> Any:
    """A verdict as a bool: a bool itself, or the first bool field it has among `done`,
    `approved`, `stop`, `passed` (a critic's `Review(approved=...)`, a dict)."""
    if isinstance(value, bool):
        return value
    for name in VERDICT_FIELDS:
        found = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
        if isinstance(found, bool):
            return found
    raise ValueError(
        "a loop condition must give a bool or a verdict with a bool field "
        f"({', '.join(VERDICT_FIELDS)})"
    )


Verdict = Annotated[bool, BeforeValidator(_verdict)]
"""What a condition (a Loop's `until`, an Adaptive's `success`) answers, read as a bool."""


def named_agents(
    kind: str, name: str, agents: Mapping[str, Any] | Sequence[Any], role: str
) -> dict[str, Any]:
    """A pattern's members by name, from a dict or a list of agents; a `UsageError` naming
    the pattern and the member for anything that is not an agent, unnamed or named twice."""
    where = f"{kind} {name!r}"
    pairs: list[tuple[Any, Any]]
    if isinstance(agents, Mapping):
        pairs = list(agents.items())
    elif isinstance(agents, Sequence) and not isinstance(agents, str):
        pairs = [(getattr(a, "name", None), a) for a in agents]
    else:
        plural = role[:-1] + "ies" if role.endswith("y") else role + "s"
        raise UsageError(f"{where}: {plural} must be a dict or a list of agents")
    if not pairs:
        raise UsageError(f"{where} needs at least one {role}")
    table: dict[str, Any] = {}
    for key, member in pairs:
        if not is_agent(member):
            raise UsageError(f"{where}: {role} {key!r} ({member!r}) is not an agent")
        if not isinstance(key, str) or not key.strip():
            raise UsageError(f"{where}: {role} name {key!r} must be a non-empty string")
        if key in table:
            raise UsageError(f"{where}: {role} {key!r} is named twice")
        table[key] = member
    return table


def shared_type(agents: Sequence[Any], attr: str) -> Any:
    """The `input_type` (or `output_type`) every member declares, or `Any` when they differ.

    A pattern that hands its input unchanged to its members (a Parallel's branches, a
    Router's routes) takes what they all take; one whose output is a member's output gives
    what they all give. Declaring it lets a caller that looks at types see through the
    pattern: a Supervisor hands a worker made of `str` agents the assignment's text.
    """
    types = [getattr(a, attr, Any) for a in agents]
    first = types[0]
    return first if all(t == first for t in types[1:]) else Any
