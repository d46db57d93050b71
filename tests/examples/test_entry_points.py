"""`python -m examples.<name>` with a misconfigured environment: one `error:` line and exit 2,
as from the `podium` CLI, never a traceback and never a run started only to fail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from forked import run_module

ROOT = Path(__file__).resolve().parents[2]
USES_A_MODEL = ["returns_exchange", "investment_committee", "support_handoff", "payments"]


def example(name: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    clean.update(PYTHONPATH=path, RETURNS_DB=str(tmp_path / "business.db"), **env)
    return run_module(f"examples.{name}", cwd=tmp_path, env=clean)


@pytest.mark.parametrize("name", USES_A_MODEL)
@pytest.mark.parametrize("model", ["nonsense:x", "openai:"])
def test_a_bad_podium_model_is_one_line(tmp_path: Path, name: str, model: str) -> None:
    store = tmp_path / "podium.db"
    proc = example(name, tmp_path, PODIUM_MODEL=model, PODIUM_STORE=f"sqlite:///{store}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: model {model!r} is not understood"), line
    assert not store.exists()  # refused before any run started


def test_a_bad_podium_store_is_one_line(tmp_path: Path) -> None:
    proc = example("returns_exchange", tmp_path, PODIUM_STORE="mysql://x")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: unknown store URL 'mysql://x'"), line
