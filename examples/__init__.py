"""Runnable examples, one folder per scenario (`python -m examples.<name>`)."""

from __future__ import annotations

import importlib
import sys


def run_example(module: str) -> int:
    """Import an example's module and call its `main()`, the way `podium` treats misuse: a
    bad `PODIUM_MODEL` or `PODIUM_STORE` (found while the workflow is built at import, or when
    the store opens) is one `error:` line and exit code 2, not a traceback."""
    from podium.errors import UsageError

    try:
        code: int = importlib.import_module(module).main()
    except UsageError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return code
