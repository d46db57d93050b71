"""The same three topologies as `overhead.py`, written with LangGraph, for the comparison.

    bench/.venv-langgraph/bin/python bench/langgraph_bench.py --scenario chain [--quick]

Runs inside LangGraph's own virtualenv (`bench/setup_peers.sh`), where podium is not
installed; `overhead.py` starts it once per scenario and puts its JSON line in its table.
The timing helpers and the plain-asyncio floor come from `overhead.py` (standard library
only at its top), so both sides are measured by the same code. The graphs are compiled
without a checkpointer: LangGraph's fastest configuration, no durability.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import (  # found through the path above
    BRANCHES,
    CONCURRENT,
    HOPS,
    Batch,
    Config,
    chain_figures,
    compare,
    fanout_figures,
    loop_batch,
    plain_chain,
    plain_fanout,
    stateless,
    time_concurrent,
)


class ChainState(TypedDict):
    x: int


class FanState(TypedDict):
    x: int
    results: Annotated[list[int], operator.add]
    joined: int


async def inc(state: ChainState) -> dict[str, int]:
    return {"x": state["x"] + 1}


async def branch(state: FanState) -> dict[str, list[int]]:
    return {"results": [state["x"] + 1]}


async def join(state: FanState) -> dict[str, int]:
    return {"joined": len(state["results"])}


def build_chain() -> Any:
    """START -> step0 -> ... -> step9 -> END, each node updating the state."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(ChainState)
    prev = START
    for i in range(HOPS):
        g.add_node(f"step{i}", inc)
        g.add_edge(prev, f"step{i}")
        prev = f"step{i}"
    g.add_edge(prev, END)
    return g.compile()


def build_fanout() -> Any:
    """START -> 50 branches in parallel -> join (waits for all 50) -> END."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(FanState)
    names = [f"branch{i}" for i in range(BRANCHES)]
    for name in names:
        g.add_node(name, branch)
        g.add_edge(START, name)
    g.add_node("join", join)
    g.add_edge(names, "join")
    g.add_edge("join", END)
    return g.compile()


def graph_batch(graph: Any, state: dict[str, Any], ok: Any) -> Batch:
    async def batch(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            out = await graph.ainvoke(state)
        elapsed = time.perf_counter() - t0
        if not ok(out):
            raise RuntimeError(f"unexpected LangGraph output {out!r}")
        return elapsed / n

    return batch


def _chain_ok(out: dict[str, Any]) -> bool:
    return bool(out["x"] == HOPS)


def _fan_ok(out: dict[str, Any]) -> bool:
    return bool(out["joined"] == BRANCHES)


async def scenario_chain(cfg: Config) -> dict[str, Any]:
    subjects = {
        "floor": loop_batch(plain_chain),
        "graph": graph_batch(build_chain(), {"x": 0}, _chain_ok),
    }
    times = await compare(subjects, cfg)
    return chain_figures(times["graph"], times["floor"])


async def scenario_fanout(cfg: Config) -> dict[str, Any]:
    subjects = {
        "floor": loop_batch(plain_fanout),
        "graph": graph_batch(build_fanout(), {"x": 0, "results": [], "joined": 0}, _fan_ok),
    }
    times = await compare(subjects, cfg)
    return fanout_figures(times["graph"], times["floor"])


async def scenario_concurrent(cfg: Config) -> dict[str, Any]:
    graph = build_chain()

    def check(results: list[Any]) -> None:
        if not all(_chain_ok(r) for r in results):
            raise RuntimeError("a LangGraph run returned the wrong value")

    session = stateless(lambda: graph.ainvoke({"x": 0}))
    return await time_concurrent(session, CONCURRENT, cfg.concurrent_reps, check)


def scenario_import(cfg: Config) -> dict[str, Any]:
    import importlib.metadata
    import statistics
    import subprocess

    snippet = (
        "import time; t = time.perf_counter(); import langgraph.graph; "
        "print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", snippet], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(cfg.import_reps)
    ]
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "reps": cfg.import_reps,
        "module": "langgraph.graph",
        "version": importlib.metadata.version("langgraph"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description="LangGraph side of bench/overhead.py")
    p.add_argument("--scenario", choices=("chain", "fanout", "concurrent", "import"), required=True)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    cfg = Config.make(args.quick)
    if args.scenario == "import":
        out = scenario_import(cfg)
    else:
        run = {
            "chain": scenario_chain,
            "fanout": scenario_fanout,
            "concurrent": scenario_concurrent,
        }
        out = asyncio.run(run[args.scenario](cfg))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
