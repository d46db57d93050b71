"""`podium serve`: the HTTP API (and, at `/`, the web UI) over a store.

`create_app(store_url, keys)` is the FastAPI app; `podium.server.auth` holds API keys and
roles. It needs the `server` extra (`pip install 'podium[server]'`): FastAPI and uvicorn.
"""

from __future__ import annotations

from podium.server.app import create_app

__all__ = ["create_app"]
