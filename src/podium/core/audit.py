"""The audit chain's records and how they are linked: what a store needs to append one.

Why this lives in core: a store appends audit records inside the transaction that writes the
journal row or event they belong to, and computes the link to the previous record there (a
decision is written by another process than the run's), so the hashing must be importable by
the stores. Verifying a chain (and naming the first broken record) is governance's job:
`podium.governance.audit`.

A record is `(run_id, seq, kind, at, actor, payload, payload_hash, prev_hash, hash)`:

- `seq` counts the run's audit records from 1; `prev_hash` is the previous record's `hash`
  (`GENESIS`, 64 zeros, for the first);
- `payload` is canonical JSON text (sorted keys, no spaces, UTF-8 kept), `payload_hash` its
  sha256; purging a run's payloads sets `payload` to None and keeps the hash;
- `hash` is the sha256 of the canonical JSON of every other field (the payload only through
  its hash), so that a purged chain still verifies, and the run id is part of it, so that a
  record cannot be moved into another run's chain.

The chain's head (last seq and hash) is kept per run beside the records, and signed with
HMAC-SHA256 when `PODIUM_AUDIT_KEY` is set: without it, cutting records off the end of a
chain would go unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from podium.core.serde import store_dumps

GENESIS = "0" * 64
KEY_ENV = "PODIUM_AUDIT_KEY"
# Events whose kind starts with one of these are chained (the contract of issue 11).
AUDITED: tuple[str, ...] = (
    "policy.",
    "approval.",
    "effect.",
    "taint.",
    "guard.",
    "decision.",
    "run.config",
    "pii.reveal",
    "purge.",
)


def is_audited(kind: str) -> bool:
    """Whether an event of this kind is chained (one `str.startswith`: on the hot path; a
    kind that is no string is for the store to refuse, not for this test)."""
    return kind.__class__ is str and kind.startswith(AUDITED)


def canonical(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept; what has no JSON form is
    refused (`Unstorable`), NaN and infinities are tagged as every store keeps them."""
    try:  # plain JSON values (the usual event data): straight to text
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):  # models, dataclasses, NaN: their stored form
        plain = json.loads(store_dumps(value))  # keeps the NaN tags
        return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_encode_str: Any = json.encoder.encode_basestring  # a JSON string, UTF-8 kept (C speed)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """A record before it joins the chain: everything but its place (seq) and links."""

    run_id: str
    kind: str
    at: float
    actor: str
    payload: str  # canonical JSON text
    payload_hash: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of a run's audit chain, as stored."""

    run_id: str
    seq: int
    kind: str
    at: float
    actor: str
    payload: str | None  # canonical JSON text; None once purged
    payload_hash: str
    prev_hash: str
    hash: str

    @property
    def value(self) -> Any:
        """The payload as a value (None once purged)."""
        return None if self.payload is None else json.loads(self.payload)

    def row(self) -> tuple[Any, ...]:
        """The fields in table order (`run_id, seq, kind, at, actor, payload, payload_hash,
        prev_hash, hash`)."""
        return (
            self.run_id,
            self.seq,
            self.kind,
            self.at,
            self.actor,
            self.payload,
            self.payload_hash,
            self.prev_hash,
            self.hash,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "payload": self.value,
            "payload_hash": self.payload_hash,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The last link of a run's chain; `signature` is its HMAC when a key was set."""

    run_id: str
    seq: int
    hash: str
    signature: str | None = None


def draft(run_id: str, kind: str, at: float, actor: str, payload: Any) -> AuditDraft:
    text = canonical(payload)
    return AuditDraft(run_id, kind, float(at), actor, text, sha256(text))


def event_draft(
    run_id: str,
    seq: int,
    ts: float,
    kind: str,
    key: str,
    agent: str,
    attempt: int,
    data: dict[str, Any] | None,
) -> AuditDraft:
    """The record of an audited event: who acted is the OS user or approver the event names,
    else the agent it happened in."""
    actor = agent or "podium"
    if data:
        actor = str(data.get("user") or data.get("by") or actor)
    payload = {"event": seq, "key": key, "agent": agent, "attempt": attempt, "data": data}
    return draft(run_id, kind, ts, actor, payload)


def record_hash(
    run_id: str, seq: int, kind: str, at: float, actor: str, payload_hash: str, prev_hash: str
) -> str:
    """The hash a record with these fields must carry: the sha256 of the canonical JSON of
    `{actor, at, kind, payload_hash, prev_hash, run_id, seq}` (written out by hand here, the
    same text `canonical` gives, at a third of its cost: one is computed per record)."""
    enc = _encode_str
    text = (
        f'{{"actor":{enc(actor)},"at":{float(at)!r},"kind":{enc(kind)},'
        f'"payload_hash":{enc(payload_hash)},"prev_hash":{enc(prev_hash)},'
        f'"run_id":{enc(run_id)},"seq":{int(seq)}}}'
    )
    return sha256(text)


def link(d: AuditDraft, prev_seq: int, prev_hash: str) -> AuditRecord:
    """`d` as the record after (`prev_seq`, `prev_hash`): (0, GENESIS) for the first."""
    seq = prev_seq + 1
    h = record_hash(d.run_id, seq, d.kind, d.at, d.actor, d.payload_hash, prev_hash)
    return AuditRecord(
        d.run_id, seq, d.kind, d.at, d.actor, d.payload, d.payload_hash, prev_hash, h
    )


def audit_key() -> bytes | None:
    """The signing key from `PODIUM_AUDIT_KEY`, or None (heads are then kept unsigned)."""
    key = os.environ.get(KEY_ENV)
    return key.encode("utf-8") if key else None


def sign_head(run_id: str, seq: int, hash: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the head's canonical JSON."""
    text = json.dumps({"hash": hash, "run_id": run_id, "seq": seq}, sort_keys=True)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def head_of(record: AuditRecord, key: bytes | None) -> AuditHead:
    """The head after `record`, signed if there is a key."""
    sig = None if key is None else sign_head(record.run_id, record.seq, record.hash, key)
    return AuditHead(record.run_id, record.seq, record.hash, sig)


def chain(drafts: list[AuditDraft], prev: AuditHead | None) -> list[AuditRecord]:
    """Link `drafts` (of one run) after `prev` (None: the chain is empty)."""
    seq, h = (0, GENESIS) if prev is None else (prev.seq, prev.hash)
    out = []
    for d in drafts:
        rec = link(d, seq, h)
        out.append(rec)
        seq, h = rec.seq, rec.hash
    return out
