"""`LocalModel`: a GGUF model run in-process by llama.cpp (`pip install 'podium[local]'`,
which brings `llama-cpp-python`), for those who want no model server at all.

    LocalModel("models/gemma-3-270m-q4_k_m.gguf")   # or resolve_model("local:models/...gguf")

The model file is loaded once per process (per file and load options), on first use, and
shared by every `LocalModel` that names it. llama.cpp blocks while it works, so every call
runs in a worker thread, one at a time per loaded model (llama.cpp's context is not
thread-safe); the event loop stays free for the rest of the run.

How podium's request maps onto llama.cpp's chat completion (`create_chat_completion`):

- the chat format defaults to `chatml-function-calling`, llama.cpp's handler that can call
  tools; `chat_format=None` lets llama.cpp pick the GGUF file's own template instead;
- tools travel as OpenAI-style functions with `tool_choice="auto"` (a tool name from
  `ModelSettings.tool_choice` forces that tool). That handler's template has no place for
  tool results, so they are given to the model as user turns that name the tool;
- structured output without tools is constrained by a grammar made from the JSON Schema
  (`response_format={"type": "json_object", "schema": ...}`); with tools, the schema is one
  more tool (`final_result`) whose arguments are the answer;
- usage is llama.cpp's token count. A streamed answer is counted from llama.cpp's context
  after the stream (llama.cpp reports no usage when streaming), every sampled token included;
- `max_tokens`: `ModelSettings.max_tokens`, else the model's `max_tokens`, else llama.cpp
  writes until it stops or the context (`n_ctx`) is full.

`stream` yields text as llama.cpp samples it. With tools, llama.cpp cannot stream (it must
first decide between a tool and text), so the answer comes as one delta.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.core.records import Usage
from podium.core.tools import ToolSpec
from podium.errors import ModelError, ModelResponseError, UsageError
from podium.models._sdk import check_installed, import_sdk
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

DEFAULT_CHAT_FORMAT = "chatml-function-calling"
DEFAULT_CONTEXT = 4096
OUTPUT_TOOL = "final_result"
_SDK = ("LocalModel", "llama_cpp", "local")


@dataclass(slots=True)
class _Loaded:
    """One llama.cpp model in memory, and the lock that lets one call use it at a time."""

    llama: Any
    lock: threading.Lock


_LOADED: dict[tuple[Any, ...], _Loaded] = {}
_LOADING = threading.Lock()


def _load(path: str, chat_format: str | None, n_ctx: int, n_threads: int | None) -> _Loaded:
    """The model for these load options, loaded now if this process has not yet (blocking)."""
    key = (path, chat_format, n_ctx, n_threads)
    with _LOADING:
        loaded = _LOADED.get(key)
        if loaded is None:
            llama_cpp = import_sdk(*_SDK)
            try:
                llama = llama_cpp.Llama(
                    model_path=path,
                    chat_format=chat_format,
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    verbose=False,
                )
            except ValueError as e:  # llama.cpp's word for "could not load this file"
                raise ModelError(f"model 'local:{path}' could not be loaded: {e}") from e
            loaded = _LOADED[key] = _Loaded(llama, threading.Lock())
    return loaded


class LocalModel:
    """A GGUF model run by llama.cpp inside this process; streams too (`stream`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        settings: ModelSettings | None = None,
        chat_format: str | None = DEFAULT_CHAT_FORMAT,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        check_installed(*_SDK)
        file = Path(path).expanduser()
        if not file.is_file():
            raise UsageError(f"LocalModel: no model file at {str(path)!r} (a .gguf file)")
        if n_ctx < 1:
            raise UsageError(f"LocalModel: n_ctx must be positive, got {n_ctx!r}")
        self.path = str(file.resolve())
        self.name = name or f"local:{path}"
        self.settings = settings
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_tokens = max_tokens

    @property
    def endpoint(self) -> str:
        """What a circuit breaker guards: the model file."""
        return f"local:{self.path}"

    async def load(self) -> Any:
        """Load the model now rather than on first use; the `llama_cpp.Llama`, shared by every
        `LocalModel` of the same file and load options in this process."""
        loaded = await asyncio.to_thread(self._loaded)
        return loaded.llama

    def _loaded(self) -> _Loaded:
        return _load(self.path, self.chat_format, self.n_ctx, self.n_threads)

    def _request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output_schema: OutputSchema | None,
        settings: ModelSettings | None,
    ) -> tuple[dict[str, Any], str | None]:
        return build_request(
            messages,
            tools,
            output_schema,
            settings or self.settings,
            self.max_tokens,
            tool_results_as_user=self.chat_format == DEFAULT_CHAT_FORMAT,
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
        loaded = await asyncio.to_thread(self._loaded)
        data = await asyncio.to_thread(_complete, self.name, loaded, request)
        return parse_completion(self.name, data, output_tool, "response_format" in request)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Text as llama.cpp samples it, then the whole response."""
        request, _ = self._request(messages, tools, output_schema, settings)
        if "tools" in request:  # llama.cpp cannot stream its choice between tools and text
            response = await self.respond(
                messages, tools=tools, output_schema=output_schema, settings=settings
            )
            if response.text:
                yield ModelDelta(response.text)
            yield ModelDone(response)
            return
        loaded = await asyncio.to_thread(self._loaded)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = asyncio.ensure_future(
            asyncio.to_thread(_produce, self.name, loaded, request, put, stop)
        )
        parts: list[str] = []
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise value
                if kind == "end":
                    break
                parts.append(value)
                yield ModelDelta(value)
        finally:
            stop.set()  # a consumer that stops early frees the model at the next token
            await worker
        finish, usage = value
        data = {
            "model": self.path,
            "choices": [{"message": {"content": "".join(parts)}, "finish_reason": finish}],
            "usage": usage,
        }
        yield ModelDone(parse_completion(self.name, data, None, "response_format" in request))

    def __repr__(self) -> str:
        return f"LocalModel({self.path!r})"


# calls into llama.cpp (worker threads) -----------------------------------------------------------
def _complete(name: str, loaded: _Loaded, request: dict[str, Any]) -> Any:
    with loaded.lock:
        try:
            return loaded.llama.create_chat_completion(**request)
        except ValueError as e:  # a prompt longer than the context, an unknown tool, ...
            raise ModelError(f"model {name!r}: {e}") from e


class _Counted:
    """The `Llama` as a chat handler sees it, noting how many tokens the prompt it renders
    has: llama.cpp reports no usage when it streams."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self.prompt_tokens = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(prompt, str):
            self.prompt_tokens = len(self._llama.tokenize(prompt.encode("utf-8"), special=True))
        else:
            self.prompt_tokens = len(prompt)
        return self._llama.create_completion(prompt, *args, **kwargs)


def _produce(
    name: str,
    loaded: _Loaded,
    request: dict[str, Any],
    put: Callable[[tuple[str, Any]], None],
    stop: threading.Event,
) -> None:
    """Stream one completion into `put`: ("text", str)..., then ("end", (finish, usage)), or
    ("error", exception)."""
    try:
        with loaded.lock:
            llama = loaded.llama
            counted = _Counted(llama)
            handler = (
                llama.chat_handler
                or getattr(llama, "_chat_handlers", {}).get(llama.chat_format)
                or import_sdk(*_SDK).llama_chat_format.get_chat_completion_handler(
                    llama.chat_format
                )
            )
            chunks = handler(llama=counted, **request, stream=True)
            finish = None
            for chunk in chunks:
                if stop.is_set():
                    break
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    put(("text", text))
                finish = choice.get("finish_reason") or finish
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            # every sampled token: the context holds all of them but the last
            written = max(0, llama.n_tokens - counted.prompt_tokens + 1)
            usage = {"prompt_tokens": counted.prompt_tokens, "completion_tokens": written}
        put(("end", (finish, usage)))
    except ValueError as e:
        put(("error", ModelError(f"model {name!r}: {e}")))
    except Exception as e:  # handed to the caller, in its own task
        put(("error", e))


# request -------------------------------------------------------------------------------------
def build_request(
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    output_schema: OutputSchema | None,
    settings: ModelSettings | None,
    max_tokens: int | None = None,
    *,
    tool_results_as_user: bool = True,
) -> tuple[dict[str, Any], str | None]:
    """Keyword arguments for `create_chat_completion`, and the name of the tool that carries
    structured output when there are tools (None otherwise)."""
    request: dict[str, Any] = {
        "messages": [_wire_message(m, tool_results_as_user) for m in messages]
    }
    choice = getattr(settings, "tool_choice", None)
    use_tools = bool(tools) and choice != "none"
    output_tool = None
    if use_tools:
        wire = [_function(t.name, t.description, t.parameters) for t in tools]
        if output_schema is not None:
            output_tool = _free_name(OUTPUT_TOOL, {t.name for t in tools})
            wire.append(
                _function(
                    output_tool,
                    f"Give your final answer ({output_schema.name}) as this function's input.",
                    output_schema.schema,
                )
            )
        request["tools"] = wire
        request["tool_choice"] = _tool_choice(choice, wire)
    elif output_schema is not None:
        request["response_format"] = {"type": "json_object", "schema": output_schema.schema}
    if settings is not None:
        for field in ("temperature", "max_tokens", "seed"):
            value = getattr(settings, field)
            if value is not None:
                request[field] = value
        request.update(settings.extra)
    if "max_tokens" not in request and max_tokens is not None:
        request["max_tokens"] = max_tokens
    return request, output_tool


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _tool_choice(choice: Any, wire: list[dict[str, Any]]) -> Any:
    """llama.cpp's handler knows `auto` and a named function; `required` with one function
    can be that function."""
    if choice is None or choice == "auto":
        return "auto"
    if choice == "required":
        if len(wire) == 1:
            return {"type": "function", "function": {"name": wire[0]["function"]["name"]}}
        return "auto"
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    raise UsageError(f"tool_choice must be 'auto', 'required', 'none' or a tool name: {choice!r}")


def _wire_message(message: Message, tool_results_as_user: bool) -> dict[str, Any]:
    if message.role == "tool":
        if tool_results_as_user:
            return {
                "role": "user",
                "content": f"functions.{message.name or 'tool'} returned:\n{message.content}",
            }
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
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
def parse_completion(
    name: str, data: Any, output_tool: str | None, json_answer: bool
) -> ModelResponse:
    """A `ModelResponse` from llama.cpp's chat completion (OpenAI's shape); a malformed or
    cut-off answer is a `ModelResponseError` that says which."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ModelResponseError(f"model {name!r}: completion has no message") from None
    finish = choice.get("finish_reason")
    text = str(message.get("content") or "")
    calls = [_tool_call(name, i, c, finish) for i, c in enumerate(message.get("tool_calls") or ())]
    output: Any = None
    answers = [i for i, c in enumerate(calls) if c.name == output_tool]
    if answers and len(calls) == 1:  # the answer: its JSON is the text
        output, finish = calls.pop().arguments, "stop"
        text = str(message["tool_calls"][0]["function"].get("arguments") or "")
    elif answers:  # other tools first; the model answers once it has their results
        calls = [c for c in calls if c.name != output_tool]
    elif json_answer and not calls:
        output = _parse_json(f"model {name!r}", text, finish)
    raw = data.get("usage") or {}
    usage = Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0), 1)
    return ModelResponse(
        text=text,
        tool_calls=tuple(calls),
        output=output,
        usage=usage,
        model=str(data.get("model") or name),
        finish_reason=finish,
    )


def _tool_call(name: str, index: int, raw: Any, finish: Any) -> ToolCall:
    where = f"model {name!r}: tool call {index}"
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise ModelResponseError(f"{where} has no function name")
    arguments = _parse_json(
        f"{where} ({function['name']!r})", function.get("arguments") or "{}", finish
    )
    return ToolCall(str(raw.get("id") or f"call_{index}"), str(function["name"]), arguments)


def _parse_json(where: str, text: Any, finish: Any) -> dict[str, Any]:
    text = str(text)
    try:
        value = json.loads(text, strict=False)
    except ValueError as e:
        cut = " (cut off: finish_reason=length; raise max_tokens)" if finish == "length" else ""
        raise ModelResponseError(
            f"{where}: answer is not valid JSON{cut} ({e}): {text[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise ModelResponseError(f"{where}: answer must be a JSON object, got {text[:200]!r}")
    return value
