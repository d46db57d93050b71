"""`podium batch TARGET --input items.jsonl --out results.jsonl`: one run per line, bad lines
reported and skipped, resumable (completed items are not run again, failed ones are resumed),
a summary at the end, a progress bar with cost, and Ctrl-C that loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from podium.cli.app import app
from podium.cli.batch import BatchProgress, Job

FLOW = """
import asyncio
import os
from pathlib import Path

from podium import LLMAgent, ScriptedModel, Usage, agent


@agent
async def shout(item: dict) -> dict:
    await asyncio.sleep(float(os.environ.get("BATCH_SLEEP", "0")))
    if item.get("fail") and Path("broken").exists():
        raise RuntimeError(f"cannot shout {item['text']}")
    with open("done.log", "a") as f:
        f.write(item["text"] + "\\n")
    return {"text": item["text"].upper()}


writer = LLMAgent(
    "writer",
    model=ScriptedModel(lambda m, t, s: "ok", name="gpt-4o", usage=Usage(1000, 100, 1)),
    instructions="Write.",
)
"""
CALL_USD = (1000 * 2.5 + 100 * 10.0) / 1e6


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.delenv("PODIUM_CACHE", raising=False)
    return tmp_path


def write_items(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def done_log(project: Path) -> list[str]:
    log = project / "done.log"
    return log.read_text().splitlines() if log.exists() else []


def batch_args(project: Path, *extra: str) -> list[str]:
    store = f"sqlite:///{project / 'runs.db'}"
    return [
        "batch",
        "flow.py:shout",
        "--input",
        "items.jsonl",
        "--out",
        "results.jsonl",
        "--store",
        store,
        *extra,
    ]


def test_every_line_is_a_run_and_bad_lines_are_named_and_skipped(project: Path) -> None:
    write_items(
        project / "items.jsonl",
        ['{"text": "a"}', '{"text": "b"}', "{not json", "", '["a", "list"]', '{"text": "c"}'],
    )
    done = cli(*batch_args(project, "--json"))
    assert done.exit_code == 1, done.output  # bad lines: the others ran
    assert "items.jsonl: line 3: not valid JSON" in done.stderr
    assert "items.jsonl: line 5: input for agent 'shout'" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["items"], summary["completed"], summary["done_before"]) == (3, 3, 0)
    assert [b["line"] for b in summary["bad_lines"]] == [3, 5]
    rows = results(project / "results.jsonl")
    assert [(r["line"], r["status"], r["output"]) for r in rows] == [
        (1, "completed", {"text": "A"}),
        (2, "completed", {"text": "B"}),
        (6, "completed", {"text": "C"}),
    ]
    assert len({r["run_id"] for r in rows}) == 3
    runs = json.loads(cli("runs", "--store", batch_args(project)[-1], "--json").stdout)
    assert sorted(r["run_id"] for r in runs) == sorted(r["run_id"] for r in rows)


def test_running_it_again_skips_what_completed_and_resumes_what_failed(project: Path) -> None:
    write_items(
        project / "items.jsonl",
        ['{"text": "a"}', '{"text": "b", "fail": true}', '{"text": "c"}'],
    )
    (project / "broken").touch()
    first = cli(*batch_args(project, "--json"))
    assert first.exit_code == 1, first.output
    assert "line 2: failed: " in first.stderr and "cannot shout b" in first.stderr
    statuses = [(r["line"], r["status"]) for r in results(project / "results.jsonl")]
    assert statuses == [(1, "completed"), (2, "failed"), (3, "completed")]
    (project / "broken").unlink()
    second = cli(*batch_args(project, "--json"))
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["completed"], summary["done_before"], summary["failed"]) == (3, 2, 0)
    rows = results(project / "results.jsonl")
    assert [(r["line"], r["status"]) for r in rows] == [
        (1, "completed"),
        (2, "completed"),
        (3, "completed"),
    ]
    assert sorted(done_log(project)) == ["a", "b", "c"]  # nothing done twice
    third = cli(*batch_args(project))
    assert third.exit_code == 0 and "completed" in third.stdout and "results: " in third.stdout
    assert sorted(done_log(project)) == ["a", "b", "c"]


def test_a_changed_line_is_a_new_item(project: Path) -> None:
    write_items(project / "items.jsonl", ['{"text": "a"}', '{"text": "b"}'])
    assert cli(*batch_args(project)).exit_code == 0
    write_items(project / "items.jsonl", ['{"text": "a"}', '{"text": "z"}'])
    assert cli(*batch_args(project)).exit_code == 0
    assert done_log(project) == ["a", "b", "z"]
    rows = results(project / "results.jsonl")
    assert [r["output"] for r in rows] == [{"text": "A"}, {"text": "Z"}]


def test_cost_so_far_in_the_summary(project: Path) -> None:
    write_items(project / "items.jsonl", ['"one"', '"two"'])
    store = f"sqlite:///{project / 'runs.db'}"
    args = ["batch", "flow.py:writer", "-i", "items.jsonl", "-o", "results.jsonl", "--store", store]
    done = cli(*args, "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["usd"] == pytest.approx(2 * CALL_USD) and summary["tokens"] == 2200
    assert summary["usd_all_items"] == pytest.approx(2 * CALL_USD)
    again = json.loads(cli(*args, "--json").stdout)
    assert again["usd"] == 0 and again["usd_all_items"] == pytest.approx(2 * CALL_USD)


def test_misuse_is_one_line_and_writes_nothing(project: Path) -> None:
    missing = cli(*batch_args(project))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: cannot read --input file 'items.jsonl'")
    (project / "items.jsonl").write_text('{"text": "a"}\n')
    (project / "results.jsonl").write_text("my precious notes\n")
    clobber = cli(*batch_args(project))
    assert clobber.exit_code == 2 and "is not a podium batch results file" in clobber.stderr
    assert (project / "results.jsonl").read_text() == "my precious notes\n"
    assert not (project / "runs.db").exists() and done_log(project) == []


def test_the_progress_bar_shows_items_failures_cost_and_eta(tmp_path: Path) -> None:
    job = Job(None, "t", [None] * 4, [], tmp_path / "results.jsonl", 2, None)  # type: ignore[list-item]
    bar = BatchProgress(job)
    console = Console(record=True, width=120, force_terminal=False)
    bar.start_items(job)
    bar.item_done("completed")
    bar.item_done("failed")
    bar.spent(0.0123)
    console.print(bar.progress.get_renderable())
    text = console.export_text()
    assert "2/4" in text and "1 failed" in text and "$0.0123" in text and "ETA" in text


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_next_run_goes_on(project: Path) -> None:
    """A real `podium batch` process gets SIGINT with items in flight: it exits 130 with every
    completed item in results.jsonl; run again, it does the rest, nothing twice."""
    n = 12
    write_items(project / "items.jsonl", [json.dumps({"text": f"t{i}"}) for i in range(n)])
    env = {**os.environ, "BATCH_SLEEP": "0.15", "PYTHONUNBUFFERED": "1"}
    env.pop("PODIUM_STORE", None)
    cmd = [sys.executable, "-m", "podium", *batch_args(project, "--concurrency", "2")]
    proc = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out_file = project / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some items are done, then Ctrl-C
        if out_file.exists() and len(out_file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted:" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    first = results(out_file)
    assert 3 <= len(first) < n
    assert all(r["status"] == "completed" for r in first)
    assert len({r["line"] for r in first}) == len(first)
    before = set(done_log(project))
    assert {r["input"]["text"] for r in first} <= before

    again = subprocess.run(
        [*cmd, "--json"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["completed"] == n and summary["done_before"] >= len(first)
    rows = results(out_file)
    assert [r["line"] for r in rows] == list(range(1, n + 1))  # every item, once, in order
    assert all(r["status"] == "completed" for r in rows)
    assert Counter(done_log(project)) == Counter(f"t{i}" for i in range(n))  # nothing twice
