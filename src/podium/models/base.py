"""The vendor-neutral model interface: messages in, a `ModelResponse` out.

Providers live behind `Model`; nothing outside `podium.models` sees a vendor's wire format.
Messages are small frozen dataclasses so they are cheap to build and easy to journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from podium.runtime.records import ZERO_USAGE, Usage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to run a tool. `arguments` is already parsed from JSON."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls("assistant", content, tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        return cls("tool", content, (), tool_call_id, name)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: name, description and JSON Schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """Structured output: the model must answer with JSON matching `schema`."""

    name: str
    schema: dict[str, Any]
    strict: bool = True


def closed_schema(schema: dict[str, Any]) -> None:
    """A pydantic `json_schema_extra` hook: every property required and no others, as strict
    structured output wants. Validation in Python stays lenient (defaults still apply)."""
    props = schema.get("properties", {})
    for prop in props.values():
        prop.pop("default", None)  # strict providers reject `default`
    schema["required"] = list(props)
    schema["additionalProperties"] = False


@dataclass(frozen=True, slots=True)
class ModelSettings:
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A model's answer: text, tool calls, or (with an output schema) parsed JSON in `output`."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    output: Any = None
    usage: Usage = ZERO_USAGE
    model: str = ""
    finish_reason: str | None = None


@runtime_checkable
class Model(Protocol):
    """One required method. Raise `ModelResponseError` for a malformed answer, `ProviderError`
    for what may pass (429, 5xx, connection), `ModelError` for what will not (400, 401)."""

    name: str

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse: ...
