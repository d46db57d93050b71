"""Lean spans: what the SDK's `Span` does for a step, at a sixth of its cost, when nothing
in the provider needs more.

The SDK's `Tracer.start_span` + `Span.end` cost about 20 us per span on a small machine
(a lock per span, every attribute validated into a `BoundedAttributes`, the sampler, the
processors' `on_start`), against about 3 us for the `ReadableSpan` an exporter finally
reads. A 10-agent chain makes 11 spans, so that difference is the run's overhead. When the
provider is the SDK's `TracerProvider`, samples with its default (parent-based, always on),
sets no attribute length limit, and exports through the SDK's `SimpleSpanProcessor` /
`BatchSpanProcessor` (which do nothing at a span's start), a `LeanSpan` is that
`ReadableSpan` from the start (its fields, none of the checks) and hands itself to those
processors at its end. Anything else (a
sampler, a processor of your own, limits) gets the SDK's spans, unchanged.

A `LeanSpan` is also an `opentelemetry.trace.Span`: it is made current while its step runs, and
an instrumented library that adds attributes or events to the current span, or starts a
child span under it, works as with the SDK's.

`lean_spans` reads one private attribute of the SDK's provider (its span processors); an
SDK that renames it just turns the lean path off.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

__all__ = ["Lean", "LeanSpan", "lean_spans"]

_MAX_ATTRIBUTES = 128  # the SDK's default limit per span and per event


class Lean:
    """Makes `LeanSpan`s for one provider: its ids, resource and processors."""

    __slots__ = ("ids", "processor", "resource", "scope")

    def __init__(self, provider: TracerProvider, processor: Any, scope: InstrumentationScope):
        self.ids = provider.id_generator
        self.resource = provider.resource
        self.processor = processor
        self.scope = scope

    def start(
        self, name: str, parent: SpanContext | None, kind: SpanKind, attributes: dict[str, Any]
    ) -> Span:
        """A started span under `parent` (None or invalid: a new trace)."""
        ids = self.ids
        if parent is not None and parent.is_valid:
            if not parent.trace_flags.sampled:  # parent-based: not sampled above, nor here
                ctx = SpanContext(
                    parent.trace_id, ids.generate_span_id(), False, parent.trace_flags
                )
                return NonRecordingSpan(ctx)
            ctx = _context(
                parent.trace_id, ids.generate_span_id(), parent.trace_flags, parent.trace_state
            )
        else:
            parent = None
            ctx = _context(
                ids.generate_trace_id(), ids.generate_span_id(), _SAMPLED, DEFAULT_TRACE_STATE
            )
        return LeanSpan(self, name, ctx, parent, kind, attributes)


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
_new_tuple = tuple.__new__
_NONE: list[Any] = []  # shared by every span with no events or links yet; never appended to


def _context(trace_id: int, span_id: int, flags: TraceFlags, state: TraceState) -> SpanContext:
    """A valid local `SpanContext`, built as its own `__new__` builds it minus the range
    checks (a quarter of the cost): the ids come from the provider's id generator, which
    makes valid ones, and a sampled parent's trace id was valid."""
    return _new_tuple(SpanContext, (trace_id, span_id, False, flags, state, True))


class LeanSpan(Span, ReadableSpan):
    """A recording span that is its own `ReadableSpan` once ended (as the SDK's `Span` is):
    the processors get the span itself, no copy. It keeps `ReadableSpan`'s fields, so the
    exporters read it as they read any."""

    def __init__(
        self,
        lean: Lean,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> None:
        self._lean = lean
        self._name = name
        self._context = self._own_context = context
        self._parent = parent
        self._kind = kind
        # one dict, typed as ours (ReadableSpan types its field as any read-only mapping)
        self._attributes = self._attrs = attributes
        # no list until there is something to hold: a span is many objects for the garbage
        # collector to walk, and most steps' spans have no events and no links
        self._events: list[Event] = _NONE
        self._links: list[Link] = _NONE
        self._status = _UNSET
        self._resource = lean.resource
        self._instrumentation_scope = lean.scope
        self._instrumentation_info = None
        self._start_time: int | None = time.time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._own_context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        attrs = self._attrs
        if self._end_time is None and value is not None and (key in attrs or len(attrs) < 128):
            attrs[key] = tuple(value) if isinstance(value, list) else value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            attrs = dict(list((attributes or {}).items())[:_MAX_ATTRIBUTES])
            if self._events is _NONE:
                self._events = []
            self._events.append(Event(name, attrs, timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        if self._end_time is None and context.is_valid:
            if self._links is _NONE:
                self._links = []
            self._links.append(Link(context, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code == StatusCode.OK:
            return  # OK is final, as in the SDK
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        attrs: dict[str, Any] = {
            "exception.type": kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        attrs.update(attributes or {})
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time.time_ns()
        self._lean.processor.on_end(self)


_EXPORTING = (SimpleSpanProcessor, BatchSpanProcessor)


def lean_spans(provider: Any, scope: InstrumentationScope) -> Lean | None:
    """A `Lean` for `provider` when its spans may be lean (see the module's docstring), else
    None: the SDK's own spans, with everything they do."""
    if type(provider) is not TracerProvider or provider.sampler is not sampling.DEFAULT_ON:
        return None
    limits = getattr(provider, "_span_limits", None)
    if limits is None or limits.max_attribute_length is not None:
        return None
    multi = getattr(provider, "_active_span_processor", None)
    processors: Sequence[Any] | None = getattr(multi, "_span_processors", None)
    if not processors or any(type(p) not in _EXPORTING for p in processors):
        return None
    return Lean(provider, multi, scope)
