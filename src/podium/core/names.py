"""Names and run ids: they end up in step keys, store rows and terminals, so every layer checks
them the same way, before anything is written."""

from __future__ import annotations

import re
from typing import Any

from podium.errors import UsageError

MAX_NAME_LENGTH = 200  # names make up step keys, which stores index
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$")

MAX_RUN_ID = 200


def check_name(name: object, what: str = "agent") -> str:
    """Names end up in step keys (`/flow/step#0`), so they may not hold `/`, `#` or spaces,
    and stay short enough for a store to index a key of many of them."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"{what} name {name!r} is not valid: use letters, digits, '_', '-', '.' or ':'"
        )
    if len(name) > MAX_NAME_LENGTH:
        too_long = f"{len(name)} characters, more than {MAX_NAME_LENGTH}"
        raise UsageError(f"{what} name {name[:40]!r}... is too long ({too_long})")
    return name


def check_run_id(run_id: Any) -> str:
    """A run id every store can keep and every terminal can show: printable text of 1 to
    200 characters. Anything else is refused before anything is written."""
    if not isinstance(run_id, str) or not run_id:
        raise UsageError("a run id must be a non-empty string (omit it for a random one)")
    if len(run_id) > MAX_RUN_ID:
        raise UsageError(f"a run id has at most {MAX_RUN_ID} characters, not {len(run_id)}")
    if not run_id.isprintable():
        raise UsageError(
            f"run id {run_id[:60]!r} holds characters that cannot be printed or stored "
            "(control characters, NUL, invalid Unicode)"
        )
    return run_id


def check_lookup_id(run_id: Any) -> str:
    """A run id to look up: any length (stores made before ids were checked may hold longer
    ones), but printable, so that no store driver chokes on it."""
    if not isinstance(run_id, str) or not run_id.isprintable():
        return check_run_id(run_id)  # raises, naming the problem
    return run_id
