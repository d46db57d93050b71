"""The audit chain's logic, without a store: every kind of tampering is named, first."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from podium.core.audit import (
    GENESIS,
    AuditRecord,
    chain,
    draft,
    event_draft,
    head_of,
    is_audited,
    sha256,
)
from podium.governance.audit import FIELDS_TO_FLIP, flip_byte, verify

KEY = b"secret key"


def make_chain(run_id: str = "r1", n: int = 5) -> list[AuditRecord]:
    drafts = [
        draft(run_id, "policy.denied", 1000.0 + i, "alice", {"tool": "pay", "i": i, "t": "é"})
        for i in range(n)
    ]
    return chain(drafts, None)


def heads_of(records: list[AuditRecord], key: bytes | None = None) -> dict[str, object]:
    return {records[-1].run_id: head_of(records[-1], key)}


def test_an_intact_chain_verifies_and_links_from_genesis() -> None:
    records = make_chain()
    assert records[0].prev_hash == GENESIS
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    report = verify(records, heads_of(records), key=None)
    assert report.ok, str(report)
    assert report.records == 5 and report.runs == 1
    assert str(report) == "audit intact: 5 record(s) in 1 run(s)"


def test_only_security_kinds_are_audited() -> None:
    for kind in (
        "policy.denied",
        "approval.granted",
        "effect.executed",
        "decision.recorded",
        "run.config",
        "pii.reveal",
        "purge.done",
        "taint.escalated",
        "guard.tripped",
    ):
        assert is_audited(kind), kind
    for kind in ("step.started", "step.completed", "run.started", "run.completed", "model.delta"):
        assert not is_audited(kind), kind


@pytest.mark.parametrize("field", FIELDS_TO_FLIP)
@pytest.mark.parametrize("at", [0, 2, 4])
def test_one_flipped_byte_in_any_field_names_that_record(field: str, at: int) -> None:
    records = make_chain()
    records[at] = flip_byte(records[at], field, index=7)
    report = verify(records, heads_of(make_chain()), key=None)
    assert not report.ok
    first = report.first
    assert first is not None and first.run_id == "r1"
    assert first.seq in (at + 1, records[at].seq), str(first)
    assert "r1" in str(first) and "audit record" in str(first)


def test_an_edited_payload_is_named_as_such() -> None:
    records = make_chain()
    records[1] = replace(records[1], payload=records[1].payload.replace('"i":1', '"i":9'))
    (brk,) = verify(records, key=None).breaks
    assert (brk.seq, brk.problem) == (2, "payload")


def test_a_deleted_row_is_a_gap_named_at_the_next_record() -> None:
    records = make_chain()
    del records[2]
    (brk,) = verify(records, key=None).breaks
    assert (brk.seq, brk.problem) == (4, "gap")
    assert "3 before it are missing" in brk.detail


def test_reordered_rows_are_named() -> None:
    records = make_chain()
    records[1], records[2] = records[2], records[1]  # read back out of order
    (brk,) = verify(records, key=None).breaks
    assert (brk.seq, brk.problem) == (3, "order")
    swapped = make_chain()  # the seq values swapped in place: each keeps the other's hash
    a, b = swapped[1], swapped[2]
    swapped[1], swapped[2] = replace(b, seq=2), replace(a, seq=3)
    (brk,) = verify(swapped, key=None).breaks
    assert (brk.seq, brk.problem) == (2, "hash")


def test_a_rehashed_record_still_breaks_the_next_link() -> None:
    """An attacker who recomputes the edited record's hash breaks the link after it."""
    records = make_chain()
    r = records[1]
    forged = draft("r1", r.kind, r.at, "mallory", {"tool": "pay"})
    (relinked,) = chain([forged], head_of(records[0], None))
    records[1] = relinked
    (brk,) = verify(records, key=None).breaks
    assert (brk.seq, brk.problem) == (3, "link")


def test_a_duplicated_row_is_named() -> None:
    records = make_chain()
    records.insert(2, records[1])
    (brk,) = verify(records, key=None).breaks
    assert (brk.seq, brk.problem) == (2, "duplicate")


def test_records_cut_off_the_end_are_caught_by_the_head() -> None:
    full = make_chain()
    report = verify(full[:3], heads_of(full), key=None)
    (brk,) = report.breaks
    assert (brk.seq, brk.problem) == (4, "head")
    missing_head = verify(full, {"r1": None}, key=None)
    assert missing_head.first is not None and missing_head.first.problem == "head"


def test_a_record_moved_to_another_run_does_not_verify() -> None:
    a, b = make_chain("ra", 2), make_chain("rb", 2)
    moved = replace(a[1], run_id="rb", prev_hash=b[1].hash, seq=3)
    (brk,) = verify([*b, moved], key=None).breaks
    assert (brk.run_id, brk.seq, brk.problem) == ("rb", 3, "hash")


def test_a_whole_chain_deleted_is_caught_by_the_audited_events() -> None:
    report = verify([], {}, key=None, audited_events={"r1": 3})
    (brk,) = report.breaks
    assert (brk.run_id, brk.seq, brk.problem) == ("r1", 1, "missing")


def test_signed_heads_verify_with_the_key_and_fail_with_another() -> None:
    records = make_chain()
    heads = heads_of(records, KEY)
    good = verify(records, heads, key=KEY)
    assert good.ok and good.signatures == {"r1": "signed"}
    bad = verify(records, heads, key=b"another key")
    assert bad.first is not None and bad.first.problem == "signature"
    assert "signature does not match" in str(bad)
    unsigned = verify(records, heads_of(records), key=KEY)
    assert unsigned.ok and unsigned.signatures == {"r1": "unsigned"}
    required = verify(records, heads_of(records), key=KEY, require_signature=True)
    assert required.first is not None and "unsigned" in required.first.detail


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    records = make_chain()
    heads = heads_of(records, KEY)
    monkeypatch.setenv("PODIUM_AUDIT_KEY", "wrong")
    assert not verify(records, heads).ok
    monkeypatch.setenv("PODIUM_AUDIT_KEY", KEY.decode())
    assert verify(records, heads).ok


def test_a_purged_payload_keeps_the_chain_verifiable() -> None:
    records = [replace(r, payload=None) for r in make_chain()]
    assert verify(records, heads_of(records), key=None).ok


def test_event_records_name_the_os_user_as_actor() -> None:
    d = event_draft(
        "r",
        4,
        1.0,
        "decision.recorded",
        "/f/ok",
        "ok",
        0,
        {"by": "alice", "user": "bob", "action": "approve"},
    )
    assert d.actor == "bob"
    assert d.payload_hash == sha256(d.payload)
    assert event_draft("r", 1, 1.0, "policy.denied", "/f", "f", 0, {"tool": "x"}).actor == "f"


def test_the_record_hash_is_the_sha256_of_the_records_canonical_json() -> None:
    import json

    from podium.core.audit import canonical, record_hash

    fields = {
        "run_id": 'r\u00e9"x',
        "seq": 7,
        "kind": "policy.denied",
        "at": 1000.0,
        "actor": "ali\nce",
        "payload_hash": "a" * 64,
        "prev_hash": GENESIS,
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record_hash(**fields) == sha256(text)  # type: ignore[arg-type]
    assert record_hash(**{**fields, "at": 1000}) == sha256(text)  # type: ignore[arg-type]
    assert canonical({"b": [1, 2.5, None], "a": "é"}) == '{"a":"é","b":[1,2.5,null]}'
    assert canonical({"x": float("nan")}) == '{"x":{"$podium:float":"nan"}}'
