"""API keys and roles for `podium serve`.

A key is a random secret a client sends as `Authorization: Bearer KEY`. The server never
keeps a key, only its sha256, and names each key by an identity (a name given with it, else
`key-` and the first 8 hex digits of the hash): that identity, never the key, is what audit
records, decisions and logs carry.

Roles grant permissions, and nothing is allowed without one (deny by default):

- `viewer`: read (runs, steps, events, inbox, DLQ);
- `operator`: read, and start, cancel, resume runs, requeue and discard dead letters;
- `approver`: read, and approve, reject, answer waiting runs;
- `admin`: everything.

Keys come from `PODIUM_API_KEYS=key:role[:name],...`, a keys file (the same entries, one a
line or comma-separated, `#` comments), or, with neither, the store: `ensure_admin_key`
creates one admin key at the first start, keeps its hash in the store's `api_keys`
namespace, and returns the key once for the server to print (as Jupyter prints its token).

`podium a2a serve` and `podium mcp serve --transport http` take the same keys (never the
store's: `configured_keys`, `KeyRing`), checked with `podium.protocols.bearer`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from podium.errors import UsageError
from podium.stores import Store

Role = Literal["viewer", "operator", "approver", "admin"]
Permission = Literal["read", "operate", "decide"]

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "operate"}),
    "approver": frozenset({"read", "decide"}),
    "admin": frozenset({"read", "operate", "decide"}),
}
KEYS_ENV = "PODIUM_API_KEYS"
KV = "api_keys"
MIN_KEY_CHARS = 16  # a shorter key is guessable: refused when configured


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: the key's identity and role (never the key)."""

    identity: str
    role: str

    def may(self, permission: str) -> bool:
        return permission in ROLES.get(self.role, frozenset())


@dataclass(frozen=True, slots=True)
class KeyEntry:
    digest: str
    role: str
    identity: str


def parse_keys(text: str, source: str = KEYS_ENV) -> list[KeyEntry]:
    """`key:role[:name]` entries, separated by commas or newlines; a mistake names the entry
    by its position (never by the key it holds)."""
    entries = []
    parts = [p.strip() for line in text.splitlines() for p in line.split(",")]
    parts = [p for p in parts if p and not p.startswith("#")]
    for n, part in enumerate(parts, 1):
        key, _, rest = part.partition(":")
        role, _, name = rest.partition(":")
        role = role.strip().lower()
        if role not in ROLES:
            raise UsageError(
                f"{source}: entry {n} has role {role!r}; write key:role[:name] with a role "
                f"of {', '.join(ROLES)}"
            )
        if len(key) < MIN_KEY_CHARS:
            raise UsageError(
                f"{source}: entry {n} has a key of {len(key)} characters; use at least "
                f"{MIN_KEY_CHARS} random ones (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        digest = key_hash(key)
        entries.append(KeyEntry(digest, role, name.strip() or f"key-{digest[:8]}"))
    return entries


def configured_keys(keys_file: str | None = None) -> list[KeyEntry] | None:
    """The keys `PODIUM_API_KEYS` and `keys_file` configure, or None if neither does."""
    found: list[KeyEntry] = []
    configured = False
    env = os.environ.get(KEYS_ENV, "").strip()
    if env:
        configured = True
        found += parse_keys(env)
    if keys_file is not None:
        configured = True
        try:
            text = Path(keys_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read keys file {keys_file!r}: {e}") from None
        found += parse_keys(text, f"keys file {keys_file}")
    if configured and not found:
        raise UsageError(f"{KEYS_ENV} or the keys file is set but holds no key:role entry")
    return found if configured else None


async def stored_keys(store: Store) -> list[KeyEntry]:
    """The keys kept (hashed) in the store's `api_keys` namespace."""
    out = []
    for digest, value in (await store.kv_list(KV)).items():
        if isinstance(value, dict) and value.get("role") in ROLES:
            out.append(KeyEntry(digest, str(value["role"]), str(value.get("name") or digest[:8])))
    return out


async def ensure_admin_key(store: Store) -> str | None:
    """At the first start of a server with no key configured: make an admin key, keep its
    hash in the store, and return the key (to print once). None when the store has keys."""
    if await store.kv_list(KV):
        return None
    key = secrets.token_urlsafe(32)
    digest = key_hash(key)
    await store.kv_put(
        KV, digest, {"role": "admin", "name": f"admin-{digest[:8]}", "created_at": time.time()}
    )
    return key


class KeyRing:
    """The keys a server accepts, by hash; `find` compares in constant time per key."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self._by_hash: dict[str, KeyEntry] = {}
        self.replace(entries)

    def replace(self, entries: Iterable[KeyEntry]) -> None:
        self._by_hash = {e.digest: e for e in entries}

    def __len__(self) -> int:
        return len(self._by_hash)

    def find(self, key: str) -> Principal | None:
        digest = key_hash(key)
        for known, entry in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return Principal(entry.identity, entry.role)
        return None


def entries_of(keys: Mapping[str, str] | Iterable[KeyEntry] | None) -> list[KeyEntry] | None:
    """Keys given to `create_app`: a mapping of key to role (or `role:name`), or entries."""
    if keys is None:
        return None
    if isinstance(keys, Mapping):
        text = ",".join(f"{k}:{v}" for k, v in keys.items())
        return parse_keys(text, "create_app(keys=...)")
    out: list[Any] = list(keys)
    return out
