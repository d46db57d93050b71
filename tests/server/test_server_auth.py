"""API keys and roles (podium.server.auth), without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.errors import UsageError
from podium.server.auth import (
    KeyRing,
    Principal,
    configured_keys,
    ensure_admin_key,
    key_hash,
    parse_keys,
    stored_keys,
)
from podium.stores import open_store

KEY = "k" * 20


def test_roles_grant_what_they_say_and_nothing_else() -> None:
    may = {
        role: {p for p in ("read", "operate", "decide") if Principal("x", role).may(p)}
        for role in ("viewer", "operator", "approver", "admin", "root", "")
    }
    assert may == {
        "viewer": {"read"},
        "operator": {"read", "operate"},
        "approver": {"read", "decide"},
        "admin": {"read", "operate", "decide"},
        "root": set(),
        "": set(),
    }


def test_keys_parse_with_names_and_keep_only_hashes() -> None:
    entries = parse_keys(f"{KEY}:admin:alice,\n# a comment\n{'v' * 16}:Viewer")
    assert [(e.role, e.identity) for e in entries] == [
        ("admin", "alice"),
        ("viewer", f"key-{key_hash('v' * 16)[:8]}"),
    ]
    assert all(KEY not in repr(e) for e in entries)
    ring = KeyRing(entries)
    assert ring.find(KEY) == Principal("alice", "admin")
    assert ring.find(KEY + "x") is None and ring.find("") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f"{KEY}:root", "entry 1 has role 'root'"),
        (f"{KEY}", "entry 1 has role ''"),
        (f"{KEY}:viewer,short:admin", "entry 2 has a key of 5 characters"),
    ],
)
def test_a_bad_entry_is_named_by_position_never_by_its_key(text: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_keys(text)
    assert says in str(e.value) and KEY not in str(e.value)


def test_configured_keys_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_API_KEYS", raising=False)
    assert configured_keys() is None
    monkeypatch.setenv("PODIUM_API_KEYS", f"{KEY}:viewer")
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{'a' * 16}:approver:ann\n")
    found = configured_keys(str(keys_file))
    assert found is not None and [e.role for e in found] == ["viewer", "approver"]
    with pytest.raises(UsageError, match="cannot read keys file"):
        configured_keys(str(tmp_path / "missing"))
    monkeypatch.setenv("PODIUM_API_KEYS", " ")
    keys_file.write_text("# nothing\n")
    with pytest.raises(UsageError, match="holds no key"):
        configured_keys(str(keys_file))


async def test_the_first_admin_key_is_made_once_and_kept_hashed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/keys.db")
    await store.open()
    try:
        key = await ensure_admin_key(store)
        assert key is not None and len(key) >= 32
        assert await ensure_admin_key(store) is None
        (entry,) = await stored_keys(store)
        assert entry.role == "admin" and entry.digest == key_hash(key)
        assert KeyRing([entry]).find(key) == Principal(entry.identity, "admin")
    finally:
        await store.close()
    assert key not in (tmp_path / "keys.db").read_bytes().decode("latin-1")
