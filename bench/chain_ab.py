"""The 10-agent chain's cost per run, minimum and median of 7 batches: for A/B comparisons
of two checkouts on a noisy machine, run alternately in fresh processes.

    PYTHONPATH=../old/src python bench/chain_ab.py            # memory store
    PYTHONPATH=src python bench/chain_ab.py sqlite:////tmp/ab.db

The minimum is the figure to compare (what the code costs when nothing else runs); the
median says how noisy the machine was.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time

from podium import Runtime, Sequential, agent


@agent
async def step(x: int) -> int:
    return x + 1


async def main(url: str) -> None:
    flow = Sequential("chain", [step] * 10)
    n = 1000 if url.startswith("memory") else 100
    async with Runtime(url) as rt:
        for _ in range(100):  # warm up
            await rt.run(flow, 0)
        per_run = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(n):
                await rt.run(flow, 0)
            per_run.append((time.perf_counter() - t0) / n * 1e6)
    print(f"min {min(per_run):.1f} us/run  median {statistics.median(per_run):.1f} us/run  ({url})")


if __name__ == "__main__":
    logging.getLogger("podium").setLevel(logging.ERROR)
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))
