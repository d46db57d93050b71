"""The model-level streaming protocol: deltas, then one final response whose text they join to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from podium import ProviderError, UsageError
from podium.core.tools import ToolSpec
from podium.models.base import (
    Message,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    OutputSchema,
    StreamingModel,
    stream_response,
)
from podium.models.scripted import ScriptedModel, tool_call

HELLO = [Message.system("be brief"), Message.user("hello there")]


async def collect(events: AsyncIterator[ModelStreamEvent]) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    final: ModelResponse | None = None
    async for event in events:
        assert final is None, "nothing may follow the final response"
        if isinstance(event, ModelDelta):
            deltas.append(event.text)
        else:
            assert isinstance(event, ModelDone)
            final = event.response
    assert final is not None
    return deltas, final


async def test_scripted_model_streams_its_planned_text_in_chunks() -> None:
    model = ScriptedModel(["The quick brown fox jumps.", {"ok": True}, tool_call("look")], chunk=5)
    assert isinstance(model, StreamingModel)
    deltas, final = await collect(model.stream(HELLO))
    assert deltas == ["The q", "uick ", "brown", " fox ", "jumps", "."]
    assert "".join(deltas) == final.text == "The quick brown fox jumps."
    assert final.usage.requests == 1 and final.finish_reason == "stop"

    deltas, final = await collect(model.stream(HELLO))  # structured output streams its JSON
    assert "".join(deltas) == final.text == '{"ok":true}' and final.output == {"ok": True}

    deltas, final = await collect(model.stream(HELLO))  # a tool call has no text to stream
    assert deltas == [] and final.tool_calls[0].name == "look"
    assert len(model.calls) == 3
    model.assert_consumed()


async def test_scripted_stream_raises_planned_failures_and_checks_chunk() -> None:
    model = ScriptedModel([ProviderError("overloaded")])
    with pytest.raises(ProviderError, match="overloaded"):
        await collect(model.stream(HELLO))
    with pytest.raises(UsageError, match="chunk must be a positive int"):
        ScriptedModel(["x"], chunk=0)


class RespondOnly:
    """A model without the streaming ability."""

    name = "plain"

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        return ModelResponse(text="all at once", finish_reason="stop")


async def test_stream_response_falls_back_to_respond() -> None:
    model = RespondOnly()
    assert not isinstance(model, StreamingModel)
    deltas, final = await collect(stream_response(model, HELLO))
    assert deltas == ["all at once"] and final.text == "all at once"


async def test_stream_response_passes_a_stream_through() -> None:
    model = ScriptedModel(["abcdef"], chunk=2)
    deltas, final = await collect(
        stream_response(model, HELLO, settings=ModelSettings(max_tokens=3))
    )
    assert deltas == ["ab", "cd", "ef"] and final.text == "abcdef"
    assert model.calls[0].settings == ModelSettings(max_tokens=3)


class Broken:
    """Streams a delta, then stops without a final response; records whether it was closed."""

    name = "broken"

    def __init__(self) -> None:
        self.closed = False

    async def respond(self, messages: Sequence[Message], **kw: object) -> ModelResponse:
        raise AssertionError("not called")

    async def stream(self, messages: Sequence[Message], **kw: object) -> AsyncIterator[ModelDelta]:
        try:
            yield ModelDelta("half")
            yield ModelDelta(" an answer")
        finally:
            self.closed = True


async def test_a_stream_without_a_final_response_is_a_provider_error() -> None:
    model = Broken()
    seen: list[str] = []
    with pytest.raises(ProviderError, match="'broken': stream ended without a final response"):
        async for event in stream_response(model, HELLO):  # type: ignore[arg-type]
            assert isinstance(event, ModelDelta)
            seen.append(event.text)
    assert seen == ["half", " an answer"] and model.closed


async def test_stopping_early_closes_the_model_stream() -> None:
    model = Broken()
    events = stream_response(model, HELLO)  # type: ignore[arg-type]
    first = await anext(events)
    assert first == ModelDelta("half") and not model.closed
    await events.aclose()
    assert model.closed
