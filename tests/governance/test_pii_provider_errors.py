"""A provider that echoes the API key in its error body (a 401 saying which key it refused):
the real SDKs against a loopback server, and the key appears nowhere the run keeps."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium import LLMAgent, Runtime
from podium.errors import ModelError

# A key of no known shape: only the model's own knowledge of its key can hide it.
KEY = "local-key-7Hq2Zp9Lm4Xw"


def _echoing_server() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
            key = auth.removeprefix("Bearer ")
            message = f"Incorrect API key provided: {key}. You can find your API key online."
            body = json.dumps(
                {"type": "error", "error": {"message": message, "type": "authentication_error"}}
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def server() -> Iterator[str]:
    srv = _echoing_server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _model(provider: str, url: str) -> object:
    if provider == "openai":
        pytest.importorskip("openai")
        from podium.models.openai import OpenAIModel

        return OpenAIModel("gpt-test", base_url=f"{url}/v1", api_key=KEY)
    pytest.importorskip("anthropic")
    from podium.models.anthropic import AnthropicModel

    return AnthropicModel("claude-test", base_url=url, api_key=KEY)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_echoed_api_key_is_stored_nowhere(
    provider: str, server: str, tmp_path: Path
) -> None:
    model = _model(provider, server)
    bot = LLMAgent("bot", model=model, instructions="Answer.")  # type: ignore[arg-type]
    db = tmp_path / "runs.db"
    try:
        async with Runtime(f"sqlite:///{db}") as rt:
            result = await rt.run(bot, "hello")
            events = await rt.events(result.run_id)
            steps = await rt.steps(result.run_id)
            letters = await rt.dead_letters()
    finally:
        await model.aclose()  # type: ignore[attr-defined]
    assert not result.ok
    assert isinstance(result.exception, Exception)
    cause = result.exception
    while cause.__cause__ is not None and not isinstance(cause, ModelError):
        cause = cause.__cause__  # type: ignore[assignment]
    assert isinstance(cause, ModelError), result.exception
    assert "<secret:api_key>" in (result.error or ""), result.error
    assert KEY not in (result.error or "") and KEY not in str(cause)
    assert KEY not in repr(events) + repr(steps) + json.dumps(letters)
    assert KEY not in db.read_bytes().decode("utf-8", "replace")
