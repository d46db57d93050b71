"""Privacy from a workflow file and the environment: `sees_pii:` on an `llm` node, and
`PODIUM_PII` turning privacy on for the CLI's runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from podium.cli.app import app
from podium.core.records import Event
from podium.errors import UsageError
from podium.runtime.runtime import Runtime

CARD = "4539 1488 0343 6467"
EMAIL = "jane.doe.4821@example.com"

FLOW = """
name: support
kind: parallel
branches:
  - name: billing
    kind: llm
    model: scripted
    instructions: Charge the card.
    sees_pii: [card]
  - name: summary
    kind: llm
    model: scripted
    instructions: Summarise.
"""


def test_sees_pii_in_yaml_and_podium_pii_on_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_PII", "tokenize")
    monkeypatch.setenv("PODIUM_PII_KEY", "yaml-test-key")
    (tmp_path / "flow.yaml").write_text(FLOW)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    said = json.dumps(f"charge {CARD}, mail {EMAIL}")
    run = CliRunner().invoke(app, ["run", "flow.yaml", "-i", said, "--store", store, "--json"])
    assert run.exit_code == 0, run.output
    assert CARD not in run.output and EMAIL not in run.output
    run_id = json.loads(run.output)["run_id"]
    trace = CliRunner().invoke(app, ["trace", run_id, "--store", store, "--json"])
    assert trace.exit_code == 0, trace.output
    assert CARD not in trace.output and EMAIL not in trace.output

    async def read() -> list[Event]:
        async with Runtime(store) as rt:
            return await rt.events(run_id)

    events = asyncio.run(read())
    reveals = [e.data for e in events if e.kind == "pii.reveal"]
    assert reveals == [{"token_kind": "card", "agent": "billing"}]
    data = (tmp_path / "runs.db").read_bytes().decode("utf-8", "replace")
    assert CARD not in data and EMAIL not in data


def test_a_bad_podium_pii_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_PII", "hide")
    with pytest.raises(UsageError, match="PODIUM_PII must be `tokenize` or `mask`"):
        Runtime("memory://")
