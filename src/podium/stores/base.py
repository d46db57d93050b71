"""The store protocol: where runs, their journal and their events live.

One protocol, three backends (memory, SQLite, Postgres), one conformance suite run against
all of them. The hot path is `record_started` / `record_finished` / `record_event`, called for
every hop: the first and last are buffered and never wait; `record_finished` returns only once
the step (and everything buffered before it) would survive a process kill.

Persistent stores keep outputs as JSON (`podium.runtime.serde`); the journal re-validates them
into the declared type when it replays a step.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from podium.runtime.records import Event, RunRecord, RunStatus, StepRecord, Usage


@runtime_checkable
class Store(Protocol):
    url: str

    async def open(self) -> None:
        """Connect and create tables if needed. Called once before first use."""

    async def close(self) -> None:
        """Flush what is buffered and release connections."""

    # runs
    async def create_run(self, run: RunRecord) -> None:
        """Insert a new run; raises `UsageError` if the id exists."""

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        output: Any = None,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        """Set a run's status and, when given, its output, error and usage."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Newest first."""

    # journal
    def record_started(self, step: StepRecord) -> None:
        """Buffer a `started` row for this step; does not wait."""

    async def record_finished(self, step: StepRecord) -> None:
        """Write the step's final state; durable when this returns."""

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        """Every journal row of a run, in the order steps started."""

    # events
    def record_event(self, event: Event) -> None:
        """Buffer an event; does not wait."""

    async def list_events(self, run_id: str) -> list[Event]:
        """A run's events in `seq` order."""

    async def flush(self) -> None:
        """Make everything buffered so far durable."""

    # key-value: small JSON values that outlive a run (the dead-letter queue, learned
    # outcomes, anything a layer above needs to keep per store)
    async def kv_get(self, namespace: str, key: str) -> Any | None:
        """The value, or None."""

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        """Insert or replace; durable when this returns."""

    async def kv_delete(self, namespace: str, key: str) -> bool:
        """True if there was a value."""

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        """Every key of a namespace with its value, in key order."""

    async def kv_claim(
        self, namespace: str, key: str, owner: str, ttl: float, *, steal_from: str | None = None
    ) -> bool:
        """Atomically take (or renew) a lease: succeeds if nobody holds `key`, `owner` already
        does, the holder's lease ran out, or the holder is `steal_from` (known to be dead).
        The value becomes `{"owner", "until"}`."""
