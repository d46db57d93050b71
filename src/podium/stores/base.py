"""The store protocol: where runs, their journal and their events live.

One protocol, three backends (memory, SQLite, Postgres), one conformance suite run against
all of them. The hot path is `record_started` / `record_finished` / `record_event`, called for
every hop: the first and last are buffered and never wait; `record_finished` returns only once
the step (and everything buffered before it) would survive a process kill.

Persistent stores keep outputs as JSON (`podium.core.serde.store_dumps`); the journal
re-validates them into the declared type when it replays a step. A value with no JSON form is
refused when it is recorded (`OutputTypeError` naming agent, step and type), in every store.

One run's bad row never costs another run its writes: rows are written together, but a row
that cannot be written fails only its own writer.

Leases and fencing: a runtime drives a run only while it holds the run's lease
(`claim_lease`). Once a store instance granted a lease, every journal row, event and status
update of that run written through it commits only while that lease's epoch is still the
run's: after another process claimed the run (a new epoch), the write raises `LeaseLost`
(writes nobody waits for are dropped). The check is part of the write's own transaction or
statement, never a round trip of its own.

Audit: an event whose kind is audited (`podium.core.audit.AUDITED`: policy., approval.,
effect., decision., run.config, ...) gets a hash-chained audit record, appended by the store
in the event's own transaction, linked to the run's last stored record read inside that
transaction (so a decision written by another process joins the same chain). Rows recorded
with no await between them (an event, then `record_finished` of its step) commit in one
transaction in every store: that is how a decision's or an effect's record commits with its
journal row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from podium.core.audit import AuditDraft, AuditHead, AuditRecord
from podium.core.records import Event, Lease, RunRecord, RunStatus, StepRecord, Usage

MAX_INPUT_BYTES = 16 << 20
MAX_OUTPUT_BYTES = 16 << 20
"""What a store keeps at most, as JSON bytes: a run's input, one step's output. Every store
has them as attributes (`store.max_input_bytes`, `store.max_output_bytes`), which its
runtime sets from its limits (`podium.runtime.limits`); a value over them is refused with
`RunLimitExceededError` before anything is written, measured on the text the store writes."""

LISTED_ERROR_CHARS = 1000
"""How much of a run's error a listing (`list_runs`) reads."""


def summary(run: RunRecord) -> RunRecord:
    """A run as `list_runs` gives it: no input, no output, the start of its error. Listing
    thousands of runs must not read (or hold) what each of them produced."""
    error = run.error
    if error is not None and len(error) > LISTED_ERROR_CHARS:
        error = error[:LISTED_ERROR_CHARS]
    return replace(run, input=None, output=None, error=error)


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
        """Newest first, as summaries (`summary`): without input and output, the error cut
        to `LISTED_ERROR_CHARS`; the whole of one run is `get_run`'s."""

    # journal
    def record_started(self, step: StepRecord) -> None:
        """Buffer a `started` row for this step; does not wait."""

    async def record_finished(self, step: StepRecord) -> int | None:
        """Write the step's final state; durable when this returns, with the size of its
        output as kept, in bytes (what the run's journal limit counts). Raises
        `OutputTypeError` for an output with no JSON form, `RunLimitExceededError` for one
        over `max_output_bytes` (nothing written in either case), `LeaseLost` if the run's
        lease was taken, `JournalUnavailable` if the row could not be written. A store that
        does not measure returns None: its runs' journal total is then not counted."""

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        """Every journal row of a run, in the order steps started."""

    # events
    def record_event(self, event: Event) -> None:
        """Buffer an event; does not wait."""

    async def list_events(self, run_id: str) -> list[Event]:
        """A run's events in `seq` order."""

    async def flush(self, run_id: str | None = None) -> None:
        """Make everything buffered so far durable; raise what a buffered write of `run_id`
        (of any run if None) could not do, once."""

    # audit (see `podium.core.audit`; verified by `podium.governance.audit.verify`)
    async def append_audit(self, drafts: list[AuditDraft]) -> list[AuditRecord]:
        """Chain records that belong to no event (in one transaction); returns them linked."""

    async def load_audit(self, run_id: str) -> list[AuditRecord]:
        """A run's audit records as stored, in `seq` order."""

    async def audit_head(self, run_id: str) -> AuditHead | None:
        """The run's chain head (last seq and hash, signed with `PODIUM_AUDIT_KEY` if set)."""

    async def audit_runs(self) -> list[str]:
        """The runs that have audit records or a head, sorted."""

    async def purge_run(
        self, run_id: str, *, at: float, actor: str, kv: list[tuple[str, str]] | None = None
    ) -> AuditRecord | None:
        """Delete the run's payloads (input, output, errors, step outputs and errors, event
        data, audit payloads, and those of the (namespace, key) entries in `kv`) and chain a
        `purge.done` record with the sha256 of each, in one transaction; returns it (None, with
        no record, when nothing was left to delete). The chain still verifies: records keep
        their payload hashes; `purge.done` records keep their payloads. `UsageError` for no
        run."""

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

    async def kv_update(self, namespace: str, key: str, fn: Callable[[Any | None], Any]) -> Any:
        """Store `fn(current value or None)` and return it, atomically: no other update of
        the key, from any process, lands between the read and the write. `fn` must be pure
        (a busy store may call it again) and must not await."""

    # leases
    async def claim_lease(
        self,
        run_id: str,
        owner: str,
        ttl: float,
        *,
        holder: dict[str, Any] | None = None,
        steal: int | None = None,
    ) -> Lease | None:
        """Atomically take a run's lease for `ttl` seconds, with the next epoch: succeeds if
        nobody holds it, its holder let it go or let it run out, `owner` holds it already, or
        its epoch is `steal` (a holder known to be dead). None if someone else holds it.
        From here on this store fences the run's writes with the new epoch."""

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        """Extend a lease still held (same owner and epoch); None if it was lost."""

    async def release_lease(self, lease: Lease) -> None:
        """Let a lease go if it is still held; its epoch is kept, so the next one is higher."""

    async def get_lease(self, run_id: str) -> Lease | None:
        """The run's lease while someone holds it (it may have run out), else None."""
