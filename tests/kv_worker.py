"""A worker process for tests/stores/test_kv_processes.py: records outcomes on a shared store.

    python kv_worker.py STORE_URL NAME COUNT

Opens the store, prints `ready`, waits for a line on stdin (the test starts every worker's
updates at once), then records COUNT outcomes of Adaptive `NAME` through `StoreOutcomes` (the
path Adaptive's record step takes), alternating two strategies of one task kind, and prints
`done`.
"""

from __future__ import annotations

import asyncio
import sys

from podium.patterns import StoreOutcomes
from podium.stores import open_store


async def main(url: str, name: str, count: int) -> None:
    store = open_store(url)
    await store.open()
    try:
        outcomes = StoreOutcomes(store)
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            await outcomes.record(name, "kind", ("a", "b")[i % 2], i % 3 == 0, 10.0, 0.5)
        print("done", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
