"""A podium process that calls a remote A2A agent, for the crash test: it is SIGKILLed
mid-call, and the test resumes the run in another process.

    python a2a_caller.py STORE_URL RUN_ID REMOTE_URL TEXT        # run
    python a2a_caller.py STORE_URL RUN_ID REMOTE_URL --resume    # resume it after the kill
"""

from __future__ import annotations

import asyncio
import sys

from podium import RemoteAgent, Runtime, Sequential


def flow(url: str) -> Sequential:
    return Sequential("caller", [RemoteAgent(url, name="peer", poll_interval=0.05)])


async def main(store: str, run_id: str, url: str, text: str) -> None:
    async with Runtime(store) as rt:
        result = await rt.run(flow(url), text, run_id=run_id)
        print(result.status, result.output, flush=True)


async def resume(store: str, run_id: str, url: str) -> None:
    async with Runtime(store) as rt:
        result = await rt.resume(run_id, flow(url))
        print(result.status, result.output, flush=True)


if __name__ == "__main__":
    if sys.argv[4] == "--resume":
        asyncio.run(resume(*sys.argv[1:4]))
    else:
        asyncio.run(main(*sys.argv[1:5]))
