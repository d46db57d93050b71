"""OpenAIModel on the wire: a real HTTP server on loopback answers with documented
chat-completions bodies and records what the SDK sent."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    ModelError,
    ModelResponseError,
    ProviderError,
    Retry,
    Runtime,
    StepError,
    Usage,
)
from podium.agents.llm import LLMAgent
from podium.core.tools import ToolSpec
from podium.errors import OutputTruncatedError
from podium.models.base import (
    Message,
    ModelDelta,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolCall,
)
from podium.models.openai import OpenAIModel
from podium.tools import tool


class FakeOpenAI:
    """Queued replies out, recorded requests in. With `like_llama_cpp`, requests are first
    checked the way llama.cpp's server (`llama_cpp.server`) checks them, and refused with its
    HTTP 500 and pydantic validation message."""

    def __init__(self, like_llama_cpp: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, Any]] = deque()
        self.like_llama_cpp = like_llama_cpp
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def reply(self, body: Any, status: int = 200) -> None:
        self.replies.append((status, body))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do: the client pools

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                refused = llama_cpp_refusal(fake.requests[-1]["body"])
                if fake.like_llama_cpp and refused is not None:
                    status, body = 500, _err(refused, "internal_server_error")
                else:
                    status, body = fake.replies.popleft() if fake.replies else (500, _err("none"))
                if isinstance(body, SSE):
                    self._stream(body)
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, sse: SSE) -> None:
                """Server-sent events as chat-completion streams send them: `data: {chunk}`
                blocks, one HTTP chunk each, flushed as they are written, then
                `data: [DONE]`."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, event in enumerate(sse.chunks):
                    data = event if isinstance(event, str) else json.dumps(event)
                    self._chunk(f"data: {data}\n\n".encode())
                    if i == sse.hold_after and sse.hold is not None:
                        sse.hold.wait(10)
                if sse.cut:  # the connection drops in the middle of the body
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if sse.done:
                    self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass
class SSE:
    """A streamed reply: `chat.completion.chunk` objects (or raw strings) sent one by one.
    `hold` keeps the rest back after chunk `hold_after` until it is set; `cut` drops the
    connection after the chunks instead of ending the body."""

    chunks: list[Any]
    done: bool = True
    hold: threading.Event | None = None
    hold_after: int = 0
    cut: bool = False


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, choices: bool = True
) -> dict[str, Any]:
    """A chat.completion.chunk object as the API reference documents it."""
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
        "usage": None,
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    """The last chunk with `stream_options={"include_usage": true}`: no choices, the usage."""
    body = chunk(choices=False)
    body["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return body


def text_stream(
    *pieces: str, finish: str = "stop", usage: tuple[int, int] | None = (9, 12), **kw: Any
) -> SSE:
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": p}) for p in pieces]
    chunks.append(chunk({}, finish))
    if usage is not None:
        chunks.append(usage_chunk(*usage))
    return SSE(chunks, **kw)


def llama_cpp_refusal(body: dict[str, Any]) -> str | None:
    """What llama.cpp's server (0.3.x) says to a request its pydantic models reject: only
    `text` and `json_object` response formats, and string content in every message."""
    problems = []
    kind = (body.get("response_format") or {}).get("type", "text")
    if kind not in ("text", "json_object"):
        problems.append(
            "{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
            f"'msg': \"Input should be 'text' or 'json_object'\", 'input': {kind!r}}}"
        )
    for i, m in enumerate(body.get("messages", ())):
        if not isinstance(m.get("content"), str):
            problems.append(
                f"{{'type': 'string_type', 'loc': ('body', 'messages', {i}, "
                "'ChatCompletionRequestAssistantMessage', 'content'), "
                "'msg': 'Input should be a valid string', 'input': None}"
            )
    if not problems:
        return None
    return (
        f"{len(problems)} validation error{'s' if len(problems) > 1 else ''}:\n  "
        + "\n  ".join(problems)
        + '\n\n  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n'
        "    POST /v1/chat/completions"
    )


def _err(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def completion(
    message: dict[str, Any], finish: str = "stop", usage: tuple[int, int] = (9, 12)
) -> dict[str, Any]:
    """A chat.completion object as the API reference documents it."""
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1677652288,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, **message},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def tool_calls_message(*calls: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "content": None,
        "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in calls
        ],
    }


def _serve(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    fake.thread.join(5)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from _serve(FakeOpenAI())


@pytest.fixture
def llama() -> Iterator[FakeOpenAI]:
    """A server that checks requests as llama.cpp's does."""
    yield from _serve(FakeOpenAI(like_llama_cpp=True))


@pytest.fixture
async def model(server: FakeOpenAI) -> AsyncIterator[OpenAIModel]:
    m = OpenAIModel("gpt-4o-mini", base_url=server.url, api_key="sk-test", max_retries=0)
    yield m
    await m.aclose()


HELLO = [Message.system("You are terse."), Message.user("Say hi.")]


async def test_text_answer_request_shape_and_usage(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(completion({"content": "Hi."}))
    response = await model.respond(HELLO, settings=ModelSettings(temperature=0.0, seed=7))
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "gpt-4o-mini"
    assert req["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hi."},
    ]
    assert req["body"]["temperature"] == 0.0 and req["body"]["seed"] == 7
    assert "tools" not in req["body"] and "response_format" not in req["body"]
    assert response.text == "Hi."
    assert response.tool_calls == () and response.output is None
    assert response.usage == Usage(input_tokens=9, output_tokens=12, requests=1)
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4o-mini-2024-07-18"


async def test_tools_and_tool_results_on_the_wire(llama: FakeOpenAI) -> None:
    """An assistant message with tool calls carries content "" (llama.cpp refuses null)."""
    model = OpenAIModel("gpt-4o-mini", base_url=llama.url, api_key="sk-test")
    server = llama
    spec = ToolSpec(
        "get_weather",
        "Weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    history = [
        *HELLO,
        Message.assistant("", [ToolCall("call_1", "get_weather", {"city": "Oslo"})]),
        Message.tool("call_1", '{"temp": 3}', "get_weather"),
    ]
    server.reply(
        completion(
            tool_calls_message(
                ("call_2", "get_weather", '{"city": "Bergen"}'),
                ("call_3", "get_weather", '{"city": "Tromsø"}'),
            ),
            finish="tool_calls",
        )
    )
    response = await model.respond(history, tools=[spec])
    body = server.requests[0]["body"]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": spec.parameters,
            },
        }
    ]
    assistant, tool_msg = body["messages"][2:]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    assert tool_msg == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'}
    assert response.tool_calls == (
        ToolCall("call_2", "get_weather", {"city": "Bergen"}),
        ToolCall("call_3", "get_weather", {"city": "Tromsø"}),
    )
    assert response.finish_reason == "tool_calls"


async def test_structured_output(server: FakeOpenAI, model: OpenAIModel) -> None:
    schema = OutputSchema(
        "Verdict",
        {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    )
    server.reply(completion({"content": '{"ok": true}'}))
    response = await model.respond(HELLO, output_schema=schema)
    assert server.requests[0]["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": schema.schema, "strict": True},
    }
    assert response.output == {"ok": True}

    server.reply(completion({"content": "sure, ok is true"}))
    prose = await model.respond(HELLO, output_schema=schema)
    assert prose.output is None and prose.text == "sure, ok is true"  # the agent sends it back
    server.reply(completion({"content": None, "refusal": "I can't help with that."}))
    with pytest.raises(ModelResponseError, match="refused"):
        await model.respond(HELLO, output_schema=schema)


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (429, "requests", ProviderError),
        (500, "server_error", ProviderError),
        (503, "server_error", ProviderError),
        (400, "invalid_request_error", ModelError),
        (401, "invalid_request_error", ModelError),
        (404, "invalid_request_error", ModelError),
    ],
)
async def test_http_errors_are_mapped(
    server: FakeOpenAI, model: OpenAIModel, status: int, kind: str, error: type[Exception]
) -> None:
    server.reply(_err(f"boom {status}", kind), status=status)
    with pytest.raises(error) as info:
        await model.respond(HELLO)
    assert getattr(info.value, "status", None) == status
    assert f"boom {status}" in str(info.value) and "openai:gpt-4o-mini" in str(info.value)
    assert len(server.requests) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (completion(tool_calls_message(("c1", "f", '{"x": 1,'))), "not valid JSON"),
        (completion(tool_calls_message(("c1", "f", "[1, 2]"))), "must be a JSON object"),
        (completion(tool_calls_message(("", "f", "{}"))), "has no 'id'"),
        ({**completion({"content": "x"}), "choices": []}, "no choices"),
        ({"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]}, "no message"),
        (b"<html>gateway</html>", "not JSON"),
    ],
)
async def test_malformed_answers_are_model_response_errors(
    server: FakeOpenAI, model: OpenAIModel, body: Any, problem: str
) -> None:
    server.reply(body)
    with pytest.raises(ModelResponseError, match=problem) as info:
        await model.respond(HELLO)
    assert "openai:gpt-4o-mini" in str(info.value)


async def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with OpenAIModel("m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k") as model:
        with pytest.raises(ProviderError, match="APIConnectionError"):
            await model.respond(HELLO)


async def test_env_configuration_and_precedence(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # would fail if used
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("PODIUM_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("PODIUM_MODEL_API_KEY", "sk-podium")
    server.reply(completion({"content": "ok"}))
    async with OpenAIModel("local-model") as model:
        assert (await model.respond(HELLO)).text == "ok"
    assert server.requests[0]["auth"] == "Bearer sk-podium"
    monkeypatch.delenv("PODIUM_MODEL_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    server.reply(completion({"content": "ok"}))
    async with OpenAIModel("local-model") as keyless:  # a local server needs no key
        await keyless.respond(HELLO)
    assert server.requests[1]["auth"] == "Bearer unused"


class Forecast(BaseModel):
    city: str
    warm: bool


async def test_llm_agent_end_to_end_over_http(server: FakeOpenAI, model: OpenAIModel) -> None:
    @tool
    def temperature(city: str) -> float:
        """Current temperature in Celsius.

        Args:
            city: City name.
        """
        return 24.5

    forecaster = LLMAgent(
        "forecaster",
        model=model,
        instructions="Say whether it is warm.",
        tools=[temperature],
        output_type=Forecast,
    )
    server.reply(completion(tool_calls_message(("c1", "temperature", '{"city": "Rome"}'))))
    server.reply(completion({"content": "not json"}))  # malformed: sent back with the problem
    server.reply(completion({"content": '{"city": "Rome", "warm": true}'}, usage=(30, 8)))
    result = await Runtime("memory://", retry=Retry(initial_delay=0)).run(forecaster, "Rome?")
    assert result.ok, result.error
    assert result.output == Forecast(city="Rome", warm=True)
    # every ask is a step and is paid for, the malformed answer included
    assert replace(result.usage, usd=0.0) == Usage(9 + 9 + 30, 12 + 12 + 8, 3)
    # priced as gpt-4o-mini ($0.15 in, $0.60 out per million), the malformed answer included
    assert result.usage.usd == pytest.approx((48 * 0.15 + 32 * 0.60) / 1e6)
    first, second, third = (r["body"] for r in server.requests)
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"] == {
        "type": "string",
        "description": "City name.",
    }
    assert first["response_format"]["json_schema"]["name"] == "Forecast"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": "24.5"}
    bad, feedback = third["messages"][-2:]
    assert bad == {"role": "assistant", "content": "not json"}
    assert feedback["role"] == "user" and "not JSON" in feedback["content"]


# structured-output modes ---------------------------------------------------------------------
VERDICT = OutputSchema(
    "Verdict",
    {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    },
)


async def test_a_refused_json_schema_steps_down_once_and_is_remembered(llama: FakeOpenAI) -> None:
    llama.reply(completion({"content": '{"ok": true}'}))
    llama.reply(completion({"content": '{"ok": false}'}))
    async with OpenAIModel("gemma", base_url=llama.url) as model:
        assert model.learned_output_mode is None
        first = await model.respond(HELLO, output_schema=VERDICT)
        assert first.output == {"ok": True}
        assert model.learned_output_mode == "json_object_schema"
    refused, accepted = (r["body"] for r in llama.requests)
    assert refused["response_format"]["type"] == "json_schema"
    assert accepted["response_format"] == {"type": "json_object", "schema": VERDICT.schema}
    assert accepted["messages"] == refused["messages"]  # the schema travels in the format
    # another model object on the same endpoint starts with what worked: one request
    async with OpenAIModel("gemma", base_url=llama.url) as again:
        assert (await again.respond(HELLO, output_schema=VERDICT)).output == {"ok": False}
    assert len(llama.requests) == 3
    assert llama.requests[2]["body"]["response_format"]["type"] == "json_object"


@pytest.mark.parametrize(
    ("mode", "response_format"),
    [
        ("json_schema", {"type": "json_schema"}),
        ("json_object_schema", {"type": "json_object", "schema": VERDICT.schema}),
        ("json_object", {"type": "json_object"}),
        ("prompt", None),
    ],
)
async def test_each_output_mode_on_the_wire(
    server: FakeOpenAI, mode: str, response_format: dict[str, Any] | None
) -> None:
    server.reply(completion({"content": '{"ok": true}'}))
    async with OpenAIModel("m", base_url=server.url) as model:
        settings = ModelSettings(output_mode=mode)  # type: ignore[arg-type]
        response = await model.respond(HELLO, output_schema=VERDICT, settings=settings)
    assert response.output == {"ok": True}
    body = server.requests[0]["body"]
    if response_format is None:
        assert "response_format" not in body
    else:
        assert {k: body["response_format"][k] for k in response_format} == response_format
    system = body["messages"][0]["content"]
    told = mode in ("json_object", "prompt")
    assert system.startswith("You are terse.")
    assert ('"required":["ok"]' in system) is told  # the schema in words where it must be


async def test_a_fixed_mode_is_not_stepped_down_and_the_refusal_is_not_retried(
    llama: FakeOpenAI,
) -> None:
    agent = LLMAgent(
        "judge",
        model=OpenAIModel("gemma", base_url=llama.url, output_mode="json_schema"),
        instructions="Decide.",
        output_type=Forecast,
    )
    result = await Runtime("memory://", retry=Retry(initial_delay=0)).run(agent, "x")
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, ModelError)  # a request the server cannot take
    assert "HTTP 500" in str(result.exception) and "'json_object'" in str(result.exception)
    assert len(llama.requests) == 1  # not retried: the same request gets the same answer


async def test_a_refusal_about_something_else_does_not_step_down(server: FakeOpenAI) -> None:
    server.reply(_err("This model's maximum context length is 8192 tokens"), status=400)
    async with OpenAIModel("m", base_url=server.url) as model:
        with pytest.raises(ModelError, match="maximum context length"):
            await model.respond(HELLO, output_schema=VERDICT)
        assert model.learned_output_mode is None
    assert len(server.requests) == 1


async def test_json_is_read_leniently(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(completion({"content": '{"poem": "line one\nline two"}'}))  # raw newline
    server.reply(completion({"content": '```json\n{"poem": "fenced"}\n```'}))
    server.reply(completion(tool_calls_message(("c1", "f", '{"text": "a\nb"}'))))
    raw = await model.respond(HELLO, output_schema=VERDICT)
    assert raw.output == {"poem": "line one\nline two"}
    assert (await model.respond(HELLO, output_schema=VERDICT)).output == {"poem": "fenced"}
    assert (await model.respond(HELLO)).tool_calls[0].arguments == {"text": "a\nb"}


# tool choice ---------------------------------------------------------------------------------
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("required", "required"),
        ("none", "none"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
async def test_tool_choice_on_the_wire(
    server: FakeOpenAI, model: OpenAIModel, choice: str, wire: Any
) -> None:
    server.reply(completion({"content": "ok"}))
    server.reply(completion({"content": "ok"}))
    await model.respond(HELLO, tools=[WEATHER], settings=ModelSettings(tool_choice=choice))
    await model.respond(HELLO, settings=ModelSettings(tool_choice=choice))  # no tools offered
    with_tools, without = (r["body"] for r in server.requests)
    assert with_tools["tool_choice"] == wire
    assert "tool_choice" not in without


async def test_a_forced_tool_runs_once_then_the_model_answers(llama: FakeOpenAI) -> None:
    calls: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        calls.append(city)
        return "sunny"

    llama.reply(completion(tool_calls_message(("c1", "get_weather", '{"city": "Oslo"}'))))
    llama.reply(completion({"content": "It is sunny in Oslo."}))
    agent = LLMAgent(
        "weather",
        model=OpenAIModel("gemma", base_url=llama.url),
        instructions="Use the tool.",
        tools=[get_weather],
        settings=ModelSettings(tool_choice="get_weather", max_tokens=64),
    )
    result = await Runtime("memory://").run(agent, "Oslo?")
    assert result.ok, result.error
    assert result.output == "It is sunny in Oslo." and calls == ["Oslo"]
    forced, then = (r["body"] for r in llama.requests)
    assert forced["tool_choice"]["function"]["name"] == "get_weather"
    assert "tool_choice" not in then and then["max_tokens"] == 64
    assert then["messages"][2]["content"] == ""  # "" beside the tool calls, not null


# usage and cut-offs --------------------------------------------------------------------------
async def test_a_malformed_answer_carries_its_usage(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(completion(tool_calls_message(("c1", "f", '{"x": 1,')), usage=(40, 5)))
    with pytest.raises(ModelResponseError) as info:
        await model.respond(HELLO)
    assert info.value.usage == Usage(40, 5, 1)


async def test_failed_attempts_count_in_the_step_and_run_usage(
    server: FakeOpenAI, model: OpenAIModel
) -> None:
    @tool
    def f(x: int) -> int:
        """Echo."""
        return x

    server.reply(completion(tool_calls_message(("c1", "f", '{"x": 1,')), usage=(40, 5)))
    server.reply(completion({"content": "done"}, usage=(41, 1)))
    agent = LLMAgent("a", model=model, instructions="x", tools=[f])
    rt = Runtime("memory://", retry=Retry(initial_delay=0))
    result = await rt.run(agent, "go")
    assert result.ok, result.error
    assert len(server.requests) == 2  # the malformed tool call was retried by the door
    paid = (81 * 0.15 + 6 * 0.60) / 1e6  # both attempts, at gpt-4o-mini's prices
    assert result.usage == Usage(81, 6, 2, usd=pytest.approx(paid))
    (step,) = [s for s in await rt.steps(result.run_id) if s.kind == "model"]
    assert step.usage == Usage(81, 6, 2, usd=pytest.approx(paid))


async def test_a_cut_off_structured_answer_names_max_tokens_and_is_not_asked_again(
    server: FakeOpenAI, model: OpenAIModel
) -> None:
    server.reply(completion({"content": '{"city": "Ro'}, finish="length", usage=(50, 4)))
    agent = LLMAgent(
        "f",
        model=model,
        instructions="x",
        output_type=Forecast,
        settings=ModelSettings(max_tokens=4),
    )
    rt = Runtime("memory://", retry=Retry(initial_delay=0))
    result = await rt.run(agent, "Rome?")
    assert isinstance(result.exception, StepError)
    assert result.exception.step == "/f/model#0"
    assert isinstance(result.exception.cause, OutputTruncatedError)
    assert result.exception.cause.max_tokens == 4
    assert "max_tokens=4" in str(result.exception) and "finish_reason='length'" in str(
        result.exception
    )
    assert len(server.requests) == 1  # neither retried nor re-asked
    # the failed step's tokens count in the run, and so does their cost
    assert result.usage == Usage(50, 4, 1, usd=pytest.approx((50 * 0.15 + 4 * 0.60) / 1e6))


async def test_a_cut_off_tool_call_is_a_truncation(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(completion(tool_calls_message(("c1", "f", '{"x": "abc')), finish="length"))
    with pytest.raises(OutputTruncatedError, match="tool call was cut off at max_tokens=8"):
        await model.respond(HELLO, tools=[WEATHER], settings=ModelSettings(max_tokens=8))


async def test_a_server_validation_error_is_not_retried(llama: FakeOpenAI) -> None:
    history = [*HELLO, Message("assistant", None, (ToolCall("c", "f", {}),))]  # type: ignore[arg-type]
    async with OpenAIModel("gemma", base_url=llama.url) as model:
        with pytest.raises(ModelError, match="Input should be a valid string") as info:
            await model.respond(history)
    assert info.value.status == 500
    assert "\n" not in str(info.value)  # the server's multi-line message, on one line


# event loops ---------------------------------------------------------------------------------
def test_an_agent_is_reused_across_run_sync_calls(server: FakeOpenAI) -> None:
    """`run_sync` makes a new event loop per run: the model's HTTP client must not outlive
    the loop it was made in, and nothing may be left unclosed."""
    leaks: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda u: leaks.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        agent = LLMAgent(
            "talker",
            model=OpenAIModel("m", base_url=server.url, api_key="k"),
            instructions="Be brief.",
        )
        rt = Runtime("memory://")
        outputs = []
        for i in range(3):
            server.reply(completion({"content": f"hi {i}"}))
            result = rt.run_sync(agent, "hi")
            assert result.ok, result.error
            outputs.append(result.output)
        del agent, result
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert outputs == ["hi 0", "hi 1", "hi 2"]
    assert leaks == []


async def test_an_agents_settings_are_laid_over_the_models(server: FakeOpenAI) -> None:
    server.reply(completion({"content": '{"ok": true}'}))
    own = ModelSettings(temperature=0.5, max_tokens=100, output_mode="prompt", extra={"a": 1})
    async with OpenAIModel("m", base_url=server.url, settings=own) as model:
        agents = ModelSettings(max_tokens=5, extra={"b": 2})
        await model.respond(HELLO, output_schema=VERDICT, settings=agents)
    body = server.requests[0]["body"]
    assert (body["temperature"], body["max_tokens"]) == (0.5, 5)
    assert "response_format" not in body  # the model's output mode was kept
    assert (body["a"], body["b"]) == (1, 2)


# streaming -----------------------------------------------------------------------------------
async def collect(events: AsyncIterator[Any]) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    final: ModelResponse | None = None
    async for event in events:
        assert final is None, "nothing may follow the final response"
        if isinstance(event, ModelDelta):
            deltas.append(event.text)
        else:
            final = event.response
    assert final is not None
    return deltas, final


async def test_a_streamed_text_answer_on_the_wire(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(text_stream("The tide ", "follows ", "the moon."))
    settings = ModelSettings(temperature=0.0, seed=7)
    deltas, final = await collect(model.stream(HELLO, settings=settings))
    assert deltas == ["The tide ", "follows ", "the moon."]
    assert final.text == "".join(deltas) and final.finish_reason == "stop"
    assert final.usage == Usage(9, 12, 1)  # from the last chunk
    assert final.model == "gpt-4o-mini-2024-07-18"
    (req,) = server.requests
    body = req["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    # one code path builds the request: streamed or not, the rest is the same
    server.reply(completion({"content": "x"}))
    await model.respond(HELLO, settings=settings)
    plain = server.requests[1]["body"]
    assert {k: v for k, v in body.items() if k not in ("stream", "stream_options")} == plain


async def test_deltas_arrive_as_the_server_writes_them(
    server: FakeOpenAI, model: OpenAIModel
) -> None:
    hold = threading.Event()  # the server sends the role chunk and "first", then waits
    server.reply(text_stream("first", " second", hold=hold, hold_after=1))
    events = model.stream(HELLO)
    try:
        first = await asyncio.wait_for(anext(events), 10)
        assert first == ModelDelta("first") and not hold.is_set()
        hold.set()
        rest, final = await collect(events)
        assert rest == [" second"] and final.text == "first second"
    finally:
        hold.set()
        await events.aclose()


async def test_streamed_tool_calls_are_assembled(server: FakeOpenAI, model: OpenAIModel) -> None:
    def call_delta(index: int, **fields: Any) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, **fields}]})

    server.reply(
        SSE(
            [
                chunk({"role": "assistant", "content": None}),
                call_delta(
                    0,
                    id="call_1",
                    type="function",
                    function={"name": "get_weather", "arguments": ""},
                ),
                call_delta(0, function={"arguments": '{"ci'}),
                call_delta(
                    1,
                    id="call_2",
                    type="function",
                    function={"name": "get_weather", "arguments": ""},
                ),
                call_delta(0, function={"arguments": 'ty": "Oslo"}'}),
                call_delta(1, function={"arguments": '{"city": "Bergen"}'}),
                chunk({}, "tool_calls"),
                usage_chunk(30, 22),
            ]
        )
    )
    deltas, final = await collect(model.stream(HELLO, tools=[WEATHER]))
    assert deltas == [] and final.text == ""
    assert final.tool_calls == (
        ToolCall("call_1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_2", "get_weather", {"city": "Bergen"}),
    )
    assert final.finish_reason == "tool_calls" and final.usage == Usage(30, 22, 1)
    assert server.requests[0]["body"]["tools"][0]["function"]["name"] == "get_weather"


async def test_a_streamed_structured_answer_steps_down_modes_like_respond(
    llama: FakeOpenAI,
) -> None:
    llama.reply(text_stream('{"ok":', " true}"))  # the refused json_schema request eats none
    async with OpenAIModel("gemma", base_url=llama.url) as model:
        deltas, final = await collect(model.stream(HELLO, output_schema=VERDICT))
        assert model.learned_output_mode == "json_object_schema"
    assert deltas == ['{"ok":', " true}"] and final.output == {"ok": True}
    refused, accepted = (r["body"] for r in llama.requests)
    assert refused["response_format"]["type"] == "json_schema" and refused["stream"]
    assert accepted["response_format"] == {"type": "json_object", "schema": VERDICT.schema}
    assert accepted["stream"] is True


async def test_a_stream_without_usage_is_counted(server: FakeOpenAI, model: OpenAIModel) -> None:
    """llama.cpp's server sends no usage in a stream: one token a text chunk, and the
    request's size at about four characters a token."""
    server.reply(text_stream("a", "b", "c", usage=None))
    _, final = await collect(model.stream(HELLO))
    sent = json.dumps(server.requests[0]["body"]["messages"])
    assert final.usage == Usage(len(sent + "[]") // 4, 3, 1)
    assert final.usage.input_tokens > 5


async def test_stream_errors_are_mapped(server: FakeOpenAI, model: OpenAIModel) -> None:
    server.reply(_err("slow down", "rate_limit_error"), status=429)
    with pytest.raises(ProviderError, match="HTTP 429"):
        await collect(model.stream(HELLO))
    server.reply(_err("bad key", "invalid_request_error"), status=401)
    with pytest.raises(ModelError, match="HTTP 401"):
        await collect(model.stream(HELLO))

    # an error event in the middle of a 200 stream: the server failed mid-answer
    failing = text_stream("half an ", usage=None).chunks[:2]
    failing.append({"error": {"message": "The server had an error", "type": "server_error"}})
    server.reply(SSE(failing))
    seen: list[str] = []
    with pytest.raises(ProviderError, match="error in the stream: The server had an error") as e:
        async for event in model.stream(HELLO):
            seen.append(event.text)
    assert seen == ["half an "] and e.value.usage is not None and e.value.usage.output_tokens == 1

    # the connection drops mid-body, or the body ends with no finish_reason: retryable
    server.reply(SSE(text_stream("cut ", "off", usage=None).chunks[:3], cut=True))
    with pytest.raises(ProviderError, match="model 'openai:gpt-4o-mini'"):
        await collect(model.stream(HELLO))
    server.reply(SSE(text_stream("no ", "end", usage=None).chunks[:3]))
    with pytest.raises(ProviderError, match="no finish_reason") as cut:
        await collect(model.stream(HELLO))
    assert cut.value.usage == Usage(cut.value.usage.input_tokens, 2, 1)


async def test_stream_cut_offs_and_malformed_calls_are_read_as_respond_reads_them(
    server: FakeOpenAI, model: OpenAIModel
) -> None:
    server.reply(text_stream('{"city": "Ro', finish="length", usage=(50, 4)))
    agent = LLMAgent(
        "f",
        model=model,
        instructions="x",
        output_type=Forecast,
        settings=ModelSettings(max_tokens=4, output_mode="json_schema"),
    )
    rt = Runtime("memory://", retry=Retry(initial_delay=0))
    stream = rt.stream(agent, "Rome?")
    events = [e async for e in stream]
    result = await stream.result()
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, OutputTruncatedError)
    assert "max_tokens=4" in str(result.exception)
    assert len(server.requests) == 1
    assert result.usage == Usage(50, 4, 1, usd=pytest.approx((50 * 0.15 + 4 * 0.60) / 1e6))
    assert [e.data["text"] for e in events if e.kind == "model.delta" and e.data] == [
        '{"city": "Ro'
    ]
    broken = chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"x": 1,'}}
            ]
        }
    )
    server.reply(SSE([broken, chunk({}, "tool_calls"), usage_chunk(40, 5)]))
    with pytest.raises(ModelResponseError, match="not valid JSON") as bad:
        await collect(model.stream(HELLO))
    assert bad.value.usage == Usage(40, 5, 1)


async def test_an_llm_agent_streams_over_http(server: FakeOpenAI, model: OpenAIModel) -> None:
    """A tool turn then a text answer, read with `Runtime.stream`: each model step's deltas
    join to its journaled text."""

    @tool
    def f(x: int) -> int:
        """Echo."""
        return x

    server.reply(
        SSE(
            [
                chunk({"role": "assistant", "content": "Let me check. "}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"x": 3}'},
                            }
                        ]
                    }
                ),
                chunk({}, "tool_calls"),
                usage_chunk(20, 6),
            ]
        )
    )
    server.reply(text_stream("It is ", "3."))
    agent = LLMAgent("a", model=model, instructions="x", tools=[f])
    rt = Runtime("memory://")
    stream = rt.stream(agent, "go")
    events = [e async for e in stream]
    result = await stream.result()
    assert result.output == "It is 3."
    assert result.usage == Usage(29, 18, 2, usd=pytest.approx((29 * 0.15 + 18 * 0.60) / 1e6))
    streamed: dict[str, str] = {}
    for e in events:
        if e.kind == "model.delta" and e.data:
            streamed[e.key] = streamed.get(e.key, "") + e.data["text"]
    journal = {s.key: s.output.text for s in await rt.steps(result.run_id) if s.kind == "model"}
    assert streamed == journal == {"/a/model#0": "Let me check. ", "/a/model#1": "It is 3."}
    assert all(r["body"]["stream"] for r in server.requests)
