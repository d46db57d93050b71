"""A2A test helpers: servers started as real subprocesses on free loopback ports.

`start(args)` runs `python ARGS` with this worktree's `src` and `tests/protocols` on the path
and waits for its `listening URL` line; `stop(proc)` ends it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def env() -> dict[str, str]:
    paths = [str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def start(
    args: list[str], cwd: Path | None = None, **more: str
) -> tuple[subprocess.Popen[str], str]:
    """Start `python ARGS` (with `more` in its environment); its URL once it says it
    listens (20 s at most)."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env(), **more},
        cwd=cwd or HERE,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if sel.select(timeout=0.1):
            line = proc.stdout.readline()
            if line.startswith("listening "):
                return proc, line.split()[1]
            if not line and proc.poll() is not None:
                break
    stop(proc)
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"{args} did not start: {err}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def podium_serve(target: str, store: str, **more: str) -> tuple[subprocess.Popen[str], str]:
    """`podium a2a serve TARGET --port 0 --store STORE` (with `more` in its environment)."""
    args = ["-m", "podium", "a2a", "serve", target, "--port", "0", "--store", store]
    return start(args, **more)


def wait_for_step(store: str, run_id: str, agent: str, alive: subprocess.Popen[bytes]) -> None:
    """Wait (20 s at most) until `agent`'s step of `run_id` is journaled as completed in
    `store`, while `alive` runs: the state a crash test kills the caller in."""
    import asyncio

    from podium import Runtime

    async def done() -> bool:
        async with Runtime(store) as rt:
            try:
                steps = await rt.steps(run_id)
            except Exception:  # the run is not made yet
                return False
            return any(s.agent == agent and s.status == "completed" for s in steps)

    end = time.monotonic() + 20
    while not asyncio.run(done()):
        assert time.monotonic() < end, f"{agent} of {run_id} never completed"
        assert alive.poll() is None, "the caller ended before it was killed"
        time.sleep(0.05)


def kill_mid_call_then_resume(
    store: str, run_id: str, url: str, text: str
) -> subprocess.CompletedProcess[str]:
    """Run a2a_caller.py's flow on `text` as `run_id`, SIGKILL it once its send is journaled
    (the poll under way), then resume the run in a new process: what that process did."""
    caller_py = str(HERE / "a2a_caller.py")
    caller = subprocess.Popen(
        [sys.executable, caller_py, store, run_id, url, text],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_step(store, run_id, "peer.send", caller)  # sent, the poll under way
        os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    finally:
        caller.kill()
        caller.communicate()
    return subprocess.run(
        [sys.executable, caller_py, store, run_id, url, "--resume"],
        env=env(),
        capture_output=True,
        text=True,
        cwd=HERE,
    )
