"""`OpenAIModel`: chat completions over the official `openai` SDK.

One class reaches OpenAI and every server that speaks its API (vLLM, Ollama, llama.cpp,
LM Studio): only `base_url` and `api_key` change. They come from the arguments, else from
`PODIUM_MODEL_BASE_URL` / `PODIUM_MODEL_API_KEY`, else from `OPENAI_BASE_URL` /
`OPENAI_API_KEY`.

The SDK's own retries are off by default (`max_retries=0`): the door retries what is
transient (`ProviderError`, `ModelResponseError`) with its own policy, and two retry loops
stacked would multiply the attempts. Nothing outside this module sees the wire format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from podium.errors import ModelError, ModelResponseError, ProviderError, UsageError
from podium.models.base import (
    Message,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolCall,
    ToolSpec,
)
from podium.runtime.records import Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI

_INSTALL_HINT = "OpenAIModel needs the openai SDK: pip install 'podium[openai]'"
_TRANSIENT_STATUS = frozenset({408, 409, 429})


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as e:  # pragma: no cover - the dev install has it
        raise ImportError(_INSTALL_HINT) from e
    return openai


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class OpenAIModel:
    """A model behind an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        settings: ModelSettings | None = None,
        timeout: float | None = None,
        max_retries: int = 0,
        client: AsyncOpenAI | None = None,
    ) -> None:
        if not model:
            raise UsageError("OpenAIModel needs a model name, e.g. OpenAIModel('gpt-4o-mini')")
        self.model = model
        self.name = name or f"openai:{model}"
        self.base_url = base_url or _env("PODIUM_MODEL_BASE_URL", "OPENAI_BASE_URL")
        self._api_key = api_key or _env("PODIUM_MODEL_API_KEY", "OPENAI_API_KEY")
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self._client = client
        self._owns_client = client is None

    @property
    def endpoint(self) -> str:
        """Which server this model talks to; circuit breakers are kept per endpoint."""
        return f"{self.name}@{self.base_url or 'api.openai.com'}"

    @property
    def client(self) -> AsyncOpenAI:
        """The SDK client, made on first use (so a model can be declared before keys exist)."""
        if self._client is None:
            openai = _import_openai()
            key = self._api_key
            if key is None:
                if self.base_url is None:
                    raise UsageError(
                        f"model {self.name!r}: no API key; set PODIUM_MODEL_API_KEY or "
                        "OPENAI_API_KEY, or pass api_key= (or base_url= for a local server)"
                    )
                key = "unused"  # local servers (Ollama, llama.cpp) take any key
            kwargs: dict[str, Any] = {"api_key": key, "max_retries": self.max_retries}
            if self.base_url is not None:
                kwargs["base_url"] = self.base_url
            if self.timeout is not None:
                kwargs["timeout"] = self.timeout
            self._client = openai.AsyncOpenAI(**kwargs)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections this model opened (not a client passed in)."""
        if self._client is not None and self._owns_client:
            client, self._client = self._client, None
            await client.close()

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        request = build_request(
            self.model, messages, tools, output_schema, settings or self.settings
        )
        openai = _import_openai()
        try:
            raw = await self.client.chat.completions.with_raw_response.create(**request)
            body = raw.text
        except openai.APIError as e:
            raise _map_error(self.name, openai, e) from e
        try:
            data = json.loads(body)
        except ValueError:
            raise ModelResponseError(
                f"model {self.name!r}: response body is not JSON: {body[:200]!r}"
            ) from None
        return parse_response(self.name, data, output_schema)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r})"


# request -------------------------------------------------------------------------------------
def build_request(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    output_schema: OutputSchema | None,
    settings: ModelSettings | None,
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, in the documented wire format."""
    request: dict[str, Any] = {"model": model, "messages": [_wire_message(m) for m in messages]}
    if tools:
        request["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in tools
        ]
    if output_schema is not None:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": output_schema.name,
                "schema": output_schema.schema,
                "strict": output_schema.strict,
            },
        }
    if settings is not None:
        for field in ("temperature", "max_tokens", "seed"):
            value = getattr(settings, field)
            if value is not None:
                request[field] = value
        if settings.extra:
            request["extra_body"] = dict(settings.extra)
    return request


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name and message.role in ("system", "user", "assistant"):
        wire["name"] = message.name
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return wire


# response ------------------------------------------------------------------------------------
def parse_response(name: str, data: Any, output_schema: OutputSchema | None) -> ModelResponse:
    """A `ModelResponse` from a chat-completion body; anything malformed is a
    `ModelResponseError` (retryable) that says what is wrong."""
    if not isinstance(data, dict):
        raise ModelResponseError(f"model {name!r}: response is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ModelResponseError(f"model {name!r}: response has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ModelResponseError(f"model {name!r}: choice 0 has no message")
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise ModelResponseError(f"model {name!r}: message content is not a string")
    calls = tuple(
        _parse_tool_call(name, i, c) for i, c in enumerate(message.get("tool_calls") or ())
    )
    output: Any = None
    if output_schema is not None and not calls:
        output = _parse_output(name, text, message.get("refusal"))
    return ModelResponse(
        text=text,
        tool_calls=calls,
        output=output,
        usage=_parse_usage(data.get("usage")),
        model=str(data.get("model") or name),
        finish_reason=choice.get("finish_reason"),
    )


def _parse_tool_call(name: str, index: int, raw: Any) -> ToolCall:
    where = f"model {name!r}: tool call {index}"
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict):
        raise ModelResponseError(f"{where} has no 'function'")
    call_id, tool_name = raw.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise ModelResponseError(f"{where} has no 'id'")
    if not isinstance(tool_name, str) or not tool_name:
        raise ModelResponseError(f"{where} has no function name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError as e:
        raise ModelResponseError(
            f"{where} ({tool_name!r}): arguments are not valid JSON ({e}): {arguments[:200]!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise ModelResponseError(
            f"{where} ({tool_name!r}): arguments must be a JSON object, got {arguments[:200]!r}"
        )
    return ToolCall(call_id, tool_name, parsed)


def _parse_output(name: str, text: str, refusal: Any) -> Any:
    if refusal:
        raise ModelResponseError(f"model {name!r} refused to answer: {refusal}")
    if not text.strip():
        raise ModelResponseError(f"model {name!r}: structured output expected, got no content")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelResponseError(
            f"model {name!r}: structured output is not valid JSON ({e}): {text[:200]!r}"
        ) from None


def _parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage(0, 0, 1)
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0), 1)


def _map_error(name: str, openai: Any, error: Exception) -> Exception:
    """Provider errors into podium's tree: what may pass is `ProviderError` (retried), what
    will not is `ModelError`."""
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return ProviderError(f"model {name!r}: {type(error).__name__}: {error}")
    status = getattr(error, "status_code", None)
    message = f"model {name!r}: HTTP {status}: {_error_message(error)}"
    if isinstance(error, openai.RateLimitError | openai.InternalServerError) or (
        isinstance(status, int) and (status >= 500 or status in _TRANSIENT_STATUS)
    ):
        return ProviderError(message, status=status)
    return ModelError(message, status=status)


def _error_message(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(error, "message", None) or error)
