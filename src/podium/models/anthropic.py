"""`AnthropicModel`: Claude through the Messages API (`POST /v1/messages`) and the official
`anthropic` SDK (`pip install 'podium[anthropic]'`).

Base URL and key come from the arguments, else `PODIUM_MODEL_BASE_URL` /
`PODIUM_MODEL_API_KEY`, else `ANTHROPIC_BASE_URL` / `ANTHROPIC_API_KEY`. As with
`OpenAIModel`, the SDK's own retries are off: the door retries what is transient.

How podium's vendor-neutral request maps onto the Messages API:

- system messages go into `system`; tool results travel as `tool_result` blocks in a user
  turn, and an assistant's tool calls as `tool_use` blocks;
- `max_tokens` is required by the API: `ModelSettings.max_tokens`, else the model's
  `max_tokens` (default `DEFAULT_MAX_TOKENS`). `stop_reason=max_tokens` becomes
  `finish_reason="length"`, so a caller can see the answer was cut off;
- structured output is tool-forced: the output schema becomes one more tool
  (`final_result`), which the model is forced to call (or, when it has tools of its own, to
  call some tool); its input is the answer. The response's `text` is that JSON;
- usage counts cached prompt tokens in `input_tokens` and says how many were read from and
  written to the prompt cache (`Usage.cache_read_tokens` / `cache_write_tokens`);
- `ModelSettings.seed` has no Anthropic counterpart and is not sent.

Nothing outside this module sees the wire format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from podium.core.records import Usage
from podium.core.serde import dumps
from podium.core.tools import ToolSpec
from podium.errors import ModelError, ModelResponseError, ProviderError, UsageError
from podium.models._sdk import check_installed, env, hide_key, import_sdk, transport_errors
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

DEFAULT_MAX_TOKENS = 4096
OUTPUT_TOOL = "final_result"
_SDK = ("AnthropicModel", "anthropic", "anthropic")
_TRANSIENT_STATUS = frozenset({408, 409, 429})
# The error types the API documents, with the HTTP status each comes with; an error event
# inside a stream arrives on a 200 response, so its type is all there is to go on.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicModel:
    """A Claude model behind the Anthropic Messages API; streams too (`stream`)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        settings: ModelSettings | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout: float | None = None,
        max_retries: int = 0,
        client: Any = None,
    ) -> None:
        if not model:
            raise UsageError("AnthropicModel needs a model name, e.g. AnthropicModel('claude-...')")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise UsageError(
                f"AnthropicModel: max_tokens must be a positive int, got {max_tokens!r}"
            )
        if client is None:
            check_installed(*_SDK)
        self.model = model
        self.name = name or f"anthropic:{model}"
        self.base_url = base_url or env("PODIUM_MODEL_BASE_URL", "ANTHROPIC_BASE_URL")
        self._api_key = api_key or env("PODIUM_MODEL_API_KEY", "ANTHROPIC_API_KEY")
        self.settings = settings
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self._client = client
        self._owns_client = client is None

    @property
    def endpoint(self) -> str:
        """Which server this model talks to; circuit breakers are kept per endpoint."""
        return f"{self.name}@{self.base_url or 'api.anthropic.com'}"

    @property
    def client(self) -> Any:
        """The SDK's `AsyncAnthropic`, made on first use (a model can be declared before keys
        exist)."""
        if self._client is None:
            sdk = import_sdk(*_SDK)
            key = self._api_key
            if key is None:
                if self.base_url is None:
                    raise UsageError(
                        f"model {self.name!r}: no API key; set ANTHROPIC_API_KEY or "
                        "PODIUM_MODEL_API_KEY, or pass api_key="
                    )
                key = "unused"  # a gateway or proxy of one's own may take any key
            kwargs: dict[str, Any] = {"api_key": key, "max_retries": self.max_retries}
            if self.base_url is not None:
                kwargs["base_url"] = self.base_url
            if self.timeout is not None:
                kwargs["timeout"] = self.timeout
            self._client = sdk.AsyncAnthropic(**kwargs)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections this model opened (not a client passed in)."""
        if self._client is not None and self._owns_client:
            client, self._client = self._client, None
            await client.close()

    async def __aenter__(self) -> AnthropicModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output_schema: OutputSchema | None,
        settings: ModelSettings | None,
    ) -> tuple[dict[str, Any], str | None]:
        return build_request(
            self.model, messages, tools, output_schema, settings or self.settings, self.max_tokens
        )

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        request, output_tool = self._request(messages, tools, output_schema, settings)
        sdk = import_sdk(*_SDK)
        try:
            raw = await self.client.messages.with_raw_response.create(**request)
            text = raw.text  # a method in SDK 2.x, a property before
            body = await text() if callable(text) else text
        except sdk.APIError as e:
            raise hide_key(map_error(self.name, sdk, e), self._api_key) from e
        try:
            data = json.loads(body)
        except ValueError:
            raise ModelResponseError(
                f"model {self.name!r}: response body is not JSON: {body[:200]!r}"
            ) from None
        return parse_message(self.name, data, output_tool)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """The answer as it is written: text (and structured output's JSON) in deltas, from
        the API's server-sent events, then the whole response."""
        request, output_tool = self._request(messages, tools, output_schema, settings)
        sdk = import_sdk(*_SDK)
        state = StreamState(self.name, output_tool)
        try:
            events = await self.client.messages.create(**request, stream=True)
            try:
                async for event in events:
                    text = state.feed(event.to_dict())
                    if text:
                        yield ModelDelta(text)
            finally:
                await events.close()
        except sdk.APIError as e:
            raise hide_key(map_error(self.name, sdk, e), self._api_key) from e
        except transport_errors() as e:
            raise ProviderError(f"model {self.name!r}: stream broke off: {e!r}") from e
        yield ModelDone(state.response())

    def __repr__(self) -> str:
        return f"AnthropicModel({self.model!r}, base_url={self.base_url!r})"


# request -------------------------------------------------------------------------------------
def build_request(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    output_schema: OutputSchema | None,
    settings: ModelSettings | None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> tuple[dict[str, Any], str | None]:
    """Keyword arguments for `messages.create`, and the name of the tool that carries
    structured output (None without an output schema)."""
    system, turns = wire_messages(messages)
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        request["system"] = system
    wire_tools = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
    ]
    output_tool = None
    if output_schema is not None:
        output_tool = _free_name(OUTPUT_TOOL, {t.name for t in tools})
        wire_tools.append(
            {
                "name": output_tool,
                "description": f"Give your final answer ({output_schema.name}) as this "
                "tool's input. Call it once, when you have the answer.",
                "input_schema": output_schema.schema,
            }
        )
    if wire_tools:
        request["tools"] = wire_tools
    choice = _tool_choice(getattr(settings, "tool_choice", None), bool(tools), output_tool)
    if choice is not None:
        request["tool_choice"] = choice
    _apply_settings(request, settings)
    return request, output_tool


def _apply_settings(request: dict[str, Any], settings: ModelSettings | None) -> None:
    if settings is None:
        return
    if settings.max_tokens is not None:
        request["max_tokens"] = settings.max_tokens
    body: dict[str, Any] = {}
    if settings.temperature is not None:
        body["temperature"] = settings.temperature  # not a keyword in every SDK version
    body.update(settings.extra)
    if body:
        request["extra_body"] = body


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _tool_choice(choice: Any, has_tools: bool, output_tool: str | None) -> dict[str, Any] | None:
    """Anthropic's `tool_choice` from podium's (`auto`, `required`, `none` or a tool name).
    With structured output the answer tool must be called in the end: forced when the model
    has no other tool to call (or may not call one), else "call some tool"."""
    if choice is None or choice == "auto":
        if output_tool is None:
            return None
        return {"type": "any"} if has_tools else {"type": "tool", "name": output_tool}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"} if output_tool is None else {"type": "tool", "name": output_tool}
    if isinstance(choice, str):
        return {"type": "tool", "name": choice}
    raise UsageError(f"tool_choice must be 'auto', 'required', 'none' or a tool name: {choice!r}")


def wire_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The `system` text and the `messages` turns. Tool results that follow each other share
    one user turn, as the API wants every result of a turn's calls together."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.append(m.content)
        elif m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            last = turns[-1] if turns else None
            if last is not None and last["role"] == "user" and _is_results(last["content"]):
                last["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m.tool_calls
            )
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": m.role, "content": m.content})
    return "\n\n".join(s for s in system if s), turns


def _is_results(content: Any) -> bool:
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


# response ------------------------------------------------------------------------------------
def parse_message(name: str, data: Any, output_tool: str | None) -> ModelResponse:
    """A `ModelResponse` from a Message object (a response body, or one a stream built up);
    anything malformed is a `ModelResponseError` (retryable) that says what is wrong."""
    if not isinstance(data, dict):
        raise ModelResponseError(f"model {name!r}: response is not a JSON object")
    content = data.get("content")
    if not isinstance(content, list):
        raise ModelResponseError(f"model {name!r}: response has no content list")
    stop = data.get("stop_reason")
    finish = _FINISH.get(stop, stop) if isinstance(stop, str) else None
    texts: list[str] = []
    calls: list[ToolCall] = []
    output: Any = None
    answered = False
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            call = _tool_use(name, i, block, stop)
            if call.name == output_tool:
                answered, output = True, call.arguments
                texts.append(block.get("raw_json") or dumps(call.arguments))
            else:
                calls.append(call)
        # thinking blocks and server-side tool blocks carry nothing podium uses
    if output_tool is not None and not calls:
        output = _check_output(name, output_tool, answered, output, "".join(texts), stop)
        finish = "stop" if finish == "tool_calls" else finish
    return ModelResponse(
        text="".join(texts),
        tool_calls=tuple(calls),
        output=output if not calls else None,
        usage=parse_usage(data.get("usage")),
        model=str(data.get("model") or name),
        finish_reason=finish,
    )


def _tool_use(name: str, index: int, block: dict[str, Any], stop: Any) -> ToolCall:
    where = f"model {name!r}: content block {index} (tool_use)"
    call_id, tool = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise ModelResponseError(f"{where} has no 'id'")
    if not isinstance(tool, str) or not tool:
        raise ModelResponseError(f"{where} has no 'name'")
    arguments = block.get("input")
    raw = block.get("raw_json")
    if isinstance(raw, str):  # built up from input_json_delta events
        try:
            arguments = json.loads(raw, strict=False) if raw.strip() else {}
        except ValueError as e:
            cut = (
                " (cut off: stop_reason=max_tokens; raise max_tokens)"
                if stop == "max_tokens"
                else ""
            )
            raise ModelResponseError(
                f"{where} ({tool!r}): input is not valid JSON{cut} ({e}): {raw[:200]!r}"
            ) from None
    if not isinstance(arguments, dict):
        raise ModelResponseError(f"{where} ({tool!r}): input must be a JSON object")
    return ToolCall(call_id, tool, arguments)


def _check_output(name: str, tool: str, answered: bool, output: Any, text: str, stop: Any) -> Any:
    """The structured answer: the answer tool's input. A cut-off answer, or prose where the
    answer tool should have been called, is a `ModelResponseError` that says which."""
    if stop == "max_tokens":
        raise ModelResponseError(
            f"model {name!r}: structured output was cut off at max_tokens "
            "(stop_reason=max_tokens); raise max_tokens in ModelSettings"
        )
    if answered:
        return output
    try:
        parsed = json.loads(text, strict=False)  # some answers put the JSON in text anyway
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    raise ModelResponseError(
        f"model {name!r}: structured output expected as a call of {tool!r}, got text "
        f"(stop_reason={stop}): {text[:120]!r}"
    )


def parse_usage(raw: Any) -> Usage:
    """`input_tokens` in the API counts only uncached input; podium's counts all of it."""
    if not isinstance(raw, dict):
        return Usage(0, 0, 1)
    read = int(raw.get("cache_read_input_tokens") or 0)
    write = int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(
        int(raw.get("input_tokens") or 0) + read + write,
        int(raw.get("output_tokens") or 0),
        1,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


class StreamState:
    """A Message built up from the stream's events (`message_start`, `content_block_*`,
    `message_delta`, `message_stop`); `feed` returns the text each event adds, if any."""

    def __init__(self, name: str, output_tool: str | None) -> None:
        self.name = name
        self.output_tool = output_tool
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.stopped = False

    def feed(self, event: dict[str, Any]) -> str | None:
        kind = event.get("type")
        if kind == "message_start":
            self.message = dict(event.get("message") or {})
            self._add_usage(self.message.get("usage"))
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            if block.get("type") == "tool_use":
                block["raw_json"] = ""
            self.blocks[int(event.get("index", len(self.blocks)))] = block
        elif kind == "content_block_delta":
            return self._delta(event)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self.message["stop_reason"] = delta["stop_reason"]
            self._add_usage(event.get("usage"))
        elif kind == "message_stop":
            self.stopped = True
        return None  # ping, content_block_stop and event types added later carry no text

    def _delta(self, event: dict[str, Any]) -> str | None:
        index = event.get("index")
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None:
            raise ModelResponseError(
                f"model {self.name!r}: stream sent a delta for block {index!r} before it started"
            )
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            text = str(delta.get("text") or "")
            block["text"] = str(block.get("text") or "") + text
            return text
        if delta.get("type") == "input_json_delta":
            part = str(delta.get("partial_json") or "")
            block["raw_json"] += part
            return part if block.get("name") == self.output_tool else None
        return None  # thinking_delta, signature_delta, ...

    def _add_usage(self, usage: Any) -> None:
        """message_delta counts are cumulative: the latest value of each field wins."""
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if v is not None})

    def response(self) -> ModelResponse:
        if not self.stopped:
            raise ProviderError(f"model {self.name!r}: stream ended before message_stop")
        message = {
            **self.message,
            "content": [self.blocks[i] for i in sorted(self.blocks)],
            "usage": self.usage,
        }
        return parse_message(self.name, message, self.output_tool)


def map_error(name: str, sdk: Any, error: Exception) -> Exception:
    """SDK errors into podium's tree: what may pass (429, 5xx, 529 overloaded, a broken
    connection) is a `ProviderError`, retried by the door; what will not is a `ModelError`."""
    if isinstance(error, sdk.APIConnectionError):  # includes APITimeoutError
        return ProviderError(f"model {name!r}: {type(error).__name__}: {error}")
    kind, text = _error_body(error)
    status = getattr(error, "status_code", None)
    if not isinstance(status, int) or status < 400:  # an `error` event inside a 200 stream
        status = _ERROR_STATUS.get(kind or "", 500)
    message = f"model {name!r}: HTTP {status}: {kind + ': ' if kind else ''}{text}"
    if status >= 500 or status in _TRANSIENT_STATUS:
        return ProviderError(message, status=status)
    return ModelError(message, status=status)


def _error_body(error: Exception) -> tuple[str | None, str]:
    """The documented error body: `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = inner.get("type")
            return (str(kind) if kind else None), str(inner.get("message") or error)
    return None, str(getattr(error, "message", None) or error)
