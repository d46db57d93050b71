"""Bearer keys at the door of the protocol servers that take `--keys-file` (`podium a2a
serve`, `podium mcp serve --transport http`): raw ASGI, no web framework, so that both
refuse and warn alike. The keys themselves (`configured_keys`, `KeyRing`, the roles) are
`podium serve`'s, in `podium.server.auth`; a server gets them as an `authenticate` function
from its CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ASK_FOR_KEY", "LOOPBACK", "bearer_key", "send_json", "unguarded_warning"]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
ASK_FOR_KEY = "send Authorization: Bearer KEY (a podium API key)"


def bearer_key(scope: Mapping[str, Any]) -> str | None:
    """The key of an ASGI request's `Authorization: Bearer KEY` header, or None."""
    header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


async def send_json(send: Any, status: int, body: Any, *, challenge: bool = False) -> None:
    """Answer an ASGI request with `body` as JSON (with `WWW-Authenticate: Bearer` if
    `challenge`: a 401, the request needs a key)."""
    headers = [(b"content-type", b"application/json")]
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def unguarded_warning(command: str, host: str, what: str) -> str | None:
    """What a server started with no API key on a non-loopback `host` warns (None on
    loopback): anyone who reaches the port may `what`."""
    if host in LOOPBACK:
        return None
    return (
        f"warning: {command} on {host} with no API key: anyone who reaches it may {what} "
        "(configure PODIUM_API_KEYS or --keys-file)"
    )
