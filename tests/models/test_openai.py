"""OpenAIModel on the wire: a real HTTP server on loopback answers with documented
chat-completions bodies and records what the SDK sent."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from podium import ModelError, ModelResponseError, ProviderError, Retry, Runtime, Usage
from podium.agents.llm import LLMAgent
from podium.models.base import Message, ModelSettings, OutputSchema, ToolCall, ToolSpec
from podium.models.openai import OpenAIModel
from podium.tools import tool


class FakeOpenAI:
    """Queued replies out, recorded requests in."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, Any]] = deque()
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
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                status, body = fake.replies.popleft() if fake.replies else (500, _err("none"))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


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


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    fake.thread.join(5)


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


async def test_tools_and_tool_results_on_the_wire(server: FakeOpenAI, model: OpenAIModel) -> None:
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
        "content": None,
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
    with pytest.raises(ModelResponseError, match="not valid JSON"):
        await model.respond(HELLO, output_schema=schema)
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
    server.reply(completion({"content": "not json"}))  # malformed: the door asks again
    server.reply(completion({"content": '{"city": "Rome", "warm": true}'}, usage=(30, 8)))
    result = await Runtime("memory://", retry=Retry(initial_delay=0)).run(forecaster, "Rome?")
    assert result.ok, result.error
    assert result.output == Forecast(city="Rome", warm=True)
    # the journal adds usage of completed steps only: the malformed attempt is not counted
    assert result.usage == Usage(9 + 30, 12 + 8, 2)
    first, _, third = (r["body"] for r in server.requests)
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"] == {
        "type": "string",
        "description": "City name.",
    }
    assert first["response_format"]["json_schema"]["name"] == "Forecast"
    assert third["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": "24.5"}
