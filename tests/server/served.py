"""A real `podium serve` on loopback, in a subprocess, on a SQLite file store (the fixture
is in this folder's conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "admin": "admin-key-0123456789abcdef",
    "viewer": "viewer-key-0123456789abcdef",
    "operator": "operator-key-0123456789abcdef",
    "approver": "approver-key-0123456789abcdef",
}
FLOWS = "tests/server/flows.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    store: str
    broken: Path
    rainy: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str | None = "admin", key: str | None = None) -> httpx.Client:
        token = key if key is not None else (KEYS[role] if role else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)  # closed by `stop`
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(
    tmp: Path,
    *,
    keys: bool = True,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Served:
    """Start `podium serve` and wait until /readyz answers."""
    port = free_port()
    store = f"sqlite:///{tmp}/server.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SERVER_BROKEN": str(tmp / "broken"),
        "SERVER_RAINY": str(tmp / "rainy"),
        **(env or {}),
    }
    env.pop("PODIUM_API_KEYS", None)
    if keys:
        env["PODIUM_API_KEYS"] = ",".join(f"{k}:{role}:{role}-1" for role, k in KEYS.items())
    log = tmp / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "podium",
                "serve",
                "--port",
                str(port),
                "--store",
                store,
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", proc, log, store, tmp / "broken", tmp / "rainy")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"podium serve exited: {log.read_text()}")
        try:
            if httpx.get(served.url + "/readyz", timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    served.stop()
    raise AssertionError(f"podium serve did not get ready: {log.read_text()}")
