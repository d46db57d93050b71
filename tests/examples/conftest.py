"""Shared by the example tests: the repository root on `sys.path` (so `examples.*` imports
however pytest is started), the default store pointed under `tmp_path`, and a runtime on a
SQLite file per test, on the test's `clock` (a `FakeClock`: deadlines pass when advanced).

`rt` asks for the test module's `biz` fixture, which points the example's business database
at the test's folder, so every example test writes only under `tmp_path`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium import NO_RETRY, Runtime
from podium.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The examples journal in the default store (`PODIUM_STORE`, else `./.podium/`): in a
    test, that is a file under `tmp_path`, never the repository."""
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("PODIUM_STORE", url)
    return url


@pytest.fixture
async def rt(tmp_path: Path, biz: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    async with Runtime(url, retry=NO_RETRY, clock=clock) as runtime:
        yield runtime
