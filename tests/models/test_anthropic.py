"""AnthropicModel on the wire: a real HTTP server on loopback answers with the Messages API's
documented bodies and server-sent events, and records what the SDK sent."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import ModelError, ModelResponseError, ProviderError, Retry, Runtime, Usage, UsageError
from podium.agents.llm import LLMAgent
from podium.core.tools import ToolSpec
from podium.models.anthropic import DEFAULT_MAX_TOKENS, AnthropicModel
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

MODEL = "claude-sonnet-4-5-20250929"


@dataclass
class Stream:
    """A reply as server-sent events; `hold` pauses after that many events until `go` is set
    (`held` says the server has not gone past that point)."""

    events: list[tuple[str, dict[str, Any]]]
    hold: int | None = None
    go: threading.Event = field(default_factory=threading.Event)
    passed: threading.Event = field(default_factory=threading.Event)

    @property
    def held(self) -> bool:
        return not self.passed.is_set()


class FakeAnthropic:
    """Queued replies out (JSON bodies or event streams), recorded requests in."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, Any]] = deque()
        self.streams: list[Stream] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def reply(self, body: Any, status: int = 200) -> None:
        self.replies.append((status, body))
        if isinstance(body, Stream):
            self.streams.append(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                status, body = fake.replies.popleft() if fake.replies else (500, api_error())
                if isinstance(body, Stream):
                    self._stream(body)
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, stream: Stream) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes
                for i, (event, data) in enumerate(stream.events):
                    if i == stream.hold:
                        stream.go.wait(10)
                        stream.passed.set()
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# documented bodies ---------------------------------------------------------------------------
def message(
    content: list[dict[str, Any]],
    stop: str = "end_turn",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Message object as the Messages API reference documents it."""
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 12,
            "output_tokens": 6,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def api_error(kind: str = "api_error", text: str = "Internal server error") -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def start(usage: dict[str, int] | None = None) -> tuple[str, dict[str, Any]]:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": MODEL,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage
                or {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
    )


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def text_delta(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": value},
        },
    )


def json_delta(index: int, part: str) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": part},
        },
    )


def block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def finish(stop: str, output_tokens: int = 15) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


PING = ("ping", {"type": "ping"})


def text_stream(*parts: str, stop: str = "end_turn") -> list[tuple[str, dict[str, Any]]]:
    return [
        start(),
        block_start(0, text("")),
        PING,
        *(text_delta(0, p) for p in parts),
        block_stop(0),
        *finish(stop),
    ]


# fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.thread.start()
    yield fake
    for stream in fake.streams:  # a stream still held must not hold the server's thread
        stream.go.set()
    fake.server.shutdown()
    fake.server.server_close()
    fake.thread.join(5)


@pytest.fixture
async def model(server: FakeAnthropic) -> AsyncIterator[AnthropicModel]:
    m = AnthropicModel(MODEL, base_url=server.url, api_key="sk-ant-test")
    yield m
    await m.aclose()


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


def sent_key(request: dict[str, Any]) -> str | None:
    """The API key a request carried: `x-api-key`, or a bearer token in newer SDKs."""
    headers = request["headers"]
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)


HELLO = [Message.system("You are terse."), Message.user("Say hi.")]
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
VERDICT = OutputSchema(
    "Verdict",
    {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}},
        "required": ["ok", "why"],
        "additionalProperties": False,
    },
)


# messages ------------------------------------------------------------------------------------
async def test_text_answer_request_shape_and_usage_with_cache_tokens(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(
        message(
            [text("Hi.")],
            usage={
                "input_tokens": 10,
                "output_tokens": 3,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1800,
            },
        )
    )
    response = await model.respond(HELLO, settings=ModelSettings(temperature=0.0, seed=7))
    (req,) = server.requests
    assert req["path"] == "/v1/messages"
    assert sent_key(req) == "sk-ant-test"
    assert req["headers"]["anthropic-version"]
    assert req["body"] == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,  # required by the API: podium's default
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Say hi."}],
        "temperature": 0.0,  # no seed: the API has none
    }
    assert response.text == "Hi." and response.tool_calls == () and response.output is None
    # input counts every token read; the cache fields say how many were cached
    assert response.usage == Usage(2010, 3, 1, cache_read_tokens=1800, cache_write_tokens=200)
    assert response.finish_reason == "stop"
    assert response.model == MODEL


async def test_tools_and_tool_results_on_the_wire(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    history = [
        *HELLO,
        Message.assistant(
            "Checking both.",
            [
                ToolCall("toolu_01", "get_weather", {"city": "Oslo"}),
                ToolCall("toolu_02", "get_weather", {"city": "Rome"}),
            ],
        ),
        Message.tool("toolu_01", '{"temp": 3}', "get_weather"),
        Message.tool("toolu_02", '{"temp": 24}', "get_weather"),
    ]
    server.reply(
        message(
            [
                text("And two more."),
                tool_use("toolu_03", "get_weather", {"city": "Bergen"}),
                tool_use("toolu_04", "get_weather", {"city": "Tromsø"}),
            ],
            stop="tool_use",
        )
    )
    response = await model.respond(history, tools=[WEATHER])
    body = server.requests[0]["body"]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert "tool_choice" not in body  # the API's default: auto
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {  # both results in one user turn
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": '{"temp": 3}'},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": '{"temp": 24}'},
            ],
        },
    ]
    assert response.tool_calls == (
        ToolCall("toolu_03", "get_weather", {"city": "Bergen"}),
        ToolCall("toolu_04", "get_weather", {"city": "Tromsø"}),
    )
    assert response.text == "And two more." and response.finish_reason == "tool_calls"


async def test_structured_output_is_a_forced_tool(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(
        message([tool_use("toolu_9", "final_result", {"ok": True, "why": "fine"})], "tool_use")
    )
    response = await model.respond(HELLO, output_schema=VERDICT)
    body = server.requests[0]["body"]
    assert body["tools"] == [
        {
            "name": "final_result",
            "description": body["tools"][0]["description"],
            "input_schema": VERDICT.schema,
        }
    ]
    assert "Verdict" in body["tools"][0]["description"]
    assert body["tool_choice"] == {"type": "tool", "name": "final_result"}
    assert response.output == {"ok": True, "why": "fine"}
    assert json.loads(response.text) == response.output
    assert response.tool_calls == () and response.finish_reason == "stop"

    # with tools of its own, the model must call some tool: one of them, or the answer
    server.reply(message([tool_use("toolu_8", "get_weather", {"city": "Oslo"})], "tool_use"))
    response = await model.respond(HELLO, tools=[WEATHER], output_schema=VERDICT)
    body = server.requests[1]["body"]
    assert [t["name"] for t in body["tools"]] == ["get_weather", "final_result"]
    assert body["tool_choice"] == {"type": "any"}
    assert response.tool_calls == (ToolCall("toolu_8", "get_weather", {"city": "Oslo"}),)
    assert response.output is None

    # a user tool that is already called final_result keeps its name; the answer tool moves
    taken = ToolSpec("final_result", "The user's own.", {"type": "object", "properties": {}})
    server.reply(message([tool_use("toolu_7", "final_result_2", {"ok": False, "why": "no"})]))
    response = await model.respond(HELLO, tools=[taken], output_schema=VERDICT)
    assert [t["name"] for t in server.requests[2]["body"]["tools"]] == [
        "final_result",
        "final_result_2",
    ]
    assert response.output == {"ok": False, "why": "no"}


async def test_structured_output_problems_are_model_response_errors(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(message([text("I think it is fine.")]))
    with pytest.raises(ModelResponseError, match="expected as a call of 'final_result', got text"):
        await model.respond(HELLO, output_schema=VERDICT)
    server.reply(message([tool_use("toolu_1", "final_result", {"ok": True})], "max_tokens"))
    with pytest.raises(ModelResponseError, match="cut off at max_tokens"):
        await model.respond(HELLO, output_schema=VERDICT)


async def test_a_cut_off_answer_is_visible_as_length(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(message([text("Once upon a")], stop="max_tokens"))
    response = await model.respond(HELLO, settings=ModelSettings(max_tokens=3))
    assert server.requests[0]["body"]["max_tokens"] == 3
    assert (response.text, response.finish_reason) == ("Once upon a", "length")


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (400, "invalid_request_error", ModelError),
        (401, "authentication_error", ModelError),
        (404, "not_found_error", ModelError),
        (429, "rate_limit_error", ProviderError),
        (500, "api_error", ProviderError),
        (529, "overloaded_error", ProviderError),
    ],
)
async def test_http_errors_are_mapped(
    server: FakeAnthropic, model: AnthropicModel, status: int, kind: str, error: type[Exception]
) -> None:
    server.reply(api_error(kind, f"boom {status}"), status=status)
    with pytest.raises(error) as info:
        await model.respond(HELLO)
    assert getattr(info.value, "status", None) == status
    assert f"boom {status}" in str(info.value) and kind in str(info.value)
    assert f"anthropic:{MODEL}" in str(info.value)
    assert len(server.requests) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (message([tool_use("", "get_weather", {})]), "has no 'id'"),
        (message([tool_use("t1", "get_weather", [1])]), "must be a JSON object"),  # type: ignore[arg-type]
        ({**message([]), "content": None}, "no content list"),
        (b"<html>gateway</html>", "not JSON"),
    ],
)
async def test_malformed_answers_are_model_response_errors(
    server: FakeAnthropic, model: AnthropicModel, body: Any, problem: str
) -> None:
    server.reply(body)
    with pytest.raises(ModelResponseError, match=problem):
        await model.respond(HELLO, tools=[WEATHER])


async def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AnthropicModel("m", base_url=f"http://127.0.0.1:{port}", api_key="k") as model:
        with pytest.raises(ProviderError, match="APIConnectionError"):
            await model.respond(HELLO)
        with pytest.raises(ProviderError, match="APIConnectionError"):
            await collect(model.stream(HELLO))


# streaming -----------------------------------------------------------------------------------
async def test_stream_text_arrives_as_it_is_written(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    events = text_stream("Hello", ", wor", "ld!")
    events[0] = start(
        {
            "input_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 40,
            "output_tokens": 1,
        }
    )
    reply = Stream(events, hold=5)  # the server waits after the first delta ...
    server.reply(reply)
    assert isinstance(model, StreamingModel)
    stream = model.stream(HELLO)
    first = await anext(stream)
    assert first == ModelDelta("Hello")
    assert reply.held  # ... so this delta came while the server was still writing
    reply.go.set()
    deltas, final = await collect(stream)
    assert ["Hello", *deltas] == ["Hello", ", wor", "ld!"]
    assert final.text == "Hello, world!" and final.finish_reason == "stop"
    assert final.usage == Usage(45, 15, 1, cache_read_tokens=40)  # message_delta's count wins
    assert server.requests[0]["body"]["stream"] is True


async def test_stream_tool_calls_and_structured_output(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(
        Stream(
            [
                start(),
                block_start(0, text("")),
                text_delta(0, "Let me check."),
                block_stop(0),
                block_start(
                    1, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ),
                json_delta(1, ""),
                json_delta(1, '{"city": "Os'),
                json_delta(1, 'lo"}'),
                block_stop(1),
                *finish("tool_use"),
            ]
        )
    )
    deltas, final = await collect(model.stream(HELLO, tools=[WEATHER], output_schema=VERDICT))
    assert deltas == ["Let me check."]  # a tool's arguments are not text
    assert final.tool_calls == (ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),)
    assert final.text == "Let me check." and final.finish_reason == "tool_calls"

    server.reply(
        Stream(
            [
                start(),
                block_start(
                    0, {"type": "tool_use", "id": "toolu_2", "name": "final_result", "input": {}}
                ),
                PING,
                json_delta(0, '{"ok": tr'),
                json_delta(0, 'ue, "why": "sunny"}'),
                block_stop(0),
                *finish("tool_use"),
            ]
        )
    )
    deltas, final = await collect(model.stream(HELLO, tools=[WEATHER], output_schema=VERDICT))
    assert deltas == ['{"ok": tr', 'ue, "why": "sunny"}']  # the answer's JSON is its text
    assert "".join(deltas) == final.text
    assert final.output == {"ok": True, "why": "sunny"} and final.finish_reason == "stop"


async def test_stream_cut_off_structured_output_names_max_tokens(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(
        Stream(
            [
                start(),
                block_start(
                    0, {"type": "tool_use", "id": "toolu_2", "name": "final_result", "input": {}}
                ),
                json_delta(0, '{"ok": tr'),
                block_stop(0),
                *finish("max_tokens"),
            ]
        )
    )
    with pytest.raises(ModelResponseError, match=r"cut off: stop_reason=max_tokens"):
        await collect(model.stream(HELLO, output_schema=VERDICT))


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [("overloaded_error", ProviderError, 529), ("invalid_request_error", ModelError, 400)],
)
async def test_stream_error_event_is_mapped(
    server: FakeAnthropic,
    model: AnthropicModel,
    kind: str,
    error: type[Exception],
    status: int,
) -> None:
    events = [
        start(),
        block_start(0, text("")),
        text_delta(0, "Hel"),
        ("error", api_error(kind, "Overloaded")),
    ]
    server.reply(Stream(events))
    seen: list[str] = []
    with pytest.raises(error) as info:
        async for event in model.stream(HELLO):
            assert isinstance(event, ModelDelta)
            seen.append(event.text)
    assert seen == ["Hel"]
    assert getattr(info.value, "status", None) == status and kind in str(info.value)


async def test_stream_that_stops_before_message_stop_is_a_provider_error(
    server: FakeAnthropic, model: AnthropicModel
) -> None:
    server.reply(Stream([start(), block_start(0, text("")), text_delta(0, "Hel")]))
    with pytest.raises(ProviderError, match="stream ended before message_stop"):
        await collect(model.stream(HELLO))


# configuration and names ---------------------------------------------------------------------
async def test_env_configuration_and_precedence(
    server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # would fail if used
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("PODIUM_MODEL_BASE_URL", server.url)
    server.reply(message([text("ok")]))
    async with AnthropicModel(MODEL) as m:
        assert (await m.respond(HELLO)).text == "ok"
    assert sent_key(server.requests[0]) == "sk-ant-env"
    monkeypatch.setenv("PODIUM_MODEL_API_KEY", "sk-podium")
    server.reply(message([text("ok")]))
    async with AnthropicModel(MODEL) as m:
        await m.respond(HELLO)
    assert sent_key(server.requests[1]) == "sk-podium"

    for name in (
        "PODIUM_MODEL_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "PODIUM_MODEL_API_KEY",
        "ANTHROPIC_API_KEY",
    ):
        monkeypatch.delenv(name)
    keyless = AnthropicModel(MODEL)  # declaring needs no key; asking does
    with pytest.raises(
        UsageError, match="no API key; set ANTHROPIC_API_KEY or PODIUM_MODEL_API_KEY"
    ):
        await keyless.respond(HELLO)


def test_picked_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    model = resolve_model("anthropic:claude-haiku-4-5")
    assert isinstance(model, AnthropicModel)
    assert (model.model, model.name) == ("claude-haiku-4-5", "anthropic:claude-haiku-4-5")
    monkeypatch.setenv("PODIUM_MODEL", "anthropic:claude-opus-4-1")
    from_env = resolve_model(None)
    assert isinstance(from_env, AnthropicModel) and from_env.model == "claude-opus-4-1"
    with pytest.raises(UsageError, match="not understood"):
        resolve_model("anthropic:")


class Forecast(BaseModel):
    city: str
    warm: bool


async def test_llm_agent_from_yaml_end_to_end_over_http(
    server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A YAML spec names the model; the agent calls a tool, is asked again after a malformed
    answer, and answers with structured output; usage adds up with cache tokens."""
    monkeypatch.setenv("PODIUM_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-yaml")
    (tmp_path / "forecast_tools.py").write_text(
        "from pydantic import BaseModel\n"
        "from podium import tool\n\n"
        "class Forecast(BaseModel):\n    city: str\n    warm: bool\n\n"
        "@tool\ndef temperature(city: str) -> float:\n"
        '    """Current temperature in Celsius.\n\n    Args:\n        city: City name.\n    """\n'
        "    return 24.5\n"
    )
    agent = load_yaml_text(
        f"name: forecaster\nkind: llm\nmodel: anthropic:{MODEL}\n"
        "instructions: Say whether it is warm.\n"
        "output_type: forecast_tools:Forecast\n"
        "tools: [{python: forecast_tools:temperature}]\n",
        base_dir=tmp_path,
    )
    assert isinstance(agent, LLMAgent) and isinstance(agent.model, AnthropicModel)
    cached = {
        "input_tokens": 5,
        "output_tokens": 8,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 25,
    }
    server.reply(message([tool_use("toolu_1", "temperature", {"city": "Rome"})], "tool_use"))
    server.reply(message([text("It is warm in Rome.")]))  # prose, not the answer tool: asked again
    server.reply(
        message([tool_use("toolu_2", "final_result", {"city": "Rome", "warm": True})], usage=cached)
    )
    result = await Runtime("memory://", retry=Retry(initial_delay=0)).run(agent, "Rome?")
    assert result.ok, result.error
    assert result.output.model_dump() == {"city": "Rome", "warm": True}
    tokens = Usage(12 + 30, 6 + 8, 2, cache_read_tokens=25)
    assert replace(result.usage, usd=0.0) == tokens
    # priced as claude-sonnet-4-5: 17 fresh input at $3, 25 cache reads at $0.30, 14 out at $15
    assert result.usage.usd == pytest.approx((17 * 3 + 25 * 0.30 + 14 * 15) / 1e6)
    first, _, third = (r["body"] for r in server.requests)
    assert first["system"] == "Say whether it is warm."
    assert first["tool_choice"] == {"type": "any"}
    assert first["tools"][0]["input_schema"]["properties"]["city"]["description"] == "City name."
    assert third["messages"][-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "24.5"}],
    }
    await agent.model.aclose()  # type: ignore[attr-defined]


def test_missing_sdk_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['anthropic'] = None\n"
        "from podium import UsageError, resolve_model\n"
        "from podium.models.anthropic import AnthropicModel\n"
        "try:\n    AnthropicModel('claude-x')\n"
        "except ImportError as e:\n    print('direct:', e)\n"
        "try:\n    resolve_model('anthropic:claude-x')\n"
        "except UsageError as e:\n    print('named:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    hint = "pip install 'podium[anthropic]'"
    direct, named = out.stdout.strip().splitlines()
    assert (
        direct.startswith("direct: AnthropicModel needs the anthropic package") and hint in direct
    )
    assert named.startswith("named: model 'anthropic:claude-x'") and hint in named
