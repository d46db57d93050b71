"""`Tracing`: whether and how a runtime's runs become OpenTelemetry spans.

Kept apart from `podium.observability.otel` (the spans themselves) so that `import podium`
and a runtime without tracing never import `opentelemetry`, an optional extra
(`pip install 'podium[otel]'`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podium.errors import UsageError

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["CONTENT_ENV", "TRACE_STARTED", "TRACING_ENV", "Tracing", "resolve_tracing"]

TRACE_STARTED = "trace.started"  # the event keeping a run's root span context (hex ids)
CONTENT_ENV = "PODIUM_OTEL_CONTENT"  # 1: spans carry what steps take and give (masked)
TRACING_ENV = "PODIUM_OTEL"  # 1: trace with the global tracer provider
SCOPE = "podium"  # the instrumentation scope of podium's spans
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

_YES = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Tracing:
    """How runs are traced. `provider` is an OpenTelemetry `TracerProvider` (None: the
    global one, `opentelemetry.trace.get_tracer_provider()`, read when a run starts);
    `content` puts what steps take and give into their spans, masked as the run stores it
    (None: `PODIUM_OTEL_CONTENT`)."""

    provider: Any = None
    content: bool | None = None

    def tracer(self) -> Tracer:
        return self.open()[1]  # type: ignore[no-any-return]

    def open(self) -> tuple[Any, Any]:
        """The provider runs are traced with, and podium's tracer from it."""
        try:
            from opentelemetry import trace
        except ImportError:
            raise UsageError("tracing needs OpenTelemetry: pip install 'podium[otel]'") from None
        provider = self.provider or trace.get_tracer_provider()
        if self.provider is None and isinstance(provider, trace.ProxyTracerProvider):
            provider = _otlp_provider()  # nobody configured one: OTLP from OTEL_* settings
        return provider, provider.get_tracer(SCOPE, schema_url=SCHEMA_URL)

    def with_content(self) -> bool:
        if self.content is not None:
            return self.content
        return os.environ.get(CONTENT_ENV, "").strip().lower() in _YES


_OTLP: list[Any] = []  # the provider made for `_otlp_provider`, shared by every runtime


def _otlp_provider() -> Any:
    """A tracer provider for `PODIUM_OTEL=1` / `tracing=True` when the process has none
    (no `opentelemetry-instrument`, no `set_tracer_provider`): the SDK's, sending spans with
    OTLP/HTTP in a batch thread to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or
    `OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://localhost:4318`), as service
    `OTEL_SERVICE_NAME` (default `podium`). It flushes when the process exits, so a short
    `podium run` sends its spans too. Not made the global provider: that stays the app's."""
    if not _OTLP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        name = os.environ.get("OTEL_SERVICE_NAME") or "podium"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _OTLP.append(provider)
    return _OTLP[0]


def resolve_tracing(tracing: bool | Tracing | None, provider: Any) -> Tracing | None:
    """The runtime's tracing from its `tracing` and `tracer_provider` arguments, and
    `PODIUM_OTEL=1` (on, with the global provider) when neither says; None when off. Costs
    no import of OpenTelemetry when off."""
    if provider is not None and not hasattr(provider, "get_tracer"):
        raise UsageError(
            f"tracer_provider must be an OpenTelemetry TracerProvider, got {provider!r}"
        )
    if isinstance(tracing, Tracing):
        return tracing if provider is None else Tracing(provider, tracing.content)
    if tracing is not None and not isinstance(tracing, bool):
        raise UsageError(f"tracing must be True, False or a podium.Tracing, got {tracing!r}")
    if tracing is False:
        return None
    env_on = os.environ.get(TRACING_ENV, "").strip().lower() in _YES
    if tracing is True or provider is not None or env_on:
        found = Tracing(provider)
        found.tracer()  # a missing extra fails now, not at the first run
        return found
    return None
