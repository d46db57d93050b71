"""Fixtures for pattern tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from podium.errors import BudgetExceeded
from podium.runtime.door import Call, Handler, Middleware


@pytest.fixture
def refuse_model_calls_after() -> Callable[[int], Middleware]:
    """A stand-in for the door's `budget` slot: after `n` model calls it refuses the next
    ones with `BudgetExceeded`, as a spent budget does (replayed steps never reach it)."""

    def make(n: int) -> Middleware:
        started = 0

        async def budget(call: Call, nxt: Handler) -> Any:
            nonlocal started
            if call.kind == "model":
                if started >= n:
                    raise BudgetExceeded(f"budget: no model call after {n}")
                started += 1
            return await nxt(call)

        return budget

    return make
