"""An in-process store: dicts and lists, nothing survives the process. For tests and benchmarks."""

from __future__ import annotations

import copy
import time
from typing import Any

from podium.errors import UsageError
from podium.runtime.records import Event, RunRecord, RunStatus, StepRecord, Usage


class MemoryStore:
    """Keeps outputs as the Python objects they are; replay hands back the same object."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._events: dict[str, list[Event]] = {}
        self._kv: dict[str, dict[str, Any]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_run(self, run: RunRecord) -> None:
        if run.run_id in self._runs:
            raise UsageError(f"a run with id {run.run_id!r} already exists")
        self._runs[run.run_id] = run
        self._steps[run.run_id] = {}
        self._events[run.run_id] = []

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        output: Any = None,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        run = self._runs[run_id]
        run.status = status
        if output is not None:
            run.output = output
        run.error = error
        if usage is not None:
            run.usage = usage
        run.updated_at = time.time()

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        runs = [r for r in self._runs.values() if status is None or r.status == status]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[:limit]

    def record_started(self, step: StepRecord) -> None:
        self._steps[step.run_id][step.key] = step

    async def record_finished(self, step: StepRecord) -> None:
        self._steps[step.run_id][step.key] = step

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        steps = self._steps.get(run_id, {})
        return sorted(steps.values(), key=lambda s: s.started_at)

    def record_event(self, event: Event) -> None:
        self._events[event.run_id].append(event)

    async def list_events(self, run_id: str) -> list[Event]:
        return list(self._events.get(run_id, ()))

    async def flush(self) -> None:
        return None

    async def kv_get(self, namespace: str, key: str) -> Any | None:
        return copy.deepcopy(self._kv.get(namespace, {}).get(key))

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        self._kv.setdefault(namespace, {})[key] = copy.deepcopy(value)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return self._kv.get(namespace, {}).pop(key, None) is not None

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        items = self._kv.get(namespace, {})
        return {k: copy.deepcopy(items[k]) for k in sorted(items)}

    async def kv_claim(
        self, namespace: str, key: str, owner: str, ttl: float, *, steal_from: str | None = None
    ) -> bool:
        items = self._kv.setdefault(namespace, {})
        now = time.time()
        held = items.get(key)
        if (
            held is not None
            and held.get("owner") not in (owner, steal_from)
            and held.get("until", 0) >= now
        ):
            return False
        items[key] = {"owner": owner, "until": now + ttl}
        return True
