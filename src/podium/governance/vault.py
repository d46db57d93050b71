"""Tokens for sensitive values, and the sealing of the values a vault keeps for them.

A token names a value without showing it: `<card:7f3a9c01be>` is the kind and the first 10
hex digits of an HMAC-SHA256, under the vault key, of the run, the kind and the value. The
same value in the same run always gets the same token (so a prompt says the same thing each
time, and a replay finds the same token), and a token tells nothing about its value to
whoever lacks the key, nor links one run's value to another's.

The vault keeps each token's value sealed (`seal` / `unseal`): encrypted with a keystream of
HMAC-SHA256 blocks (counter mode, a random 16-byte nonce per value) and authenticated with
an HMAC tag, from the standard library only. So the raw value never lands in the store's file
either; only a holder of the key (the runtime that configured privacy, or one given the same
`PODIUM_PII_KEY`) can turn a token back into its value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import Final

TOKEN_RE: Final = re.compile(r"<(card|email|phone|iban|national_id|secret):([0-9a-f]{10})>")
TOKEN_HEX: Final = 10


def token_for(key: bytes, run_id: str, kind: str, value: str) -> str:
    """The token that stands for `value` of `kind` in run `run_id`."""
    digest = hmac.new(key, f"{run_id}\0{kind}\0{value}".encode(), hashlib.sha256).hexdigest()
    return f"<{kind}:{digest[:TOKEN_HEX]}>"


def _keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    blocks = []
    for counter in range((n + 31) // 32):
        blocks.append(hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:n]


def seal(key: bytes, value: str) -> str:
    """`value` encrypted and authenticated under `key`, as base64 text."""
    data = value.encode()
    nonce = os.urandom(16)
    ct = bytes(a ^ b for a, b in zip(data, _keystream(key, nonce, len(data)), strict=True))
    tag = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
    return base64.b64encode(nonce + tag + ct).decode()


def unseal(key: bytes, sealed: str) -> str | None:
    """The value `seal` sealed, or None when `key` is not the one it was sealed with (or
    the text was changed)."""
    try:
        raw = base64.b64decode(sealed.encode(), validate=True)
    except ValueError:
        return None
    nonce, tag, ct = raw[:16], raw[16:32], raw[32:]
    want = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
    if len(nonce) < 16 or not hmac.compare_digest(tag, want):
        return None
    data = bytes(a ^ b for a, b in zip(ct, _keystream(key, nonce, len(ct)), strict=True))
    return data.decode()


def key_from(given: bytes | str | None) -> tuple[bytes, bool]:
    """The vault key: the one given, else `PODIUM_PII_KEY`, else a random one for this
    process; and whether it is random (tokens then outlive the process unrevealable)."""
    text = given if given is not None else os.environ.get("PODIUM_PII_KEY")
    if text is None:
        return os.urandom(32), True
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(b"podium-pii-vault\0" + raw).digest(), False
