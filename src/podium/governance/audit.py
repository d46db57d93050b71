"""Verifying the tamper-evident audit chain: which record is the first broken one, and why.

Stores append the records (see `podium.core.audit` for their shape and hashing) in the same
transaction as the journal row or event they belong to. `verify` walks each run's chain as it
was read back (in stored `seq` order) and names, per run, the first record that does not hold:

- `payload`: the payload does not match its hash (the payload was edited);
- `hash`: the record's fields do not give its hash (a byte of it was changed, or its seq);
- `link`: its `prev_hash` is not the previous record's hash (rows deleted or reordered);
- `gap`: seq numbers are missing (rows deleted);
- `order` / `duplicate`: a seq comes twice or goes back (rows reordered or copied);
- `head`: the chain does not end where its head says (records cut off the end, or the head
  row edited or deleted);
- `signature`: with `PODIUM_AUDIT_KEY` set, the head's HMAC does not match;
- `missing`: the run has more audited events than audit records (records and head deleted).

A head without signature while a key is set is reported as `unsigned` (a note, not a break,
unless `require_signature`): runs written before the key was set verify as before.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from podium.core.audit import (
    AUDITED,
    GENESIS,
    AuditHead,
    AuditRecord,
    audit_key,
    is_audited,
    record_hash,
    sha256,
    sign_head,
)

__all__ = [
    "AUDITED",
    "AuditHead",
    "AuditRecord",
    "Break",
    "Report",
    "FIELDS_TO_FLIP",
    "flip_byte",
    "is_audited",
    "verify",
    "verify_run",
]

Problem = Literal[
    "payload", "hash", "link", "gap", "order", "duplicate", "head", "signature", "missing"
]


@dataclass(frozen=True, slots=True)
class Break:
    """The first record of a run's chain that does not hold."""

    run_id: str
    seq: int
    problem: Problem
    detail: str

    def __str__(self) -> str:
        return f"run {self.run_id} audit record {self.seq}: {self.detail}"


@dataclass(slots=True)
class Report:
    """What `verify` found: per run, the first break (if any) and the signature status."""

    runs: int = 0
    records: int = 0
    breaks: list[Break] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)  # run -> signed|unsigned|no key
    # runs made before their store kept an audit chain (no `run.config`, no record): not
    # checked, and said so
    unaudited: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    def __str__(self) -> str:
        older = ""
        if self.unaudited:
            older = (
                f"; {len(self.unaudited)} run(s) made before this store kept an audit chain, "
                "not checked"
            )
        if self.ok:
            return f"audit intact: {self.records} record(s) in {self.runs} run(s){older}"
        return "\n".join(str(b) for b in self.breaks) + older


def verify(
    records: Iterable[AuditRecord],
    heads: Mapping[str, AuditHead | None] | None = None,
    *,
    key: bytes | Literal["env"] | None = "env",
    require_signature: bool = False,
    audited_events: Mapping[str, int] | None = None,
) -> Report:
    """Check every run's chain in `records` (grouped by run, each in the order read back).
    `heads` maps run id to its stored head: give it to catch records cut off the end (a run
    in `heads` with no records is checked too). `key` defaults to `PODIUM_AUDIT_KEY`.
    `audited_events` (run -> how many audited events it has) catches a chain deleted whole."""
    signing = audit_key() if key == "env" else key
    by_run: dict[str, list[AuditRecord]] = {}
    for r in records:
        by_run.setdefault(r.run_id, []).append(r)
    runs = sorted(set(by_run) | set(heads or {}) | set(audited_events or {}))
    report = Report(runs=len(runs))
    for run_id in runs:
        chain = by_run.get(run_id, [])
        report.records += len(chain)
        head = (heads or {}).get(run_id) if heads is not None else None
        found = verify_run(run_id, chain, head, checks_head=heads is not None, key=signing)
        expected = (audited_events or {}).get(run_id, 0)
        if found is None and expected > len(chain):
            detail = f"the run has {expected} audited events but {len(chain)} audit records"
            found = Break(run_id, len(chain) + 1, "missing", detail + " (records deleted)")
        status = _signature_status(head, signing)
        report.signatures[run_id] = status
        if found is None and require_signature and status != "signed":
            found = Break(run_id, len(chain), "signature", f"the chain's head is {status}")
        if found is not None:
            report.breaks.append(found)
    return report


def verify_run(
    run_id: str,
    chain: list[AuditRecord],
    head: AuditHead | None = None,
    *,
    checks_head: bool = True,
    key: bytes | None = None,
) -> Break | None:
    """The first broken record of one run's chain (in stored order), or None."""
    prev_seq, prev_hash = 0, GENESIS
    seqs = {r.seq for r in chain}
    for r in chain:
        found = _check(r, prev_seq, prev_hash, seqs)
        if found is not None:
            return found
        prev_seq, prev_hash = r.seq, r.hash
    if not checks_head:
        return None
    return _check_head(run_id, prev_seq, prev_hash, head, key)


def _check(r: AuditRecord, prev_seq: int, prev_hash: str, seqs: set[int]) -> Break | None:
    def brk(problem: Problem, detail: str) -> Break:
        return Break(r.run_id, r.seq, problem, detail)

    if r.seq == prev_seq:
        return brk("duplicate", f"seq {r.seq} comes twice (a copied or reordered row)")
    if r.seq < prev_seq:
        return brk("order", f"comes after record {prev_seq} (rows reordered)")
    if r.seq > prev_seq + 1 and prev_seq + 1 in seqs:
        return brk("order", f"comes before record {prev_seq + 1} (rows reordered)")
    if r.seq > prev_seq + 1:
        missing = f"{prev_seq + 1}" if r.seq == prev_seq + 2 else f"{prev_seq + 1}-{r.seq - 1}"
        return brk("gap", f"record(s) {missing} before it are missing (deleted)")
    if r.payload is not None and sha256(r.payload) != r.payload_hash:
        return brk("payload", "its payload does not match its payload_hash (payload edited)")
    expected = record_hash(r.run_id, r.seq, r.kind, r.at, r.actor, r.payload_hash, r.prev_hash)
    if not hmac.compare_digest(expected, r.hash):
        return brk("hash", "its fields do not match its hash (the record was altered)")
    if r.prev_hash != prev_hash:
        return brk(
            "link", "its prev_hash is not the previous record's hash (rows deleted or reordered)"
        )
    return None


def _check_head(
    run_id: str, last_seq: int, last_hash: str, head: AuditHead | None, key: bytes | None
) -> Break | None:
    if head is None:
        if last_seq == 0:
            return None
        return Break(run_id, last_seq, "head", "the chain's head row is missing (deleted)")
    if head.seq != last_seq or head.hash != last_hash:
        if head.seq > last_seq:
            detail = f"the head says the chain ends at {head.seq}: records were cut off the end"
            return Break(run_id, last_seq + 1, "head", detail)
        return Break(run_id, head.seq, "head", "the chain's head does not match its last record")
    if key is not None and head.signature is not None:
        expected = sign_head(run_id, head.seq, head.hash, key)
        if not hmac.compare_digest(expected, head.signature):
            return Break(run_id, head.seq, "signature", "the head's signature does not match")
    return None


def _signature_status(head: AuditHead | None, key: bytes | None) -> str:
    if head is None or head.signature is None:
        return "unsigned"
    if key is None:
        return "signed (no key to check it)"
    return "signed"


# tampering, for tests and the security benchmark ----------------------------------------
FIELDS_TO_FLIP = ("kind", "at", "actor", "payload", "payload_hash", "prev_hash", "hash", "seq")


def flip_byte(record: AuditRecord, field_name: str, index: int = 0) -> AuditRecord:
    """`record` with one byte of a text field changed (the byte at `index`, wrapped), or
    `seq` / `at` nudged: what an attacker editing one row would leave."""
    if field_name == "seq":
        return replace(record, seq=record.seq ^ (1 << 20))
    if field_name == "at":
        return replace(record, at=record.at + 1e-3)
    text = getattr(record, field_name)
    if not isinstance(text, str) or not text:
        raise ValueError(f"audit record field {field_name!r} has no text to flip")
    i = index % len(text)
    c = text[i]
    flipped = "0" if c != "0" else "1"
    if field_name in ("payload", "kind", "actor"):
        flipped = chr(ord(c) ^ 1)
    changes: dict[str, Any] = {field_name: text[:i] + flipped + text[i + 1 :]}
    return replace(record, **changes)
