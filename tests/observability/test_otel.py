"""OpenTelemetry spans of runs, read back with the SDK's in-memory exporter, and once sent with
the real OTLP/HTTP exporter to a receiver on loopback: nesting as the run tree, the GenAI
attributes, retries as events, errors as status, content off by default and masked when on,
and a resumed run (in a new runtime) continuing its trace."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import StatusCode

from podium import (
    Decision,
    HumanApproval,
    LLMAgent,
    Parallel,
    Privacy,
    ProviderError,
    Retry,
    RunStatus,
    Runtime,
    ScriptedModel,
    Sequential,
    Tracing,
    Usage,
    UsageError,
    agent,
)
from podium.models.scripted import tool_call
from podium.observability.lean import lean_spans
from podium.observability.tracing import TRACE_STARTED
from podium.tools import tool

FAST = Retry(attempts=3, initial_delay=0.0)
SECRET = "sk-proj-" + "Abc123xyz" * 6
SCOPE = InstrumentationScope("podium")


class _Watching(SpanProcessor):
    """A processor of the user's own: it sees spans start, so podium's must be the SDK's."""

    def __init__(self) -> None:
        self.started = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started += 1


@pytest.fixture(params=["lean", "sdk"])
def spans(request: pytest.FixtureRequest) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider whose spans podium makes lean (only the SDK's export processors), and one
    with a processor of its own, which gets the SDK's spans: every test runs on both."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    watching = _Watching()
    if request.param == "sdk":
        provider.add_span_processor(watching)
    assert (lean_spans(provider, SCOPE) is None) == (request.param == "sdk")
    request.addfinalizer(lambda: _started(request.param, watching, exporter))
    return provider, exporter


def _started(how: str, watching: _Watching, exporter: InMemorySpanExporter) -> None:
    if how == "sdk":  # the user's processor saw every span start
        assert watching.started >= len(exporter.get_finished_spans()) > 0


@tool
def lookup(order_id: int) -> dict[str, Any]:
    """Find an order.

    Args:
        order_id: Which order.
    """
    return {"order_id": order_id, "sku": "a"}


@agent
async def pack(text: str) -> str:
    return f"packed: {text}"


def _by_step(found: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {str(s.attributes["podium.step"]): s for s in found if s.attributes}  # type: ignore[index]


def _researcher() -> tuple[LLMAgent, ScriptedModel]:
    model = ScriptedModel(
        [tool_call("lookup", order_id=7), "order 7 is sku a"],
        name="openai:gpt-4o",
        usage=[Usage(input_tokens=11, output_tokens=5, requests=1), Usage(20, 8, 1)],
    )
    return LLMAgent("researcher", model=model, instructions="Look it up.", tools=[lookup]), model


async def test_spans_nest_as_the_run_tree_with_genai_attributes(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    researcher, _ = _researcher()
    flow = Sequential("flow", [researcher, pack])
    rt = Runtime("memory://", tracer_provider=provider, retry=FAST)
    result = await rt.run(flow, "where is order 7?")
    assert result.ok, result.error
    found = exporter.get_finished_spans()
    steps = _by_step(found)
    assert set(steps) == {s.key for s in await rt.steps(result.run_id)}
    assert {s.name for s in found} == {
        "invoke_agent flow",
        "invoke_agent researcher",
        "chat openai:gpt-4o",
        "execute_tool lookup",
        "invoke_agent pack",
    }
    # one trace; each span's parent is the span of its step's parent in the run tree
    assert len({s.context.trace_id for s in found}) == 1
    for key, span in steps.items():
        parent_key = key.rsplit("/", 1)[0]
        if parent_key:
            assert span.parent is not None
            assert span.parent.span_id == steps[parent_key].context.span_id, key
        else:
            assert span.parent is None
            assert span.attributes["podium.root"] is True  # type: ignore[index]
    root = steps["/flow"].attributes
    assert root is not None
    assert root["gen_ai.operation.name"] == "invoke_agent"
    assert root["gen_ai.agent.name"] == "flow"
    assert root["podium.run_id"] == result.run_id
    chat = steps["/flow/researcher#0/model#0"]
    assert chat.kind == otel_trace.SpanKind.CLIENT
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "openai:gpt-4o"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.agent.name"] == "researcher"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 11
    assert chat.attributes["gen_ai.usage.output_tokens"] == 5
    second = steps["/flow/researcher#0/model#1"].attributes
    assert second is not None and second["gen_ai.usage.input_tokens"] == 20
    tool_span = steps["/flow/researcher#0/lookup#0"].attributes
    assert tool_span is not None
    assert tool_span["gen_ai.operation.name"] == "execute_tool"
    assert tool_span["gen_ai.tool.name"] == "lookup"
    assert all(s.status.status_code != StatusCode.ERROR for s in found)


async def test_parallel_branches_hang_from_their_own_parent(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans

    @agent
    async def left(x: str) -> str:
        return x

    @agent
    async def right(x: str) -> str:
        return x

    inner = Sequential("inner", [left, right])
    flow = Parallel("fan", [inner, Sequential("other", [right, left])])
    result = await Runtime("memory://", tracer_provider=provider).run(flow, "x")
    assert result.ok, result.error
    steps = _by_step(exporter.get_finished_spans())
    for key, span in steps.items():
        parent_key = key.rsplit("/", 1)[0]
        if parent_key:
            assert span.parent is not None and span.parent.span_id == (
                steps[parent_key].context.span_id
            ), key


async def test_a_retried_step_has_span_events(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    model = ScriptedModel([ProviderError("503 from the provider"), "fine"], name="m")
    flaky = LLMAgent("flaky", model=model, instructions="x")
    result = await Runtime("memory://", tracer_provider=provider, retry=FAST).run(flaky, "q")
    assert result.ok, result.error
    chat = _by_step(exporter.get_finished_spans())["/flaky/model#0"]
    retried = [e for e in chat.events if e.name == "step.retried"]
    assert len(retried) == 1
    assert retried[0].attributes is not None
    assert retried[0].attributes["podium.attempt"] == 1
    assert "503" in str(retried[0].attributes["podium.error"])
    assert chat.attributes is not None and chat.attributes["podium.attempts"] == 2
    assert chat.status.status_code != StatusCode.ERROR


async def test_a_failing_step_sets_error_status(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans

    @agent
    async def broken(x: str) -> str:
        raise ValueError(f"cannot use {SECRET}")

    flow = Sequential("flow", [pack, broken])
    result = await Runtime("memory://", tracer_provider=provider).run(flow, "x")
    assert result.status == RunStatus.FAILED
    steps = _by_step(exporter.get_finished_spans())
    failed = steps["/flow/broken#0"]
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == "ValueError"
    assert steps["/flow"].status.status_code == StatusCode.ERROR
    assert steps["/flow/pack#0"].status.status_code == StatusCode.UNSET
    (exc,) = [e for e in failed.events if e.name == "exception"]
    assert SECRET not in json.dumps(dict(exc.attributes or {}))
    assert SECRET not in (failed.status.description or "")


def _everything(found: tuple[ReadableSpan, ...]) -> str:
    """Every attribute and event of every span, as one text to search."""
    parts: list[Any] = []
    for s in found:
        parts.append(dict(s.attributes or {}))
        parts.extend(dict(e.attributes or {}) for e in s.events)
        parts.append(s.status.description)
    return json.dumps(parts, default=str)


async def test_content_is_off_by_default(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    researcher, _ = _researcher()
    result = await Runtime("memory://", tracer_provider=provider).run(
        researcher, f"my key is {SECRET}, where is order 7?"
    )
    assert result.ok, result.error
    text = _everything(exporter.get_finished_spans())
    assert "order 7" not in text and SECRET not in text
    assert "gen_ai.input.messages" not in text and "gen_ai.tool.call.arguments" not in text


@pytest.mark.parametrize("how", ["option", "env"])
async def test_content_when_on_is_masked(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    how: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exporter = spans
    if how == "env":
        monkeypatch.setenv("PODIUM_OTEL_CONTENT", "1")
        rt = Runtime("memory://", tracer_provider=provider)
    else:
        rt = Runtime("memory://", tracing=Tracing(provider=provider, content=True))
    researcher, _ = _researcher()
    result = await rt.run(researcher, f"my key is {SECRET}, where is order 7?")
    assert result.ok, result.error
    found = exporter.get_finished_spans()
    text = _everything(found)
    assert SECRET not in text and SECRET[:20] not in text
    steps = _by_step(found)
    chat = steps["/researcher/model#0"].attributes
    assert chat is not None
    assert "where is order 7?" in str(chat["gen_ai.input.messages"])
    assert "lookup" in str(chat["gen_ai.output.messages"])
    tool_span = steps["/researcher/lookup#0"].attributes
    assert tool_span is not None
    assert json.loads(str(tool_span["gen_ai.tool.call.arguments"])) == {"order_id": 7}
    assert json.loads(str(tool_span["gen_ai.tool.call.result"])) == {"order_id": 7, "sku": "a"}


async def test_content_with_privacy_carries_tokens_not_personal_data(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans

    @agent
    async def note(text: str) -> str:
        return f"we will write to ada.lovelace@example.com about: {text}"

    rt = Runtime(
        "memory://",
        tracing=Tracing(provider=provider, content=True),
        pii=Privacy(mode="tokenize"),
    )
    result = await rt.run(note, "mail ada.lovelace@example.com")
    assert result.ok, result.error
    text = _everything(exporter.get_finished_spans())
    assert "gen_ai.output.messages" in text
    assert "ada.lovelace@example.com" not in text


async def test_a_resumed_run_continues_its_trace_in_a_new_runtime(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Sequential("claim", [pack, HumanApproval("ok", prompt="Pay?"), pack])
    first_exporter, second_exporter = InMemorySpanExporter(), InMemorySpanExporter()
    first, second = TracerProvider(), TracerProvider()
    first.add_span_processor(SimpleSpanProcessor(first_exporter))
    second.add_span_processor(SimpleSpanProcessor(second_exporter))

    rt = Runtime(url, tracer_provider=first)
    waiting = await rt.run(flow, "claim 1")
    await rt.close()
    assert waiting.status == RunStatus.WAITING
    before = _by_step(first_exporter.get_finished_spans())
    asked = before["/claim/ok#0/ok.decision#0"]
    assert asked.status.status_code == StatusCode.UNSET  # waiting is not an error
    assert asked.attributes is not None
    assert asked.attributes["podium.step.status"] == "suspended"
    assert before["/claim"].status.status_code == StatusCode.UNSET

    again = Runtime(url, tracer_provider=second)
    done = await again.resume(waiting.run_id, flow, decision=Decision.approve())
    assert done.ok, done.error
    (kept,) = [e.data for e in await again.events(waiting.run_id) if e.kind == TRACE_STARTED]
    await again.close()
    after = _by_step(second_exporter.get_finished_spans())
    trace_id = before["/claim"].context.trace_id
    assert kept is not None and int(kept["trace_id"], 16) == trace_id
    assert {s.context.trace_id for s in after.values()} == {trace_id}
    root = after["/claim"]
    assert root.parent is not None and root.parent.span_id == before["/claim"].context.span_id
    assert root.attributes is not None and root.attributes["podium.resumed"] is True
    assert "/claim/pack#1" in after
    assert "/claim/pack#0" not in after  # replayed from the journal: no new span


async def test_a_run_started_inside_a_span_joins_its_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("caller")
    with tracer.start_as_current_span("request") as outer:
        assert (await Runtime("memory://", tracer_provider=provider).run(pack, "x")).ok
    root = _by_step(exporter.get_finished_spans())["/pack"]
    assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id


async def test_libraries_trace_under_the_running_step(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A step's span is current while it runs: an instrumented library's span nests under
    it, and what it sets on the current span is kept."""
    provider, exporter = spans
    library = provider.get_tracer("httpx")

    @agent
    async def fetch(url: str) -> str:
        otel_trace.get_current_span().set_attribute("app.url", url)
        with library.start_as_current_span("GET"):
            return "200"

    assert (await Runtime("memory://", tracer_provider=provider).run(fetch, "http://x")).ok
    found = {s.name: s for s in exporter.get_finished_spans()}
    step = found["invoke_agent fetch"]
    assert step.attributes is not None and step.attributes["app.url"] == "http://x"
    get = found["GET"]
    assert get.parent is not None and get.parent.span_id == step.context.span_id
    assert get.context.trace_id == step.context.trace_id


def test_bad_tracing_options_are_refused() -> None:
    with pytest.raises(UsageError, match="tracing must be"):
        Runtime("memory://", tracing="yes")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="TracerProvider"):
        Runtime("memory://", tracer_provider=object())


def test_without_tracing_no_span_is_built_and_opentelemetry_is_not_loaded() -> None:
    """The default runtime never enters the trace slot, nor imports OpenTelemetry."""
    code = (
        "import sys\n"
        "from podium import Runtime, Sequential, agent\n"
        "@agent\n"
        "async def step(x: int) -> int:\n"
        "    return x + 1\n"
        "rt = Runtime('memory://')\n"
        "assert rt.run_sync(Sequential('chain', [step] * 3), 0).output == 3\n"
        "assert not any('trace' in on for _, on in rt._doors._built), rt._doors._built\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class _Receiver(BaseHTTPRequestHandler):
    """A small OTLP/HTTP collector: POST /v1/traces with a protobuf body."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.received.append(request)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_spans_reach_an_otlp_http_collector(collector: HTTPServer) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    port = collector.server_address[1]
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=5)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    researcher, _ = _researcher()
    result = await Runtime("memory://", tracer_provider=provider).run(researcher, "order 7?")
    assert result.ok, result.error
    assert provider.force_flush(10_000)
    provider.shutdown()
    names: dict[str, list[dict[str, Any]]] = {}
    for request in collector.received:  # type: ignore[attr-defined]
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "podium"
                for span in scope_spans.spans:
                    attrs = {a.key: a.value for a in span.attributes}
                    names.setdefault(span.name, []).append(attrs)
    assert set(names) == {
        "invoke_agent researcher",
        "chat openai:gpt-4o",
        "execute_tool lookup",
    }
    first, second = names["chat openai:gpt-4o"]
    chat = first if first["podium.step"].string_value.endswith("#0") else second
    assert chat["gen_ai.operation.name"].string_value == "chat"
    assert chat["gen_ai.usage.input_tokens"].int_value == 11
    assert chat["podium.run_id"].string_value == result.run_id


def test_podium_otel_sends_spans_over_otlp_from_a_short_process(collector: HTTPServer) -> None:
    """`PODIUM_OTEL=1` with no provider configured (a `podium run`, a worker): spans go over
    OTLP/HTTP to the OTEL_* endpoint, and are flushed when the process exits."""
    port = collector.server_address[1]
    code = (
        "from podium import Runtime, Sequential, agent\n"
        "@agent\n"
        "async def step(x: int) -> int:\n"
        "    return x + 1\n"
        "assert Runtime('memory://').run_sync(Sequential('chain', [step] * 2), 0).output == 2\n"
    )
    env = {
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "PATH": "/usr/bin:/bin",
        "PODIUM_OTEL": "1",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
        "OTEL_SERVICE_NAME": "claims",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    names = []
    for request in collector.received:  # type: ignore[attr-defined]
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert service["service.name"] == "claims"
            names += [s.name for ss in resource_spans.scope_spans for s in ss.spans]
    assert sorted(names) == ["invoke_agent chain", "invoke_agent step", "invoke_agent step"]
