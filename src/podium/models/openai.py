"""`OpenAIModel`: chat completions over the official `openai` SDK.

One class reaches OpenAI and every server that speaks its API (vLLM, Ollama, llama.cpp,
LM Studio): only `base_url` and `api_key` change. They come from the arguments, else from
`PODIUM_MODEL_BASE_URL` / `PODIUM_MODEL_API_KEY`, else from `OPENAI_BASE_URL` /
`OPENAI_API_KEY`.

Servers differ in how they take structured output, so the request adapts (`OutputMode`):
with `output_mode="auto"` (the default) it starts with `json_schema` and, the first time a
server refuses a mode (a 4xx, or a 5xx whose body is a request-validation error, as
llama.cpp's server sends), steps down to the next mode at once, without retrying the refused
request, and remembers what worked for that base URL and model for the rest of the process.

The SDK's own retries are off by default (`max_retries=0`): the door retries what is
transient (`ProviderError`, `ModelResponseError`) with its own policy, and two retry loops
stacked would multiply the attempts. Nothing outside this module sees the wire format.

An HTTP client belongs to the event loop it was made in (its pooled connections do), and
`Runtime.run_sync` makes a new loop per run: so the model keeps one client per loop and
closes it when that loop shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import weakref
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from podium.core.records import Usage
from podium.core.tools import ToolSpec
from podium.errors import (
    ModelError,
    ModelResponseError,
    ProviderError,
    UsageError,
)
from podium.models._sdk import hide_key, transport_errors
from podium.models.base import (
    OUTPUT_MODES,
    Message,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    OutputMode,
    OutputSchema,
    ToolCall,
)
from podium.models.structured import parse_json_text, truncated, with_schema_in_prompt

if TYPE_CHECKING:
    from openai import AsyncOpenAI

_INSTALL_HINT = "OpenAIModel needs the openai SDK: pip install 'podium[openai]'"
_TRANSIENT_STATUS = frozenset({408, 409, 429})
_NOT_ABOUT_THE_REQUEST = frozenset({401, 402, 403, 404})
_VALIDATION = re.compile(r"\bvalidation errors?\b", re.IGNORECASE)
_ABOUT_OUTPUT = re.compile(r"response_format|json|schema", re.IGNORECASE)

# What worked per (base URL, model), for this process: a server's abilities do not change
# between two requests, and asking the refused mode again costs a round trip every time.
_learned_modes: dict[tuple[str, str], OutputMode] = {}


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
    """A model behind an OpenAI-compatible chat-completions endpoint.

    `output_mode` fixes how structured output is asked for (`"auto"` adapts; see the module
    docstring); `ModelSettings.output_mode` overrides it per agent. A `client` passed in is
    used as is, on whatever loop the caller runs it; otherwise the model makes its own.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        settings: ModelSettings | None = None,
        output_mode: OutputMode = "auto",
        timeout: float | None = None,
        max_retries: int = 0,
        client: AsyncOpenAI | None = None,
    ) -> None:
        if not model:
            raise UsageError("OpenAIModel needs a model name, e.g. OpenAIModel('gpt-4o-mini')")
        if output_mode != "auto" and output_mode not in OUTPUT_MODES:
            raise UsageError(
                f"OpenAIModel {model!r}: output_mode {output_mode!r} is not one of "
                f"{('auto', *OUTPUT_MODES)}"
            )
        self.model = model
        self.name = name or f"openai:{model}"
        self.base_url = base_url or _env("PODIUM_MODEL_BASE_URL", "OPENAI_BASE_URL")
        self._api_key = api_key or _env("PODIUM_MODEL_API_KEY", "OPENAI_API_KEY")
        self.settings = settings
        self.output_mode: OutputMode = output_mode
        self.timeout = timeout
        self.max_retries = max_retries
        self._given = client
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncOpenAI, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    @property
    def endpoint(self) -> str:
        """Which server this model talks to; circuit breakers are kept per endpoint."""
        return f"{self.name}@{self.base_url or 'api.openai.com'}"

    @property
    def learned_output_mode(self) -> OutputMode | None:
        """The structured-output mode this process found the server takes, once it has asked."""
        return _learned_modes.get(self._mode_key)

    @property
    def _mode_key(self) -> tuple[str, str]:
        return (self.base_url or "api.openai.com", self.model)

    def _new_client(self) -> AsyncOpenAI:
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
        client: AsyncOpenAI = openai.AsyncOpenAI(**kwargs)
        return client

    async def _client(self) -> AsyncOpenAI:
        """This loop's client, made on first use (so a model can be declared before keys
        exist). Its connections live in this loop: a client reused from a loop that has
        closed fails with 'Event loop is closed'."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        bound = self._per_loop.get(loop)
        if bound is None:
            client = self._new_client()
            closer = _close_with_loop(client, self._per_loop)
            await anext(closer)  # the loop now tracks it, and closes it at shutdown
            bound = self._per_loop[loop] = (client, closer)
        return bound[0]

    async def aclose(self) -> None:
        """Close the HTTP connections this model opened in this loop (not a client passed
        in). Without it they are closed when the loop shuts down (`asyncio.run`'s end)."""
        bound = self._per_loop.pop(asyncio.get_running_loop(), None)
        if bound is not None:
            await bound[1].aclose()

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
        merged = settings.over(self.settings) if settings is not None else self.settings
        ladder = _Ladder(self, output_schema, merged)
        for mode in ladder.modes:
            request = build_request(self.model, messages, tools, output_schema, merged, mode)
            try:
                response = await self._complete(request, output_schema, merged)
            except ModelError as e:
                ladder.refused(mode, e)
                continue
            ladder.worked(mode)
            return response
        raise ladder.exhausted()

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncGenerator[ModelStreamEvent, None]:
        """The answer as the server writes it (`stream=True`, with usage asked for in the last
        chunk): text, and structured output's JSON, in deltas; tool calls assembled from
        theirs; then the whole response, read as `respond` reads one. The request, the
        structured-output modes and the errors are `respond`'s: a refusal comes before the
        first delta, so stepping down to the next mode streams nothing twice."""
        merged = settings.over(self.settings) if settings is not None else self.settings
        ladder = _Ladder(self, output_schema, merged)
        for mode in ladder.modes:
            request = build_request(
                self.model, messages, tools, output_schema, merged, mode, stream=True
            )
            try:
                chunks = await self._open_stream(request)
            except ModelError as e:
                ladder.refused(mode, e)
                continue
            ladder.worked(mode)
            state = StreamState(self.name, _estimate_tokens(request))
            async with contextlib.aclosing(self._read_stream(chunks, state)) as deltas:
                async for delta in deltas:
                    yield delta
            max_tokens = merged.max_tokens if merged is not None else None
            yield ModelDone(parse_response(self.name, state.body(), output_schema, max_tokens))
            return
        raise ladder.exhausted()

    def _modes(self, settings: ModelSettings | None) -> tuple[OutputMode, ...]:
        """The modes to try, in order: one when fixed, else from the learned (or strongest)
        mode down."""
        fixed = settings.output_mode if settings is not None else None
        if fixed is None or fixed == "auto":
            fixed = self.output_mode
        if fixed != "auto":
            return (fixed,)
        start = _learned_modes.get(self._mode_key, OUTPUT_MODES[0])
        return OUTPUT_MODES[OUTPUT_MODES.index(start) :]

    async def _open_stream(self, request: dict[str, Any]) -> Any:
        """The SDK's chunk stream; the HTTP status is checked here, before any chunk."""
        openai = _import_openai()
        client = await self._client()
        try:
            return await client.chat.completions.create(**request)
        except openai.APIError as e:
            raise hide_key(_map_error(self.name, openai, e), self._api_key) from e

    async def _read_stream(
        self, chunks: Any, state: StreamState
    ) -> AsyncGenerator[ModelDelta, None]:
        openai = _import_openai()
        try:
            try:
                async for chunk in chunks:
                    text = state.feed(chunk.to_dict())
                    if text:
                        yield ModelDelta(text)
            finally:
                await chunks.close()
        except openai.APIError as e:  # an error event inside the 200 stream, or a cut
            raise hide_key(_map_error(self.name, openai, e, state.usage()), self._api_key) from e
        except transport_errors() as e:
            raise ProviderError(
                f"model {self.name!r}: stream broke off: {e!r}", usage=state.usage()
            ) from e
        state.check_finished()

    async def _complete(
        self,
        request: dict[str, Any],
        output_schema: OutputSchema | None,
        settings: ModelSettings | None,
    ) -> ModelResponse:
        openai = _import_openai()
        client = await self._client()
        try:
            raw = await client.chat.completions.with_raw_response.create(**request)
            body = raw.text
        except openai.APIError as e:
            raise hide_key(_map_error(self.name, openai, e), self._api_key) from e
        try:
            data = json.loads(body)
        except ValueError:
            raise ModelResponseError(
                f"model {self.name!r}: response body is not JSON: {body[:200]!r}"
            ) from None
        max_tokens = settings.max_tokens if settings is not None else None
        return parse_response(self.name, data, output_schema, max_tokens)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r})"


class _Ladder:
    """The structured-output modes one request tries, strongest first, and what it learns:
    shared by `respond` and `stream`. A refusal steps down once (never the same request
    again); a refusal that is not about the mode, or of the only mode, is raised."""

    __slots__ = ("model", "modes", "refusals")

    def __init__(
        self, model: OpenAIModel, output_schema: OutputSchema | None, settings: ModelSettings | None
    ) -> None:
        self.model = model
        # Without an output schema the mode does not shape the request: one try.
        self.modes = OUTPUT_MODES[:1] if output_schema is None else model._modes(settings)
        self.refusals: list[str] = []

    def refused(self, mode: OutputMode, error: ModelError) -> None:
        if len(self.modes) == 1 or not _refuses_request(error):
            raise error
        self.refusals.append(f"{mode}: {error}")

    def worked(self, mode: OutputMode) -> None:
        if len(self.modes) > 1:
            _learned_modes[self.model._mode_key] = mode

    def exhausted(self) -> ModelError:
        return ModelError(
            f"model {self.model.name!r} refused every structured-output mode "
            f"({'; '.join(self.refusals)}); set output_mode= to one the server takes",
            status=None,
        )


async def _close_with_loop(
    client: AsyncOpenAI,
    per_loop: weakref.WeakKeyDictionary[Any, Any],
) -> AsyncGenerator[None, None]:
    """Suspended for the life of a loop: the loop closes its async generators when it shuts
    down (`asyncio.run`, `asyncio.Runner`), which closes the client while the loop can still
    run the close. (It must not hold the loop itself, or the weak map would never let go.)"""
    try:
        yield
    finally:
        per_loop.pop(asyncio.get_running_loop(), None)
        await client.close()


def _refuses_request(error: ModelError) -> bool:
    """Whether the server refused the way structured output was asked for, so another mode
    may pass: a refusal of the request (not of the caller: auth, billing, an unknown model)
    whose message is about JSON, a schema or `response_format`. Any other refusal (a
    context too long, say) would only be refused again in every mode."""
    if error.status is None or error.status in _NOT_ABOUT_THE_REQUEST:
        return False
    return _ABOUT_OUTPUT.search(str(error)) is not None


# request -------------------------------------------------------------------------------------
def build_request(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    output_schema: OutputSchema | None,
    settings: ModelSettings | None,
    mode: OutputMode = "json_schema",
    *,
    stream: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, in the documented wire format, with
    structured output asked for in `mode`; with `stream`, as server-sent chunks whose last
    one carries the usage."""
    if output_schema is not None and mode in ("json_object", "prompt"):
        messages = with_schema_in_prompt(messages, output_schema)
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
    if output_schema is not None and mode != "prompt":
        request["response_format"] = _response_format(output_schema, mode)
    if settings is not None:
        for field in ("temperature", "max_tokens", "seed"):
            value = getattr(settings, field)
            if value is not None:
                request[field] = value
        if tools and settings.tool_choice is not None:
            request["tool_choice"] = _tool_choice(settings.tool_choice)
        if settings.extra:
            request["extra_body"] = dict(settings.extra)
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _response_format(schema: OutputSchema, mode: OutputMode) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
        }
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema.schema}
    return {"type": "json_object"}


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    # Content is always a string, "" beside tool calls too: OpenAI takes null there, but
    # servers that validate the documented types strictly (llama.cpp's) refuse it.
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name and message.role in ("system", "user", "assistant"):
        wire["name"] = message.name
    if message.tool_calls:
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
def parse_response(
    name: str,
    data: Any,
    output_schema: OutputSchema | None,
    max_tokens: int | None = None,
) -> ModelResponse:
    """A `ModelResponse` from a chat-completion body. Anything malformed is a
    `ModelResponseError` (retryable) that says what is wrong and carries the tokens spent.

    With an output schema, `output` is the answer's JSON, read leniently; it stays None when
    the text is not JSON, for the caller to send the problem back to the model."""
    if not isinstance(data, dict):
        raise ModelResponseError(f"model {name!r}: response is not a JSON object")
    usage = _parse_usage(data.get("usage"))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ModelResponseError(f"model {name!r}: response has no choices", usage=usage)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ModelResponseError(f"model {name!r}: choice 0 has no message", usage=usage)
    finish = choice.get("finish_reason")
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise ModelResponseError(f"model {name!r}: message content is not a string", usage=usage)
    try:
        calls = tuple(
            _parse_tool_call(name, i, c) for i, c in enumerate(message.get("tool_calls") or ())
        )
    except ModelResponseError as e:
        if finish == "length":
            raise truncated(name, "tool call", max_tokens, usage) from None
        e.usage = usage
        raise
    output: Any = None
    if output_schema is not None and not calls:
        refusal = message.get("refusal")
        if refusal:
            raise ModelResponseError(f"model {name!r} refused to answer: {refusal}", usage=usage)
        try:
            output = parse_json_text(text) if text.strip() else None
        except ValueError:
            output = None
    return ModelResponse(
        text=text,
        tool_calls=calls,
        output=output,
        usage=usage,
        model=str(data.get("model") or name),
        finish_reason=finish,
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
        parsed = parse_json_text(arguments) if isinstance(arguments, str) else arguments
    except ValueError as e:
        raise ModelResponseError(
            f"{where} ({tool_name!r}): arguments are not valid JSON ({e}): {arguments[:200]!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise ModelResponseError(
            f"{where} ({tool_name!r}): arguments must be a JSON object, got {arguments[:200]!r}"
        )
    return ToolCall(call_id, tool_name, parsed)


def _parse_usage(raw: Any) -> Usage:
    """`prompt_tokens` counts every input token; `prompt_tokens_details.cached_tokens` says
    how many of them were read from OpenAI's prompt cache (priced lower)."""
    if not isinstance(raw, dict):
        return Usage(0, 0, 1)
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        int(raw.get("prompt_tokens") or 0),
        int(raw.get("completion_tokens") or 0),
        1,
        cache_read_tokens=int(cached or 0),
    )


class StreamState:
    """A chat completion built up from its chunks (`chat.completion.chunk`): the text, each
    tool call by its `index` (id and name from the first chunk that has them, arguments
    joined), the finish reason, and the usage of the last chunk. `feed` returns the text a
    chunk adds. Only choice 0 is read: podium asks for one.

    A server that sends no usage (llama.cpp's does not, in a stream) is counted: one output
    token per chunk that carried text or arguments (servers send a token a chunk), and the
    request's size at about four characters a token for the input."""

    __slots__ = ("_usage", "calls", "estimate", "finish", "model", "name", "pieces", "text")

    def __init__(self, name: str, estimate: int) -> None:
        self.name = name
        self.estimate = estimate
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish: str | None = None
        self.model = ""
        self.pieces = 0
        self._usage: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> str | None:
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        self.model = self.model or str(chunk.get("model") or "")
        choices = chunk.get("choices") or ()
        choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)
        if choice is None:
            return None
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        for i, call in enumerate(delta.get("tool_calls") or ()):
            self._add_call(i, call)
        text = delta.get("content")
        if not isinstance(text, str) or not text:
            return None
        self.text.append(text)
        self.pieces += 1
        return text

    def _add_call(self, position: int, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise ModelResponseError(f"model {self.name!r}: a tool-call delta is not an object")
        index = raw.get("index", position)
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = raw.get("function") or {}
        call["id"] = call["id"] or str(raw.get("id") or "")
        call["name"] = call["name"] or str(function.get("name") or "")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call["arguments"] += arguments
            self.pieces += 1

    def usage(self) -> Usage:
        """What the stream cost: the server's count, or the estimate when it sent none."""
        if self._usage is not None:
            return _parse_usage(self._usage)
        return Usage(self.estimate, self.pieces, 1)

    def check_finished(self) -> None:
        """A stream that ends without a finish reason was cut short (a proxy closed it, the
        server died): retryable, with what it cost so far."""
        if self.finish is None:
            raise ProviderError(
                f"model {self.name!r}: stream ended before the answer finished (no finish_reason)",
                usage=self.usage(),
            )

    def body(self) -> dict[str, Any]:
        """The chat.completion this stream amounts to, for `parse_response`."""
        calls = [
            {
                "id": c["id"] or f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for i, c in sorted(self.calls.items())
        ]
        u = self.usage()
        return {
            "model": self.model or None,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(self.text),
                        "tool_calls": calls,
                    },
                    "finish_reason": self.finish,
                }
            ],
            "usage": {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens},
        }


def _estimate_tokens(request: dict[str, Any]) -> int:
    """About four characters a token: the request's messages and tools, as sent."""
    sent = json.dumps(request.get("messages", ())) + json.dumps(request.get("tools", ()))
    return max(1, len(sent) // 4)


def _map_error(name: str, openai: Any, error: Exception, usage: Usage | None = None) -> Exception:
    """Provider errors into podium's tree: what may pass is `ProviderError` (retried), what
    will not is `ModelError`. A 5xx whose body is a request-validation error (llama.cpp's
    server answers a request it cannot parse with a 500) will not pass either: sending the
    same request again gets the same answer. An error event inside a stream (no status: the
    response was a 200) is the server failing mid-answer, a `ProviderError`, unless it says
    the request was invalid; it carries the `usage` of what was streamed before it."""
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return ProviderError(f"model {name!r}: {type(error).__name__}: {error}", usage=usage)
    status = getattr(error, "status_code", None)
    detail = _error_message(error)
    if status is None:
        body = getattr(error, "body", None)
        kind = body.get("type") if isinstance(body, dict) else None
        message = f"model {name!r}: error in the stream: {detail}"
        if kind == "invalid_request_error":
            return ModelError(message, usage=usage)
        return ProviderError(message, usage=usage)
    message = f"model {name!r}: HTTP {status}: {detail}"
    if isinstance(status, int) and status >= 500 and _VALIDATION.search(detail):
        return ModelError(f"{message} (the server could not take this request)", status=status)
    if isinstance(error, openai.RateLimitError | openai.InternalServerError) or (
        isinstance(status, int) and (status >= 500 or status in _TRANSIENT_STATUS)
    ):
        return ProviderError(message, status=status)
    return ModelError(message, status=status)


def _error_message(error: Exception) -> str:
    body = getattr(error, "body", None)
    text: str | None = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            text = str(inner["message"])
    if text is None:
        text = str(getattr(error, "message", None) or error)
    return _trim(text)


def _trim(text: str, limit: int = 600) -> str:
    """One line, bounded: servers put tracebacks and whole request bodies in messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."
