"""A run that no other process could resume is said once per agent, not on every run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from podium import Runtime, agent


async def test_the_no_target_warning_comes_once_per_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    @agent
    def first(x: int) -> int:
        return x

    @agent
    def second(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="podium")
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        for i in range(5):
            assert (await rt.run(first, i)).ok
        assert (await rt.run(second, 1)).ok
        warned = [r.getMessage() for r in caplog.records if "stores no target" in r.getMessage()]
        assert len(warned) == 2, warned
        assert "'first'" in warned[0] and "'second'" in warned[1]
        # another working directory has other rules: checked (and said) again there
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        assert (await rt.run(first, 9)).ok
    warned = [r for r in caplog.records if "stores no target" in r.getMessage()]
    assert len(warned) == 3
