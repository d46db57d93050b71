"""An in-process store: dicts and lists, nothing survives the process. For tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from podium.core.audit import (
    AUDITED,
    AuditDraft,
    AuditHead,
    AuditRecord,
    audit_key,
    chain,
    draft,
    event_draft,
    head_of,
    sha256,
)
from podium.core.clock import Clock, clock_or_default
from podium.core.records import Event, Lease, RunRecord, RunStatus, StepRecord, Usage
from podium.core.serde import Unstorable, check_storable, loads, store_dumps, unstorable_output
from podium.errors import RunLimitExceededError, UsageError
from podium.stores.base import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, summary


class MemoryStore:
    """Keeps outputs as the Python objects they are; replay hands back the same object. It
    refuses what a persistent store could not keep, so a flow that works here works there.

    Leases are exclusive as in every store, but writes are not fenced: the store lives in
    one process, and every writer of a run shares it (fencing tells one store instance from
    another, so there is nothing to tell apart)."""

    # What it keeps at most: a run's input, one step's output, as JSON bytes (its runtime
    # sets them from its limits: `podium.runtime.limits`).
    max_input_bytes: int = MAX_INPUT_BYTES
    max_output_bytes: int = MAX_OUTPUT_BYTES

    def __init__(self, url: str = "memory://", *, clock: Clock | None = None) -> None:
        self.url = url
        self.clock = clock_or_default(clock)  # lease expiry and timestamps
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._events: dict[str, list[Event]] = {}
        self._kv: dict[str, dict[str, Any]] = {}
        self._leases: dict[str, Lease] = {}  # released ones too (owner ""): epochs only grow
        self._audit: dict[str, list[AuditRecord]] = {}
        self._heads: dict[str, AuditHead] = {}
        self._audited: dict[str, set[int]] = {}  # event seqs chained, by run
        self._pending: dict[str, list[tuple[Event, bytes | None]]] = {}  # not linked yet

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_run(self, run: RunRecord) -> None:
        if run.run_id in self._runs:
            raise UsageError(f"a run with id {run.run_id!r} already exists")
        try:
            size = check_storable(run.input)
        except Unstorable as e:
            raise UsageError(f"input of run {run.run_id}: {e}") from None
        if size > self.max_input_bytes:
            raise RunLimitExceededError(run.run_id, "max_input_bytes", self.max_input_bytes, size)
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
        run.updated_at = self.clock.now()

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        runs = [r for r in self._runs.values() if status is None or r.status == status]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return [summary(r) for r in runs[:limit]]

    def record_started(self, step: StepRecord) -> None:
        self._steps[step.run_id][step.key] = step

    async def record_finished(self, step: StepRecord) -> int:
        try:
            size = check_storable(step.output)
        except Unstorable as e:
            raise unstorable_output(step.agent, step.key, e) from None
        limit = self.max_output_bytes
        if size > limit:
            raise RunLimitExceededError(step.run_id, "max_output_bytes", limit, size, step.key)
        self._steps[step.run_id][step.key] = step
        return size

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        steps = self._steps.get(run_id, {})
        return sorted(steps.values(), key=lambda s: s.started_at)

    def record_event(self, event: Event) -> None:
        self._events[event.run_id].append(event)
        if event.kind.startswith(AUDITED):  # is_audited, inlined: every event passes here
            seen = self._audited.setdefault(event.run_id, set())
            if event.seq in seen:  # recorded before: chained once
                return
            seen.add(event.seq)
            # Linked when first read: nothing can come between here and there in one
            # process, and a run nobody audits pays only this append (the key is the one
            # set now, as a persistent store would sign with it now).
            self._pending.setdefault(event.run_id, []).append((event, audit_key()))

    # audit ---------------------------------------------------------------------------------
    def _settle(self, run_id: str | None = None) -> None:
        """Link the audited events recorded since the last read (of `run_id`, or of all)."""
        runs = list(self._pending) if run_id is None else [run_id]
        for rid in runs:
            for e, key in self._pending.pop(rid, ()):
                d = event_draft(rid, e.seq, e.ts, e.kind, e.key, e.agent, e.attempt, e.data)
                self._link(d, key)

    def _link(self, d: AuditDraft, key: bytes | None) -> AuditRecord:
        stored = self._audit.setdefault(d.run_id, [])
        prev = None if not stored else AuditHead(d.run_id, stored[-1].seq, stored[-1].hash)
        (rec,) = chain([d], prev)
        stored.append(rec)
        self._heads[d.run_id] = head_of(rec, key)
        return rec

    def _append(self, drafts: list[AuditDraft]) -> list[AuditRecord]:
        key = audit_key()
        for d in drafts:
            self._settle(d.run_id)
        return [self._link(d, key) for d in drafts]

    async def append_audit(self, drafts: list[AuditDraft]) -> list[AuditRecord]:
        return self._append(drafts)

    async def load_audit(self, run_id: str) -> list[AuditRecord]:
        self._settle(run_id)
        return sorted(self._audit.get(run_id, ()), key=lambda r: r.seq)  # as SQL reads them

    async def audit_head(self, run_id: str) -> AuditHead | None:
        self._settle(run_id)
        return self._heads.get(run_id)

    async def audit_runs(self) -> list[str]:
        self._settle()
        return sorted(set(self._audit) | set(self._heads))

    async def purge_run(
        self, run_id: str, *, at: float, actor: str, kv: list[tuple[str, str]] | None = None
    ) -> AuditRecord | None:
        from podium.stores.sqlite_audit import purge_payload, purged_kv_value

        run = self._runs.get(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} in this store to purge")
        self._settle(run_id)
        hashes: dict[str, str] = {}

        def note(name: str, value: Any) -> None:
            if value is not None:
                hashes[name] = sha256(store_dumps(value))

        note("run.input", run.input)
        note("run.output", run.output)
        if run.error is not None:
            hashes["run.error"] = sha256(run.error)
        run.input = run.output = run.error = None
        for step in self._steps.get(run_id, {}).values():
            note(f"step.{step.key}.output", step.output)
            if step.error is not None:
                hashes[f"step.{step.key}.error"] = sha256(step.error)
            step.output = step.error = None
        for event in self._events.get(run_id, []):
            note(f"event.{event.seq}.data", event.data)
            event.data = None
        for namespace, k in kv or ():
            text = self._kv.get(namespace, {}).get(k)
            if text is not None:
                hashes[f"kv.{namespace}.{k}"] = sha256(text)
                self._kv[namespace][k] = purged_kv_value(text)
        records = self._audit.get(run_id, [])
        kept = [r.payload is None or r.kind.startswith("purge.") for r in records]
        cleared = kept.count(False)
        self._audit[run_id] = [
            r if k else replace(r, payload=None) for r, k in zip(records, kept, strict=True)
        ]
        if not hashes and not cleared:
            return None
        payload = purge_payload(hashes, cleared)
        (record,) = self._append([draft(run_id, "purge.done", at, actor, payload)])
        return record

    async def list_events(self, run_id: str) -> list[Event]:
        return list(self._events.get(run_id, ()))

    async def flush(self, run_id: str | None = None) -> None:
        return None

    # Values are kept as the JSON text a persistent store would keep: a value reads back in
    # the same shape on every store (a set comes back a list), and what they refuse is refused.
    async def kv_get(self, namespace: str, key: str) -> Any | None:
        return loads(self._kv.get(namespace, {}).get(key))

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        self._kv.setdefault(namespace, {})[key] = store_dumps(value)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return self._kv.get(namespace, {}).pop(key, None) is not None

    async def kv_update(self, namespace: str, key: str, fn: Callable[[Any | None], Any]) -> Any:
        # No await between the read and the write: atomic on this event loop.
        value = fn(loads(self._kv.get(namespace, {}).get(key)))
        self._kv.setdefault(namespace, {})[key] = store_dumps(value)
        return value

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        items = self._kv.get(namespace, {})
        return {k: loads(items[k]) for k in sorted(items)}

    # leases --------------------------------------------------------------------------------
    async def claim_lease(
        self,
        run_id: str,
        owner: str,
        ttl: float,
        *,
        holder: dict[str, Any] | None = None,
        steal: int | None = None,
    ) -> Lease | None:
        now = self.clock.now()
        held = self._leases.get(run_id)
        if (
            held is not None
            and held.owner
            and held.owner != owner
            and held.until >= now
            and held.epoch != steal
        ):
            return None
        epoch = 1 if held is None else held.epoch + 1
        lease = Lease(run_id, owner, epoch, now + ttl, dict(holder or {}))
        self._leases[run_id] = lease
        return lease

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        held = self._leases.get(lease.run_id)
        if held is None or held.owner != lease.owner or held.epoch != lease.epoch:
            return None
        renewed = Lease(lease.run_id, lease.owner, lease.epoch, self.clock.now() + ttl, held.holder)
        self._leases[lease.run_id] = renewed
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        held = self._leases.get(lease.run_id)
        if held is not None and held.owner == lease.owner and held.epoch == lease.epoch:
            self._leases[lease.run_id] = Lease(lease.run_id, "", lease.epoch, 0.0)

    async def get_lease(self, run_id: str) -> Lease | None:
        held = self._leases.get(run_id)
        return held if held is not None and held.owner else None
