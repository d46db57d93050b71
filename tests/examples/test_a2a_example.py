"""examples/a2a: the supplier's desk served over A2A by one podium process, the buyer's
workflow calling it from another, and a person answering from a third."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium import Runtime

ROOT = Path(__file__).resolve().parents[2]


def runs(url: str) -> list[Any]:
    async def go() -> list[Any]:
        async with Runtime(url) as rt:
            return [await rt.get_run(r.run_id) for r in await rt.list_runs()]

    return asyncio.run(go())


@pytest.mark.slow  # three real processes
def test_the_buyer_calls_the_supplier_over_a2a(tmp_path: Path) -> None:
    src = str(ROOT / "src")
    path = os.pathsep.join(p for p in (src, str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "examples.a2a", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting for a person: Grant a 10% bulk discount?" in done.stdout
    buyer = sorted(runs(f"sqlite:///{tmp_path / 'buyer.db'}"), key=lambda r: r.input["qty"])
    assert [(r.status, r.output["decision"]) for r in buyer] == [("completed", "buy")] * 2
    assert [r.output["quote"]["total"] for r in buyer] == [100, 337.5]
    supplier = sorted(runs(f"sqlite:///{tmp_path / 'supplier.db'}"), key=lambda r: r.input["qty"])
    assert [(r.agent, r.status) for r in supplier] == [("quote_desk", "completed")] * 2
    assert supplier[1].output["discount"] == 0.1
