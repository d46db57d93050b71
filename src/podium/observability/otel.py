"""OpenTelemetry spans for runs, one per step, named and attributed as the GenAI semantic
conventions say (https://opentelemetry.io/docs/specs/semconv/gen-ai/).

    from opentelemetry.sdk.trace import TracerProvider
    rt = Runtime(tracer_provider=TracerProvider())   # or Runtime(tracing=True): the global one

The spans nest as the run tree does: the root agent's step, each agent it calls
(`invoke_agent NAME`), each model call (`chat MODEL`) and tool call (`execute_tool NAME`),
with `gen_ai.*` attributes plus `podium.run_id` and `podium.step`. A step's parent is found
by its step key, not by whichever span happens to be current, so parallel branches and
batched calls nest right; the step's span is also made current while it runs, so spans of
instrumented libraries (an HTTP client) nest under it.

What a step says is off by default: with `Tracing(content=True)` (or `PODIUM_OTEL_CONTENT=1`)
inputs and outputs go into `gen_ai.input.messages` / `gen_ai.output.messages` (models,
agents) and `gen_ai.tool.call.arguments` / `gen_ai.tool.call.result` (tools), in the form the
run stores them: secrets masked, and with `Runtime(pii=...)` personal data as tokens.

Retries, cache hits, policy decisions and other events of a step become span events; a step
that fails ends with status ERROR and `error.type`; a step that waits for a person (or is
parked) is not an error: its span ends with `podium.step.status = suspended`. A resumed run
continues the trace it started: the root span's context is kept with the run as its
`trace.started` event (`TRACE_STARTED`), and the resumed process's root span is its child.

This module imports `opentelemetry` and nothing of the runtime: the runtime hands it a call
(see `TracedCall`) and what to keep. A runtime with no tracing configured never loads it,
and its runs never enter the door's `trace` slot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from podium.core.records import Event, Usage
from podium.core.serde import to_plain
from podium.errors import Parked, StepError, Suspended
from podium.observability.tracing import TRACE_STARTED

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from podium.observability.lean import Lean

__all__ = ["TRACE_STARTED", "RunTrace", "run_trace", "trace_middleware"]


# The GenAI semantic conventions' names (development status, 2025-2026).
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
PROVIDER = "gen_ai.provider.name"
CONVERSATION = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

_OPERATIONS = {"agent": "invoke_agent", "model": "chat", "tool": "execute_tool"}
_PROVIDERS = ("openai", "anthropic", "local", "scripted")
# Events the door emits for every step anyway: the span itself says all they say.
_SPAN_SAYS = frozenset(
    {
        "step.started",
        "step.completed",
        "step.failed",
        "step.suspended",
        "step.cancelled",
        TRACE_STARTED,
    }
)


class _Run(Protocol):
    """What the trace reads of a run (`podium.runtime.context.RunState`)."""

    run_id: str
    trace: RunTrace | None
    scrub: Callable[[Any], Any]
    scrub_text: Callable[[str | None], str | None]


class TracedCall(Protocol):
    """What the trace reads of one hop through the door (`podium.runtime.door.Call`)."""

    run: Any
    parent: str
    agent: str
    target: Any
    name: str
    kind: str
    key: str
    input: Any
    attempt: int
    usage: Usage | None


class RunTrace:
    """One run's spans in one process: the open ones by step key (a step's parent is found
    by its key), the context the root span hangs from, and whether content is captured.
    `stored` is the data of the run's `trace.started` event, when it has one (a resume);
    otherwise the root span's start emits it, so a resume in any process continues it."""

    __slots__ = (
        "_open",
        "_root",
        "content",
        "lean",
        "parent",
        "resumed",
        "run_id",
        "started",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        run_id: str,
        *,
        content: bool = False,
        stored: Mapping[str, Any] | None = None,
        lean: Lean | None = None,
    ) -> None:
        self.tracer = tracer
        self.lean = lean  # the provider's spans made lean (see `podium.observability.lean`)
        self.run_id = run_id
        self.content = content
        # A fresh run hangs from whatever span is current (a request that started it);
        # a resumed one from its first root span, kept with the run.
        remote = None if stored is None else _remote(stored)
        self.resumed = remote is not None
        self.parent = otel_context.get_current() if remote is None else remote
        self.started = remote is not None  # the run's trace.started event exists
        self._root = otel_trace.get_current_span(self.parent).get_span_context()
        self._open: dict[str, Span] = {}

    def start(self, call: TracedCall) -> Span:
        kind = str(call.kind)
        operation = _OPERATIONS.get(kind, kind)
        parent_span = self._open.get(call.parent)
        attrs: dict[str, Any] = {
            OPERATION: operation,
            "podium.run_id": self.run_id,
            "podium.step": call.key,
        }
        if kind == "model":
            model = getattr(call.target, "model_name", None) or call.name
            attrs[REQUEST_MODEL] = model
            provider, sep, _ = model.partition(":")
            if sep and provider in _PROVIDERS:
                attrs[PROVIDER] = provider
            if call.agent:
                attrs[AGENT_NAME] = call.agent
            name = f"chat {model}"
            span_kind = SpanKind.CLIENT
        elif kind == "tool":
            attrs[TOOL_NAME] = call.name
            attrs[TOOL_TYPE] = "function"
            name = f"execute_tool {call.name}"
            span_kind = SpanKind.INTERNAL
        else:
            attrs[AGENT_NAME] = call.name
            name = f"{operation} {call.name}"
            span_kind = SpanKind.INTERNAL
        if not call.parent:  # each attribute costs the SDK ~1 us per span: the run's id once
            attrs[CONVERSATION] = self.run_id
            attrs["podium.root"] = True
            if self.resumed:
                attrs["podium.resumed"] = True
        if self.content:
            attrs[TOOL_ARGUMENTS if kind == "tool" else INPUT_MESSAGES] = self._text(
                call.run, call.input
            )
        if self.lean is not None:
            above = self._root if parent_span is None else parent_span.get_span_context()
            span = self.lean.start(name, above, span_kind, attrs)
        else:
            ctx = self.parent
            if parent_span is not None:
                ctx = otel_trace.set_span_in_context(parent_span)
            span = self.tracer.start_span(name, ctx, span_kind, attrs)
        self._open[call.key] = span
        return span

    def completed(self, span: Span, call: TracedCall, output: Any) -> None:
        self._usage(span, call)
        if str(call.kind) == "model":
            model = getattr(output, "model", None)
            if model:
                span.set_attribute(RESPONSE_MODEL, model)
            reason = getattr(output, "finish_reason", None)
            if reason:
                span.set_attribute(FINISH_REASONS, (reason,))
        if self.content:
            key = TOOL_RESULT if str(call.kind) == "tool" else OUTPUT_MESSAGES
            span.set_attribute(key, self._text(call.run, output))
        self._end(span, call)

    def failed(self, span: Span, call: TracedCall, error: BaseException) -> None:
        self._usage(span, call)  # failed attempts were paid for
        cause = error.cause if isinstance(error, StepError) else error
        kind = _type_name(cause)
        message = call.run.scrub_text(f"{type(error).__name__}: {error}") or ""
        span.set_attribute(ERROR_TYPE, kind)
        span.add_event("exception", {"exception.type": kind, "exception.message": message})
        span.set_status(Status(StatusCode.ERROR, message))
        self._end(span, call)

    def stopped(self, span: Span, call: TracedCall, status: str, reason: str) -> None:
        """A step that waits (a person, the outside world), was parked or cancelled: not an
        error, and not done; its span ends, marked, and a resume opens a new one."""
        self._usage(span, call)
        span.set_attribute("podium.step.status", status)
        if reason:
            span.add_event(f"podium.{status}", {"reason": call.run.scrub_text(reason) or ""})
        self._end(span, call)

    def on_event(self, event: Event) -> None:
        """A run listener: a step's events (retries, cache hits, policy decisions, approval
        requests) become events of its open span. Their data was scrubbed when emitted."""
        if event.kind in _SPAN_SAYS:
            return
        span = self._open.get(event.key)
        if span is None:
            return
        attrs: dict[str, Any] = {"podium.attempt": event.attempt} if event.attempt else {}
        for k, v in (event.data or {}).items():
            if isinstance(v, str | bool | int | float):
                attrs[f"podium.{k}"] = v
        span.add_event(event.kind, attrs)

    def root_started(self, span: Span, call: TracedCall) -> None:
        """Keep the first root span's context with the run: its `trace.started` event
        (journaled with the run's next write, no round trip of its own)."""
        self.started = True
        sc = span.get_span_context()
        if sc.is_valid:
            data = {
                "trace_id": format(sc.trace_id, "032x"),
                "span_id": format(sc.span_id, "016x"),
                "flags": int(sc.trace_flags),
            }
            call.run.emit(TRACE_STARTED, call.key, call.name, data=data)

    def _usage(self, span: Span, call: TracedCall) -> None:
        usage = call.usage
        if usage is None:
            return
        span.set_attribute(INPUT_TOKENS, usage.input_tokens)
        span.set_attribute(OUTPUT_TOKENS, usage.output_tokens)
        if usage.cache_read_tokens:
            span.set_attribute(CACHE_READ_TOKENS, usage.cache_read_tokens)
        if usage.cache_write_tokens:
            span.set_attribute(CACHE_WRITE_TOKENS, usage.cache_write_tokens)
        if usage.usd:
            span.set_attribute("podium.cost_usd", usage.usd)
        if call.attempt > 1:
            span.set_attribute("podium.attempts", call.attempt)

    def _end(self, span: Span, call: TracedCall) -> None:
        if self._open.get(call.key) is span:
            del self._open[call.key]
        span.end()

    @staticmethod
    def _text(run: _Run, value: Any) -> str:
        """`value` as the run stores it (secrets masked, PII as tokens), as JSON text."""
        try:
            text = json.dumps(run.scrub(to_plain(value)), ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
        return run.scrub_text(text) or ""


def run_trace(
    provider: Any,
    tracer: Tracer,
    run_id: str,
    *,
    content: bool,
    stored: Mapping[str, Any] | None,
) -> RunTrace:
    """A run's trace, with lean spans when `provider` allows them (looked at per run: a
    processor added since the last run is honoured)."""
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from podium.observability.lean import lean_spans
    from podium.observability.tracing import SCHEMA_URL, SCOPE

    lean = lean_spans(provider, InstrumentationScope(SCOPE, None, SCHEMA_URL))
    return RunTrace(tracer, run_id, content=content, stored=stored, lean=lean)


def _remote(stored: Mapping[str, Any]) -> otel_context.Context | None:
    """The context of a run's first root span, from its `trace.started` event (None when
    what is kept is not one: the run starts a new trace, and keeps that one instead)."""
    try:
        sc = SpanContext(
            int(stored["trace_id"], 16),
            int(stored["span_id"], 16),
            is_remote=True,
            trace_flags=TraceFlags(int(stored.get("flags", 1))),
        )
    except (KeyError, ValueError, TypeError):
        return None
    if not sc.is_valid:
        return None
    return otel_trace.set_span_in_context(NonRecordingSpan(sc))


def _type_name(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


async def trace_middleware(call: Any, nxt: Callable[[Any], Awaitable[Any]]) -> Any:
    """The door's `trace` slot: a span around the step, current while it runs. Entered only
    by runs of a runtime with tracing (see `RunState.trace_on`)."""
    trace: RunTrace = call.run.trace
    span = trace.start(call)
    token = otel_context.attach(otel_trace.set_span_in_context(span))
    try:
        if not trace.started and not call.parent:
            trace.root_started(span, call)
        output = await nxt(call)
    except Parked as p:
        trace.stopped(span, call, "parked", p.reason)
        raise
    except Suspended as s:
        trace.stopped(span, call, "suspended", s.reason if s.step == call.key else "")
        raise
    except asyncio.CancelledError:
        trace.stopped(span, call, "cancelled", "")
        raise
    except BaseException as e:
        trace.failed(span, call, e)
        raise
    finally:
        otel_context.detach(token)
    trace.completed(span, call, output)
    return output
