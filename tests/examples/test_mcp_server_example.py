"""The MCP server example as its README runs it: the client script starts `podium mcp serve`
over stdio, lists the tools and calls them; the refund that waits is approved with `podium
approve` in another process, and its outcome is in the store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from forked import run_module
from podium import RunStatus, Runtime

ROOT = Path(__file__).resolve().parents[2]


def shell(module: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    path = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    done = run_module(module, *args, cwd=cwd, env=env)
    return done.returncode, done.stdout, done.stderr


async def test_the_client_lists_calls_and_a_person_approves_the_refund(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mcp-demo.db'}"
    code, out, err = shell("examples.mcp_server", "--store", store, cwd=tmp_path)
    assert code == 0, err
    assert "  quote(order_id, amount)  Quotes a refund" in out
    assert "  refund(order_id, amount)  Quotes a refund and pays it" in out
    assert "  podium_run_status(run_id)" in out
    assert "  progress 1: /quote/lookup#0 completed" in out
    assert "  progress 3: /quote completed" in out
    assert '"reason": "within the window, capped at 250.0"' in out
    assert "podium_run_status: waiting" in out
    found = re.search(r"podium approve (\S+) --store ([^\s\"]+)", out)
    assert found, out
    run_id = found.group(1)

    code, out, err = shell("podium", "approve", run_id, "--store", found.group(2), cwd=tmp_path)
    assert code == 0, err
    async with Runtime(store) as rt:
        runs = {r.agent: await rt.get_run(r.run_id) for r in await rt.list_runs()}
    assert runs["quote"].status == RunStatus.COMPLETED
    assert runs["refund"].status == RunStatus.COMPLETED
    assert runs["refund"].output == "refunded 25.00 to ada for A-1001"
    assert runs["quote"].output["refund"] == 250.0
