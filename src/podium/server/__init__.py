"""`podium serve`: the HTTP API (and, at `/`, the web UI) over a store.

`create_app(store_url, keys)` is the FastAPI app; `podium.server.auth` holds API keys and
roles. It needs the `server` extra (`pip install 'podium[server]'`): FastAPI and uvicorn.
`create_app` is imported when first used, so that `podium.server.auth` (which the A2A and
MCP servers use too) imports without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from podium.server.app import create_app

        return create_app
    raise AttributeError(f"module 'podium.server' has no attribute {name!r}")
