"""What OpenTelemetry tracing costs a run: the 10-agent chain with tracing off and on, as a
ratio (issue 12's goal: on <= 1.3x off).

    python bench/otel.py                  # memory and SQLite stores, ~1 min
    python bench/otel.py --quick          # fewer runs, a few seconds
    python bench/otel.py --json out.json  # default: bench/results/otel.json

"On" is a runtime with an SDK `TracerProvider` and a `BatchSpanProcessor` feeding an
exporter that encodes each batch as the OTLP exporter does (protobuf) and drops it: every
step's span is made, attributed, ended, encoded and let go in the processor's thread, as in
production minus the network (which the batch thread carries off the event loop). With that
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


@agent
async def step(x: int) -> int:
    return x + 1


FLOW = Sequential("chain", [step] * 10)


class EncodingExporter(SpanExporter):
    """The OTLP/HTTP exporter up to the wire: spans encoded to protobuf bytes, then dropped
    (an in-memory exporter would keep every span alive, and the garbage collector would walk
    them all, which no real exporter makes it do)."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _batch(rt: Runtime, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await rt.run(FLOW, 0)
    return (time.perf_counter() - t0) / n * 1e6


async def measure(url: str, runs: int, batches: int) -> dict[str, Any]:
    """Microseconds per run, off and on, batches alternating."""
    exporter = EncodingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1_000_000))
    off_times: list[float] = []
    on_times: list[float] = []
    async with Runtime(url) as off, Runtime(url, tracer_provider=provider) as on:
        for rt in (off, on):  # warm up
            await _batch(rt, max(runs // 10, 10))
        for _ in range(batches):
            off_times.append(await _batch(off, runs))
            on_times.append(await _batch(on, runs))
    provider.force_flush()
    provider.shutdown()
    made = (batches * runs + max(runs // 10, 10)) * 11
    if exporter.spans != made:  # every span was made, and reached the exporter
        raise SystemExit(f"exported {exporter.spans} spans, expected {made}")
    return {
        "store": url.split(":", 1)[0],
        "runs_per_batch": runs,
        "batches": batches,
        "off_us_min": round(min(off_times), 1),
        "off_us_median": round(statistics.median(off_times), 1),
        "on_us_min": round(min(on_times), 1),
        "on_us_median": round(statistics.median(on_times), 1),
        "ratio_min": round(min(on_times) / min(off_times), 3),
        "ratio_median": round(statistics.median(on_times) / statistics.median(off_times), 3),
        "spans_per_run": 11,
        "us_per_span_min": round((min(on_times) - min(off_times)) / 11, 1),
        "lean_spans": lean_spans(provider, InstrumentationScope("podium")) is not None,
    }


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
    print(f"10-agent chain, OpenTelemetry off vs on (goal: on <= {GOAL}x off)")
    print(
        f"{'store':8} {'off us/run':>11} {'on us/run':>10} {'ratio (min)':>12} "
        f"{'(median)':>9} {'us/span':>8}"
    )
    for r in rows:
        print(
            f"{r['store']:8} {r['off_us_min']:>11.1f} {r['on_us_min']:>10.1f} "
            f"{r['ratio_min']:>11.2f}x {r['ratio_median']:>8.2f}x {r['us_per_span_min']:>8.1f}"
        )
    out = args.json or (RESULTS.with_name("otel-quick.json") if args.quick else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "goal": GOAL}
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
