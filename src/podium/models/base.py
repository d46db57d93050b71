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


OutputMode = Literal["auto", "json_schema", "json_object_schema", "json_object", "prompt"]
"""How a model is asked for structured output, strongest first:

- `json_schema`: `response_format={"type": "json_schema", ...}` (OpenAI, vLLM, LM Studio);
- `json_object_schema`: `{"type": "json_object", "schema": ...}` (llama.cpp's server);
- `json_object`: `{"type": "json_object"}`, the schema told in the prompt (Ollama, older APIs);
- `prompt`: the schema told in the prompt only, for servers that take no `response_format`;
- `auto` (the default): start with the strongest and step down when a server refuses one.
"""

OUTPUT_MODES: tuple[OutputMode, ...] = (
    "json_schema",
    "json_object_schema",
    "json_object",
    "prompt",
)

ToolChoice = str
"""`"auto"`, `"required"`, `"none"`, or the name of one tool the model must call."""


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Per-request settings. `None` leaves a field to the provider (or to the model's own
    settings, which an agent's settings are laid over field by field).

    `tool_choice` forces (`"required"`, a tool's name) or forbids (`"none"`) tool calls; an
    `LLMAgent` drops a forcing choice once a tool has run, so it cannot loop. `output_mode`
    picks how structured output is asked for (see `OutputMode`).
    """

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    tool_choice: ToolChoice | None = None
    output_mode: OutputMode | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def over(self, base: ModelSettings | None) -> ModelSettings:
        """These settings laid over `base`: a field set here wins, an unset one is inherited."""
        if base is None:
            return self
        values = {f: getattr(self, f) for f in _SCALARS}
        for f, mine in values.items():
            if mine is None:
                values[f] = getattr(base, f)
        return ModelSettings(**values, extra={**base.extra, **self.extra})

    @property
    def forces_tool(self) -> bool:
        """Whether `tool_choice` makes the model call a tool (which one, or any)."""
        return self.tool_choice not in (None, "auto", "none")


_SCALARS = ("temperature", "max_tokens", "seed", "tool_choice", "output_mode")


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
