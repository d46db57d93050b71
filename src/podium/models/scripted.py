"""`ScriptedModel`: a deterministic model for tests and demos that fails loudly.

    model = ScriptedModel([
        tool_call("lookup", {"order_id": 3}),   # turn 1: ask for a tool
        {"refund": True, "amount": 12.5},       # turn 2: structured output
    ])
    ...
    model.assert_consumed()

Each planned response is a `ModelResponse`, a `str` (text), a `dict` (structured output), a
`ToolCall` or list of them, or an exception to raise. Or pass a function
`(messages, tools, output_schema) -> one of those` (sync or async) to answer from the request.
Every request is recorded in `.calls`; a call past the end of the script raises at once, and
`assert_consumed()` catches responses a test planned but the code never asked for.

`stream(...)` answers the same way, its text in pieces of `chunk` characters (default 16)
and then the whole response, so streaming code can be tested without a provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from podium.core.records import Usage
from podium.core.serde import dumps
from podium.core.tools import ToolSpec
from podium.errors import ScriptExhaustedError, UsageError, renamed
from podium.models.base import (
    Message,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    OutputSchema,
    ToolCall,
)

Planned: TypeAlias = (
    ModelResponse
    | str
    | dict[str, Any]
    | ToolCall
    | Sequence[ToolCall]
    | BaseException
    | type[BaseException]
)
ScriptFunction: TypeAlias = Callable[
    [Sequence[Message], Sequence[ToolSpec], OutputSchema | None], "Planned | Awaitable[Planned]"
]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One request a `ScriptedModel` received, kept for assertions."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    output_schema: OutputSchema | None
    settings: ModelSettings | None

    @property
    def last_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None


def tool_call(name: str, arguments: dict[str, Any] | None = None, /, **kwargs: Any) -> ToolCall:
    """A planned tool call; `ScriptedModel` gives it a deterministic id if it has none."""
    return ToolCall("", name, {**(arguments or {}), **kwargs})


class ScriptedModel:
    """A `Model` that answers from a script (or a function) instead of a provider."""

    def __init__(
        self,
        script: Sequence[Planned] | ScriptFunction,
        *,
        name: str = "scripted",
        usage: Usage | Sequence[Usage | None] | None = None,
        chunk: int = 16,
    ) -> None:
        if not isinstance(chunk, int) or chunk < 1:
            raise UsageError(
                f"scripted model {name!r}: chunk must be a positive int, got {chunk!r}"
            )
        self.name = name
        self.chunk = chunk
        self.calls: list[ModelRequest] = []
        self._fn: ScriptFunction | None = None
        self._script: list[Planned] = []
        if callable(script) and not isinstance(script, Sequence):
            self._fn = script
        elif isinstance(script, Sequence) and not isinstance(script, str):
            self._script = list(script)
            for i, item in enumerate(self._script, 1):
                _check_planned(self.name, i, item)
        else:
            raise UsageError(
                f"scripted model {name!r}: script must be a list of responses or a function, "
                f"got {type(script).__name__}"
            )
        if isinstance(usage, Sequence) and self._fn is None and len(usage) != len(self._script):
            raise UsageError(
                f"scripted model {name!r}: {len(usage)} usages for {len(self._script)} responses"
            )
        self._usage = usage

    @classmethod
    def echo(cls, name: str = "scripted") -> ScriptedModel:
        """A model that answers every request with the last user message, for demos that
        run without a provider configured."""

        def answer(
            messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
        ) -> str:
            users = [m.content for m in messages if m.role == "user"]
            return f"(scripted echo) {users[-1] if users else ''}"

        return cls(answer, name=name)

    @property
    def unconsumed(self) -> int:
        """How many planned responses nobody has asked for yet (0 for a function)."""
        return 0 if self._fn is not None else len(self._script) - len(self.calls)

    def assert_consumed(self) -> None:
        """Fail when the code under test asked for fewer answers than the script planned."""
        left = self.unconsumed
        if left:
            nxt = self._script[len(self.calls)]
            raise AssertionError(
                f"scripted model {self.name!r}: {left} planned response(s) never requested "
                f"(asked {len(self.calls)} time(s); next unused: {nxt!r})"
            )

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        return await self._answer(messages, tools, output_schema, settings)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """The planned answer's text in `chunk`-character deltas, then the whole answer."""
        response = await self._answer(messages, tools, output_schema, settings)
        text = response.text
        for start in range(0, len(text), self.chunk):
            yield ModelDelta(text[start : start + self.chunk])
            await asyncio.sleep(0)  # let the consumer see each piece, as a provider would
        yield ModelDone(response)

    async def _answer(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output_schema: OutputSchema | None,
        settings: ModelSettings | None,
    ) -> ModelResponse:
        number = len(self.calls) + 1
        self.calls.append(ModelRequest(tuple(messages), tuple(tools), output_schema, settings))
        planned = await self._next(number, messages, tools, output_schema)
        if isinstance(planned, BaseException):
            raise planned
        if isinstance(planned, type) and issubclass(planned, BaseException):
            raise planned(f"scripted model {self.name!r}: planned failure at call #{number}")
        response = _to_response(self.name, number, planned)
        usage = self._usage_for(number, messages, response)
        return dataclasses.replace(response, usage=usage, model=response.model or self.name)

    async def _next(
        self,
        number: int,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output_schema: OutputSchema | None,
    ) -> Any:
        if self._fn is not None:
            result = self._fn(messages, tools, output_schema)
            return await result if inspect.isawaitable(result) else result
        if number > len(self._script):
            last = messages[-1] if messages else None
            shown = "" if last is None else f"; last message ({last.role}): {last.content[:80]!r}"
            raise ScriptExhaustedError(
                f"scripted model {self.name!r}: call #{number} but the script plans only "
                f"{len(self._script)} response(s){shown}"
            )
        return self._script[number - 1]

    def _usage_for(
        self, number: int, messages: Sequence[Message], response: ModelResponse
    ) -> Usage:
        planned = self._usage
        if isinstance(planned, Sequence):
            planned = planned[number - 1] if number <= len(planned) else None
        if planned is not None:
            return planned
        if response.usage.requests or response.usage.total_tokens:
            return response.usage
        return count_usage(messages, response)

    def __repr__(self) -> str:
        return f"ScriptedModel({self.name!r}, calls={len(self.calls)})"


def _check_planned(name: str, number: int, item: Any) -> None:
    ok = isinstance(item, ModelResponse | str | dict | ToolCall | BaseException) or (
        isinstance(item, type) and issubclass(item, BaseException)
    )
    if not ok and isinstance(item, Sequence):
        ok = bool(item) and all(isinstance(c, ToolCall) for c in item)
    if not ok:
        raise UsageError(
            f"scripted model {name!r}: response #{number} is {item!r}; expected a "
            "ModelResponse, str, dict, ToolCall, list of ToolCalls or an exception"
        )


def _to_response(name: str, number: int, planned: Any) -> ModelResponse:
    if isinstance(planned, ModelResponse):
        return planned
    if isinstance(planned, str):
        return ModelResponse(text=planned, finish_reason="stop")
    if isinstance(planned, dict):
        return ModelResponse(text=dumps(planned), output=planned, finish_reason="stop")
    calls = [planned] if isinstance(planned, ToolCall) else planned
    _check_planned(name, number, calls)
    filled = tuple(
        c if c.id else ToolCall(f"call_{number}_{i}", c.name, c.arguments)
        for i, c in enumerate(calls)
    )
    return ModelResponse(tool_calls=filled, finish_reason="tool_calls")


def _words(text: str) -> int:
    return len(text.split())


def count_usage(messages: Sequence[Message], response: ModelResponse) -> Usage:
    """Deterministic stand-in for token counts: words in and out (at least one each)."""
    seen = sum(
        _words(m.content) + sum(_words(dumps(c.arguments)) for c in m.tool_calls) for m in messages
    )
    said = _words(response.text) + sum(
        _words(c.name) + _words(dumps(c.arguments)) for c in response.tool_calls
    )
    if response.output is not None and not response.text:
        said += _words(dumps(response.output))
    return Usage(max(1, seen), max(1, said), 1)


__getattr__ = renamed(__name__, ["ScriptExhausted"])
