"""The live suite: podium against a real OpenAI-compatible server, llama.cpp's
(`python -m llama_cpp.server`) serving the packaged 270M Gemma 3 base model on loopback.

One server per session. Tests reach it the way a user would, through `PODIUM_MODEL` and
`PODIUM_MODEL_BASE_URL` alone. The model is tiny and not instruction-tuned: the tests judge
the wire and podium's handling (requests accepted, usage counted, runs ending cleanly), not
the wisdom of its answers. Everything has a timeout. Without the `local` extra installed the
suite skips and says what to install.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.testing.llama_server import MODEL_NAME, LlamaServer, missing

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PODIUM_MODEL = f"openai:{MODEL_NAME}"


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    reason = missing()
    if reason is not None:
        pytest.skip(f"live suite needs llama.cpp's server and the packaged model: {reason}")
    with LlamaServer(startup_timeout=120) as server:
        yield server


@pytest.fixture
def live_env(llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The two variables a user sets, and nothing else that could point elsewhere."""
    for name in ("PODIUM_MODEL_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {"PODIUM_MODEL": PODIUM_MODEL, "PODIUM_MODEL_BASE_URL": llama_server.base_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
