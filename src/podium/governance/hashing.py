"""The hash that binds an approval, a denial or an audit record to one exact tool call.

Canonical JSON (sorted keys, no spaces, UTF-8 kept) of `{"tool": name, "args": args}`, so the
same call hashes the same in every process and every language, and any change of tool or
argument gives another hash: an approval for one call cannot be replayed for another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def args_hash(tool: str, args: Any) -> str:
    """sha256 hex of the canonical JSON of `{"tool": tool, "args": args}`."""
    text = json.dumps(
        {"tool": tool, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
