"""The vendor-neutral model interface: messages in, a `ModelResponse` out.

Providers live behind `Model`; nothing outside `podium.models` sees a vendor's wire format.
Messages are small frozen dataclasses so they are cheap to build and easy to journal.

Streaming is an optional ability (`StreamingModel`): a model that can stream has an async
generator `stream(...)`, with the same arguments as `respond`, that yields `ModelDelta`s as
text arrives and ends with exactly one `ModelDone` carrying the whole `ModelResponse`. The
deltas joined are the final response's `text` (for structured output, its JSON), so a
caller may show the deltas and journal the final response without the two disagreeing.
Errors are raised from the generator as `respond` raises them, before or after some deltas;
a caller that stops early closes the generator, which must then release what it holds.
Models without `stream` simply lack it: `stream_response` falls back to `respond`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeAlias, runtime_checkable

from podium.core.records import ZERO_USAGE, Usage
from podium.core.tools import ToolSpec
from podium.errors import ProviderError

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
class OutputSchema:
    """Structured output: the model must answer with JSON matching `schema`."""

    name: str
    schema: dict[str, Any]
    strict: bool = True


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


@dataclass(frozen=True, slots=True)
class ModelDelta:
    """A piece of the answer's text, as the model produces it."""

    text: str
    kind: ClassVar[Literal["delta"]] = "delta"


@dataclass(frozen=True, slots=True)
class ModelDone:
    """The last event of a stream: the whole answer, as `respond` would have returned it."""

    response: ModelResponse
    kind: ClassVar[Literal["done"]] = "done"


ModelStreamEvent: TypeAlias = ModelDelta | ModelDone


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A model that can also stream its answer (see the module docstring for the contract)."""

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]: ...


async def stream_response(
    model: Model,
    messages: Sequence[Message],
    *,
    tools: Sequence[ToolSpec] = (),
    output_schema: OutputSchema | None = None,
    settings: ModelSettings | None = None,
) -> AsyncGenerator[ModelStreamEvent, None]:
    """Stream any model: its own `stream` when it has one, else its `respond` answer as one
    delta. Either way the events end with one `ModelDone`; a stream that stops without it
    is a `ProviderError` (the connection, or the model, broke off)."""
    if not isinstance(model, StreamingModel):
        response = await model.respond(
            messages, tools=tools, output_schema=output_schema, settings=settings
        )
        if response.text:
            yield ModelDelta(response.text)
        yield ModelDone(response)
        return
    events = model.stream(messages, tools=tools, output_schema=output_schema, settings=settings)
    try:
        async for event in events:
            yield event
            if isinstance(event, ModelDone):
                return
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    raise ProviderError(f"model {model.name!r}: stream ended without a final response")
