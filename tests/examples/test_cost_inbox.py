"""The support inbox for less: repeated tickets answered from the cache, triages batched,
billing tickets written on the smart tier and the rest on the fast one; and the same inbox
driven by `podium batch` over the bundled tickets, resumable."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from examples.cost_control import inbox as example
from podium.cli.app import app


async def test_the_inbox_batches_caches_and_tiers(tmp_path: Path) -> None:
    tickets = example.load_tickets()
    repeats = len(tickets) - len(set(tickets))
    billing = {t for t in tickets if example._sort(t)["category"] == "billing"}
    out = await example.run_all(tickets, f"sqlite:///{tmp_path / 'runs.db'}")
    assert out["completed"] == len(tickets) == 24 and repeats == 7
    assert out["cache_hits"] == 2 * repeats  # triage and reply of every repeat
    unique = len(set(tickets))
    assert out["model_calls_by_model"]["gpt-4o"] == len(billing)  # only billing on gpt-4o
    assert out["model_calls_by_model"]["gpt-4o-mini"] == 2 * unique - len(billing)
    triage_requests = out["requests"] - unique  # one reply request per unique ticket
    assert triage_requests == -(-unique // 8)  # the triages went 8 to a call


def test_podium_batch_runs_the_bundled_tickets_and_skips_them_the_second_time(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    out = tmp_path / "results.jsonl"
    args = [
        "batch",
        "examples.cost_control.inbox:inbox",
        "--input",
        str(example.TICKETS),
        "--out",
        str(out),
        "--concurrency",
        "16",
        "--store",
        store,
        "--json",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 25))
    assert rows[0]["output"]["category"] == "billing" and rows[0]["output"]["urgent"] is True
    assert "router subscription" in rows[0]["output"]["reply"]
    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert (again["done_before"], again["usd"]) == (24, 0)
