"""Lint, format and type checks run with the tests, so CI holds the code to them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format_are_clean() -> None:
    ruff = shutil.which("ruff") or "ruff"
    lint = run(ruff, "check", "src", "tests", "examples", "bench")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = run(ruff, "format", "--check", "src", "tests", "examples", "bench")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_strict_on_src_is_clean() -> None:
    typed = run(sys.executable, "-m", "mypy")
    assert typed.returncode == 0, typed.stdout[-3000:]
