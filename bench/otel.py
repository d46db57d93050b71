"""What OpenTelemetry tracing costs a run: the 10-agent chain with tracing off and on, as a
ratio (issue 12's goal: on <= 1.3x off).

    python bench/otel.py                  # memory and SQLite stores, ~1 min
    python bench/otel.py --quick          # fewer runs, a few seconds
    python bench/otel.py --json out.json  # default: bench/results/otel.json

"On" is a runtime with an SDK `TracerProvider` and a `BatchSpanProcessor` feeding an
exporter that drops what it gets: every step's span is made, attributed, ended and handed to
the processor's thread, what podium's instrumentation costs. "+OTLP" also encodes each batch
as the OTLP exporter does (protobuf), in that thread, as in production minus the network:
the SDK's exporter's work, which takes the interpreter's lock from the event loop. With that
provider podium's spans are lean (see `podium.observability.lean`); a provider with a
processor of its own gets the SDK's spans, about 20 us each instead of about 8.

Off and on alternate, batch by batch, in one process, so the machine's noise falls on both
alike; the minimum of the batches is the figure to compare (what the
code costs when nothing else runs), the median says how noisy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from podium import Runtime, Sequential, agent
from podium.observability.lean import lean_spans

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "otel.json"
GOAL = 1.3
SPANS_PER_RUN = 11  # the chain's and its ten agents'


@agent
async def step(x: int) -> int:
    return x + 1


FLOW = Sequential("chain", [step] * 10)


class CountingExporter(SpanExporter):
    """An exporter that drops what it gets, counting; with `encode`, it first encodes each
    batch to OTLP protobuf bytes, as the OTLP/HTTP exporter does before the wire. (The SDK's
    in-memory exporter would keep every span alive for the garbage collector to walk, which
    no real exporter makes it do.)"""

    def __init__(self, encode: bool) -> None:
        self.encode = encode
        self.spans = 0
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.encode:
            self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _batch(rt: Runtime, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await rt.run(FLOW, 0)
    return (time.perf_counter() - t0) / n * 1e6


def _provider(exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1_000_000))
    return provider


async def measure(url: str, runs: int, batches: int) -> dict[str, Any]:
    """Microseconds per run: off, on (podium's spans, exported and dropped) and on with
    OTLP encoding (the SDK's exporter's own work too), batches alternating."""
    dropping, encoding = CountingExporter(encode=False), CountingExporter(encode=True)
    providers = {"on": _provider(dropping), "otlp": _provider(encoding)}
    times: dict[str, list[float]] = {"off": [], "on": [], "otlp": []}
    async with (
        Runtime(url) as off,
        Runtime(url, tracer_provider=providers["on"]) as on,
        Runtime(url, tracer_provider=providers["otlp"]) as otlp,
    ):
        runtimes = {"off": off, "on": on, "otlp": otlp}
        for rt in runtimes.values():  # warm up
            await _batch(rt, max(runs // 10, 10))
        for _ in range(batches):
            for mode, rt in runtimes.items():
                times[mode].append(await _batch(rt, runs))
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    made = (batches * runs + max(runs // 10, 10)) * SPANS_PER_RUN
    for exporter in (dropping, encoding):  # every span was made, and reached the exporter
        if exporter.spans != made:
            raise SystemExit(f"exported {exporter.spans} spans, expected {made}")
    low = {mode: min(ts) for mode, ts in times.items()}
    mid = {mode: statistics.median(ts) for mode, ts in times.items()}
    row: dict[str, Any] = {
        "store": url.split(":", 1)[0],
        "runs_per_batch": runs,
        "batches": batches,
        "spans_per_run": SPANS_PER_RUN,
        "lean_spans": lean_spans(providers["on"], InstrumentationScope("podium")) is not None,
    }
    for mode in times:
        row[f"{mode}_us_min"] = round(low[mode], 1)
        row[f"{mode}_us_median"] = round(mid[mode], 1)
    for mode in ("on", "otlp"):
        row[f"{mode}_ratio_min"] = round(low[mode] / low["off"], 3)
        row[f"{mode}_ratio_median"] = round(mid[mode] / mid["off"], 3)
        row[f"{mode}_us_per_span"] = round((low[mode] - low["off"]) / SPANS_PER_RUN, 1)
    return row


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as the lines of a table."""
    lines = [
        f"{'store':8} {'off us/run':>11} {'on':>8} {'ratio':>6} {'(median)':>9} "
        f"{'us/span':>8}   {'+OTLP':>8} {'ratio':>6} {'(median)':>9} {'us/span':>8}"
    ]
    for r in rows:
        lines.append(
            f"{r['store']:8} {r['off_us_min']:>11.1f} {r['on_us_min']:>8.1f} "
            f"{r['on_ratio_min']:>5.2f}x {r['on_ratio_median']:>8.2f}x {r['on_us_per_span']:>8.1f}"
            f"   {r['otlp_us_min']:>8.1f} {r['otlp_ratio_min']:>5.2f}x "
            f"{r['otlp_ratio_median']:>8.2f}x {r['otlp_us_per_span']:>8.1f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    parser.add_argument("--json", type=Path, default=None, help=f"default: {RESULTS}")
    args = parser.parse_args()
    logging.getLogger("podium").setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("memory://", 1000, 7), (f"sqlite:///{tmp}/otel.db", 100, 7)]
        for url, runs, batches in stores:
            if args.quick:
                runs, batches = max(runs // 10, 10), 3
            rows.append(asyncio.run(measure(url, runs, batches)))
    print(f"10-agent chain, OpenTelemetry off vs on (goal: on <= {GOAL}x off); us per run")
    print("on: podium's spans, exported and dropped; +OTLP: each batch encoded as OTLP too")
    print("\n".join(table(rows)))
    out = args.json or (RESULTS.with_name("otel-quick.json") if args.quick else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "goal": GOAL}
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
