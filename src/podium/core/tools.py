"""What a tool is to a model (`ToolSpec`, `closed_schema`) and where a tool call is in a run
(`ToolContext`): shared by models, tools and the runtime, so it lives below all three."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class _Run(Protocol):
    run_id: str


class _Step(Protocol):
    """The part of a door call a tool context reads."""

    @property
    def run(self) -> _Run: ...
    @property
    def key(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def input(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: name, description and JSON Schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


def closed_schema(schema: dict[str, Any]) -> None:
    """A pydantic `json_schema_extra` hook: every property required and no others, as strict
    structured output wants. Validation in Python stays lenient (defaults still apply)."""
    props = schema.get("properties", {})
    for prop in props.values():
        prop.pop("default", None)  # strict providers reject `default`
    schema["required"] = list(props)
    schema["additionalProperties"] = False


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where a tool call is in the run. `idempotency_key` is stable across retries and
    resumes of the same step, so a side effect can be deduplicated by the world outside."""

    run_id: str
    step: str
    idempotency_key: str
    attempt: int
    args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, call: _Step) -> ToolContext:
        """The context of a tool call: the key is the same on every retry and resume."""
        run_id = call.run.run_id
        return cls(run_id, call.key, f"{run_id}:{call.key}", call.attempt, call.input or {})
