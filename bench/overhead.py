"""podium's overhead against the floor (plain asyncio) and against LangGraph, on this machine.

    python bench/overhead.py [--quick] [--json PATH] [--no-peers]
    python bench/overhead.py --profile memory      # cProfile of the 10-agent chain

Three topologies, each beside the same topology written as plain `await` / `asyncio.gather`:
a 10-agent `Sequential` of trivial agents (per-hop overhead), a 50-branch `Parallel`
fan-out, and 1,000 concurrent runs of the chain. Each scenario runs in a fresh subprocess
(so peak memory figures do not mix), one after the other (the machine has 2 cores); inside a
process the podium subject and its floor are timed in alternating batches so that drift hits
both alike, and medians are reported.

This module imports only the standard library at the top: `langgraph_bench.py` reuses its
measuring helpers from inside LangGraph's own virtualenv, where podium is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOPS = 10
BRANCHES = 50
CONCURRENT = 1000
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LANGGRAPH_PYTHON = BENCH_DIR / ".venv-langgraph" / "bin" / "python"
LANGGRAPH_SCRIPT = BENCH_DIR / "langgraph_bench.py"
STORES = ("memory", "sqlite")

# Where each target applies: (scenario, metric, column, bound, unit, comparison).
TARGETS: tuple[tuple[str, str, str, float, str, str], ...] = (
    ("chain", "overhead_us_per_hop", "memory", 15.0, "µs", "<="),
    ("chain", "us_per_step", "sqlite", 150.0, "µs", "<="),
    ("fanout", "ms_per_run", "memory", 1.0, "ms", "<="),
    ("concurrent", "wall_s", "memory", 0.18, "s", "<="),
    ("import", "median_s", "podium", 0.3, "s", "<"),
)

# Batch: run n calls of one subject (set-up outside the clock), return seconds per call.
Batch = Callable[[int], Awaitable[float]]


@dataclass(frozen=True)
class Config:
    """How hard to measure: `--quick` trades precision for a run of a few seconds."""

    quick: bool
    batch_budget_s: float  # a timed batch lasts about this long
    reps: int  # timed batches per subject (medians over these)
    concurrent_reps: int
    import_reps: int

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(True, 0.01, 3, 1, 3)
        return cls(False, 0.05, 15, 5, 7)


# ---------------------------------------------------------------------------------------------
# measuring (shared with langgraph_bench.py)


async def calibrate(batch: Batch, budget_s: float, cap: int = 1_000_000) -> int:
    """The batch size whose run lasts about `budget_s`; the runs it takes double as warm-up."""
    await batch(1)  # the first call pays one-off costs (lazy imports, compiled graphs)
    n = 1
    while n < cap:
        per_call = await batch(n)
        if per_call * n >= budget_s:
            break
        n = min(cap, max(n * 2, int(budget_s / max(per_call, 1e-9) * 1.1)))
    await batch(n)  # one more full batch, untimed, so caches and allocators are warm
    return n


async def compare(subjects: dict[str, Batch], cfg: Config) -> dict[str, dict[str, float]]:
    """Time every subject in alternating batches; per subject, the median, min and max of the
    seconds per call over `cfg.reps` batches."""
    sizes = {name: await calibrate(b, cfg.batch_budget_s) for name, b in subjects.items()}
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(cfg.reps):
        for name, batch in subjects.items():
            gc.collect()
            samples[name].append(await batch(sizes[name]))
    return {
        name: {
            "median": statistics.median(s),
            "min": min(s),
            "max": max(s),
            "batch": sizes[name],
            "reps": len(s),
        }
        for name, s in samples.items()
    }


def peak_rss_mb() -> float:
    """This process's peak resident set so far. On Linux from `VmHWM`, because `ru_maxrss`
    keeps the high-water mark of the parent's memory from before `exec`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# Session: per round, an async context that yields the coroutine function to start n times
# (podium opens a fresh runtime per round, so one round's journal doesn't weigh on the next).
Start = Callable[[], Awaitable[Any]]
Session = Callable[[], AbstractAsyncContextManager[Start]]


def stateless(start: Start) -> Session:
    """A session for subjects that keep nothing between rounds."""

    @asynccontextmanager
    async def session() -> AsyncIterator[Start]:
        yield start

    return session


async def time_concurrent(
    session: Session, n: int, reps: int, check: Callable[[list[Any]], None]
) -> dict[str, float]:
    """Wall time of `n` concurrent `start()` coroutines under one gather, median of `reps`
    rounds after an untimed warm-up; with the peak RSS over the whole scenario."""
    baseline = peak_rss_mb()
    async with session() as start:
        check(await asyncio.gather(*(start() for _ in range(max(10, n // 10)))))
    walls = []
    for _ in range(reps):
        async with session() as start:
            gc.collect()
            t0 = time.perf_counter()
            results = await asyncio.gather(*(start() for _ in range(n)))
            walls.append(time.perf_counter() - t0)
            check(results)
            del results
    wall = statistics.median(walls)
    peak = peak_rss_mb()
    return {
        "n": n,
        "wall_s": wall,
        "wall_min_s": min(walls),
        "runs_per_s": n / wall,
        "peak_rss_mb": peak,
        "baseline_rss_mb": baseline,
        "rss_growth_mb": max(peak - baseline, 0.0),
        "reps": reps,
    }


def chain_figures(times: dict[str, float], floor: dict[str, float]) -> dict[str, float]:
    run, base = times["median"], floor["median"]
    return {
        "us_per_run": run * 1e6,
        "us_per_step": run * 1e6 / HOPS,
        "overhead_us_per_hop": (run - base) * 1e6 / HOPS,
        "floor_us_per_run": base * 1e6,
        "ratio_to_floor": run / base,
        "min_us_per_run": times["min"] * 1e6,
        "batch": times["batch"],
        "reps": times["reps"],
    }


def fanout_figures(times: dict[str, float], floor: dict[str, float]) -> dict[str, float]:
    run, base = times["median"], floor["median"]
    return {
        "ms_per_run": run * 1e3,
        "floor_ms_per_run": base * 1e3,
        "overhead_ms_per_run": (run - base) * 1e3,
        "ratio_to_floor": run / base,
        "min_ms_per_run": times["min"] * 1e3,
        "batch": times["batch"],
        "reps": times["reps"],
    }


# ---------------------------------------------------------------------------------------------
# the floor: the same topologies in plain asyncio


async def _plain_step(x: int) -> int:
    return x + 1


async def plain_chain(x: int = 0) -> int:
    for _ in range(HOPS):
        x = await _plain_step(x)
    return x


async def plain_fanout(x: int = 0) -> list[int]:
    return await asyncio.gather(*(_plain_step(x) for _ in range(BRANCHES)))


def loop_batch(fn: Callable[[], Awaitable[Any]]) -> Batch:
    async def batch(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()
        return (time.perf_counter() - t0) / n

    return batch


# ---------------------------------------------------------------------------------------------
# the podium subjects (imported lazily: see the module docstring)


def make_agents(count: int, prefix: str) -> list[Any]:
    """`count` trivial async agents, each `@agent async def step(x: int) -> int: x + 1`."""
    from podium import agent

    async def step(x: int) -> int:
        return x + 1

    return [agent(name=f"{prefix}{i}")(step) for i in range(count)]


def make_flow(kind: str) -> Any:
    from podium import Parallel, Sequential

    if kind == "chain":
        return Sequential("chain", make_agents(HOPS, "step"))
    return Parallel("fanout", make_agents(BRANCHES, "branch"))


@contextmanager
def store_url(store: str) -> Iterator[str]:
    """A store URL; for SQLite a fresh file in a temporary directory, removed afterwards."""
    if store == "memory":
        yield "memory://"
        return
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        yield "sqlite:///" + os.path.join(tmp, "bench.db")


def podium_batch(flow: Any, url: str, expect: Callable[[Any], bool]) -> Batch:
    """Runs on a fresh `Runtime` per batch, so the store does not grow across batches."""
    from podium import Runtime

    async def batch(n: int) -> float:
        async with Runtime(url) as rt:
            t0 = time.perf_counter()
            for _ in range(n):
                result = await rt.run(flow, 0)
            elapsed = time.perf_counter() - t0
        if not (result.ok and expect(result.output)):
            raise RuntimeError(f"{flow.name} on {url} went wrong: {result}")
        return elapsed / n

    return batch


def _chain_ok(output: Any) -> bool:
    return bool(output == HOPS)


def _fanout_ok(output: Any) -> bool:
    return len(output.results) == BRANCHES


async def worker_timed(scenario: str, store: str, cfg: Config) -> dict[str, Any]:
    flow = make_flow(scenario)
    plain = plain_chain if scenario == "chain" else plain_fanout
    expect = _chain_ok if scenario == "chain" else _fanout_ok
    with store_url(store) as url:
        times = await compare(
            {"floor": loop_batch(plain), "podium": podium_batch(flow, url, expect)}, cfg
        )
    figures = chain_figures if scenario == "chain" else fanout_figures
    return figures(times["podium"], times["floor"])


async def worker_concurrent(impl: str, cfg: Config) -> dict[str, Any]:
    if impl == "asyncio":

        def check_plain(results: list[Any]) -> None:
            assert all(r == HOPS for r in results)

        session = stateless(plain_chain)
        return await time_concurrent(session, CONCURRENT, cfg.concurrent_reps, check_plain)
    from podium import Runtime

    flow = make_flow("chain")

    def check(results: list[Any]) -> None:
        bad = [r for r in results if not (r.ok and r.output == HOPS)]
        if bad:
            raise RuntimeError(f"{len(bad)} runs went wrong, first: {bad[0]}")

    with store_url(impl) as url:

        @asynccontextmanager
        async def fresh_runtime() -> AsyncIterator[Start]:
            async with Runtime(url) as rt:
                yield lambda: rt.run(flow, 0)

        return await time_concurrent(fresh_runtime, CONCURRENT, cfg.concurrent_reps, check)


def run_worker(args: argparse.Namespace) -> None:
    cfg = Config.make(args.quick)
    scenario, impl = args.worker
    if scenario == "concurrent":
        out = asyncio.run(worker_concurrent(impl, cfg))
    else:
        out = asyncio.run(worker_timed(scenario, impl, cfg))
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# the parent: one subprocess per scenario, then the table and the JSON


def subprocess_json(cmd: list[str], timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(cmd[-3:])} failed: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def spawn_worker(scenario: str, impl: str, cfg: Config) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", scenario, impl]
    return subprocess_json(cmd + (["--quick"] if cfg.quick else []))


IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def measure_import(python: str, module: str, reps: int) -> dict[str, Any]:
    """`import module` in fresh interpreters (interpreter start-up not counted)."""
    times = []
    for _ in range(reps):
        proc = subprocess.run(
            [python, "-c", IMPORT_SNIPPET.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(proc.stdout.strip()))
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": reps}


def heaviest_imports(module: str, top: int = 8) -> dict[str, list[dict[str, Any]]]:
    """What `import module` spends its time on (from `python -X importtime`): its direct
    submodules by cumulative time, and the modules under it by their own time."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    subtree: list[tuple[int, str, float, float]] = []  # depth, name, self ms, cumulative ms
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()[1:]  # one space after the bar, then two per level
        depth = (len(name) - len(name.lstrip())) // 2
        if depth == 0 and name.strip() != module:
            subtree.clear()  # a sibling tree finished (e.g. `site`): not ours
            continue
        subtree.append((depth, name.strip(), int(parts[0]) / 1000, int(parts[1]) / 1000))
        if depth == 0:
            break
    children = sorted((r for r in subtree if r[0] == 1), key=lambda r: -r[3])[:top]
    own = sorted(subtree, key=lambda r: -r[2])[:top]
    return {
        "children_by_cumulative_ms": [{"module": r[1], "ms": r[3]} for r in children],
        "modules_by_self_ms": [{"module": r[1], "ms": r[2]} for r in own],
    }


def sqlite_available() -> str | None:
    """None if podium's SQLite store can be imported, else why not."""
    import importlib.util

    try:
        if importlib.util.find_spec("podium.stores.sqlite") is None:
            return "podium.stores.sqlite not written yet"
    except ImportError as e:
        return f"podium cannot be imported: {e}"
    return None


def measure_podium(cfg: Config, log: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {"chain": {}, "fanout": {}, "concurrent": {}}
    missing = sqlite_available()
    stores = [s for s in STORES if s != "sqlite" or missing is None]
    for scenario in ("chain", "fanout"):
        for store in stores:
            log(f"{scenario} / {store}")
            results[scenario][store] = spawn_worker(scenario, store, cfg)
        first = results[scenario][stores[0]]
        floor_key = "floor_us_per_run" if scenario == "chain" else "floor_ms_per_run"
        results[scenario]["asyncio"] = {floor_key: first[floor_key]}
    for impl in ("asyncio", *stores):
        log(f"concurrent / {impl}")
        results["concurrent"][impl] = spawn_worker("concurrent", impl, cfg)
    log("import podium")
    results["import"] = {"podium": measure_import(sys.executable, "podium", cfg.import_reps)}
    results["import"]["podium"]["heaviest"] = heaviest_imports("podium")
    if missing is not None:
        for scenario in ("chain", "fanout", "concurrent"):
            results[scenario]["sqlite"] = {"skipped": missing}
    return results


def measure_langgraph(cfg: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Run langgraph_bench.py in its own virtualenv, one scenario per process."""
    if not LANGGRAPH_PYTHON.exists():
        return {"skipped": "not installed, run bench/setup_peers.sh"}
    out: dict[str, Any] = {}
    for scenario in ("chain", "fanout", "concurrent", "import"):
        log(f"{scenario} / langgraph")
        cmd = [str(LANGGRAPH_PYTHON), str(LANGGRAPH_SCRIPT), "--scenario", scenario]
        try:
            out[scenario] = subprocess_json(cmd + (["--quick"] if cfg.quick else []))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
            out[scenario] = {"skipped": f"failed: {e}"}
    return out


def merge_peer(results: dict[str, Any], peer: dict[str, Any]) -> None:
    if "skipped" in peer:
        for scenario in ("chain", "fanout", "concurrent", "import"):
            results[scenario]["langgraph"] = {"skipped": peer["skipped"]}
        return
    for scenario, figures in peer.items():
        if scenario == "meta":
            continue
        results[scenario]["langgraph"] = figures
    results.setdefault("meta_peers", {})["langgraph"] = peer.get("import", {}).get("version")


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for scenario, metric, column, bound, unit, op in TARGETS:
        value = results.get(scenario, {}).get(column, {}).get(metric)
        met = None if value is None else (value <= bound if op == "<=" else value < bound)
        rows.append(
            {
                "scenario": scenario,
                "metric": metric,
                "column": column,
                "target": f"{op} {bound:g} {unit}",
                "value": value,
                "met": met,
            }
        )
    return rows


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
        info["git_commit"] = commit.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# ---------------------------------------------------------------------------------------------
# the table

COLUMNS = ("asyncio", "memory", "sqlite", "langgraph")
HEADERS = ("plain asyncio", "podium memory", "podium sqlite", "LangGraph 1.2.22")

# (label, scenario, metric, format); a metric missing for a column shows as a dash.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("10-agent chain: µs per run", "chain", "us_per_run", "{:,.1f}"),
    ("  per-hop overhead over floor, µs", "chain", "overhead_us_per_hop", "{:,.2f}"),
    ("  µs per step (absolute)", "chain", "us_per_step", "{:,.2f}"),
    ("  x floor", "chain", "ratio_to_floor", "{:,.0f}x"),
    ("50-branch fan-out: ms per run", "fanout", "ms_per_run", "{:,.3f}"),
    ("  x floor", "fanout", "ratio_to_floor", "{:,.0f}x"),
    ("1,000 concurrent chains: wall s", "concurrent", "wall_s", "{:,.3f}"),
    ("  runs per s", "concurrent", "runs_per_s", "{:,.0f}"),
    ("  peak RSS, MB", "concurrent", "peak_rss_mb", "{:,.1f}"),
    ("  RSS growth in scenario, MB", "concurrent", "rss_growth_mb", "{:,.1f}"),
    ("  x floor", "concurrent", "ratio_to_floor", "{:,.0f}x"),
    ("import time, s (median)", "import", "median_s", "{:.3f}"),
)


def add_floor_ratios(results: dict[str, Any]) -> None:
    """Ratios of the concurrent scenario to the asyncio process, and the floor's own rows."""
    conc = results["concurrent"]
    floor = conc.get("asyncio", {}).get("wall_s")
    for figures in conc.values():
        if floor and "wall_s" in figures:
            figures["ratio_to_floor"] = figures["wall_s"] / floor
    chain_floor = results["chain"]["asyncio"]
    chain_floor["us_per_run"] = chain_floor["floor_us_per_run"]
    chain_floor["us_per_step"] = chain_floor["floor_us_per_run"] / HOPS
    chain_floor["ratio_to_floor"] = 1.0
    fan_floor = results["fanout"]["asyncio"]
    fan_floor["ms_per_run"] = fan_floor["floor_ms_per_run"]
    fan_floor["ratio_to_floor"] = 1.0


def cell(results: dict[str, Any], scenario: str, column: str, metric: str, fmt: str) -> str:
    if scenario == "import" and column in STORES:
        column = "podium"  # one import serves both stores
    figures = results.get(scenario, {}).get(column, {})
    if "skipped" in figures:
        return "n/a"
    value = figures.get(metric)
    return "—" if value is None else fmt.format(value)


def target_cells(targets: list[dict[str, Any]], scenario: str, metric: str) -> tuple[str, str]:
    for t in targets:
        if t["scenario"] == scenario and t["metric"] == metric:
            column = "memory & sqlite" if t["column"] == "podium" else t["column"]
            met = "—" if t["met"] is None else ("yes" if t["met"] else "NO")
            return f"{t['target']} ({column})", met
    return "", ""


def table_rows(results: dict[str, Any], targets: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for label, scenario, metric, fmt in ROWS:
        cells = [cell(results, scenario, c, metric, fmt) for c in COLUMNS]
        rows.append([label, *cells, *target_cells(targets, scenario, metric)])
    return rows


def notes(results: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    out = []
    start, end = meta.get("loadavg"), meta.get("loadavg_end")
    if start and end:
        out.append(
            f"load average {start[0]:.2f} at start, {end[0]:.2f} at end, on {meta['cpus']} "
            "CPUs (this benchmark adds about 1): other work on the machine inflates every figure"
        )
    for column in ("sqlite", "langgraph"):
        skipped = results["chain"].get(column, {}).get("skipped")
        if skipped:
            out.append(f"{column}: {skipped}")
    return out


def print_table(
    results: dict[str, Any], targets: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    header = ["", *HEADERS, "target", "met"]
    rows = table_rows(results, targets)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
    else:
        table = Table(title="podium overhead (medians)", title_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            table.add_row(*r)
        Console(width=160).print(table)
    for note in notes(results, meta):
        print(f"note: {note}")


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="fewer repetitions: a few seconds")
    p.add_argument("--json", type=Path, help="where to write the figures (default: bench/results/)")
    p.add_argument("--no-peers", action="store_true", help="skip LangGraph")
    p.add_argument("--profile", choices=STORES, help="cProfile the 10-agent chain and exit")
    p.add_argument("--worker", nargs=2, metavar=("SCENARIO", "IMPL"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    if args.profile:
        profile_chain(args.profile)
        return 0
    cfg = Config.make(args.quick)

    def log(msg: str) -> None:
        print(f"· {msg}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    meta = machine_info()
    results = measure_podium(cfg, log)
    peer = {"skipped": "skipped (--no-peers)"} if args.no_peers else measure_langgraph(cfg, log)
    merge_peer(results, peer)
    add_floor_ratios(results)
    targets = evaluate_targets(results)
    meta["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["quick"] = cfg.quick
    meta["command"] = "python bench/overhead.py " + " ".join(argv or sys.argv[1:])
    report = {"meta": meta, "config": cfg.__dict__, "results": results, "targets": targets}
    print_table(results, targets, meta)
    name = "overhead-quick.json" if cfg.quick else "overhead.json"
    path = args.json or RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"figures written to {path}")
    return 0


def profile_chain(store: str, runs: int = 2000) -> None:
    """Where the time of a 10-agent chain goes: cProfile, sorted by own time."""
    import cProfile
    import pstats

    flow = make_flow("chain")

    async def go() -> None:
        with store_url(store) as url:
            await podium_batch(flow, url, _chain_ok)(200)  # warm-up
            profiler = cProfile.Profile()
            profiler.enable()
            await podium_batch(flow, url, _chain_ok)(runs)
            profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        print(f"(figures are for {runs} runs = {runs * (HOPS + 1)} door passes)")

    asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
