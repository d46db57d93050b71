"""Stores and run ids the CLI must refuse, in real subprocesses: exit 2, one line on stderr,
no traceback, and nothing written (no store made, a broken store left byte for byte)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from forked import run_module
from podium import Runtime, agent

AGENTS = """
from podium import agent

@agent
def shout(text: str) -> str:
    return text.upper()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "agents.py").write_text(AGENTS)
    return tmp_path


def podium(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    return run_module("podium", *args, cwd=cwd, env=env)


def refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2 and one line `error: ...` holding `message`, nothing else."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert message in lines[0], lines[0]


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("", "a run id must be a non-empty string"),
        ("x" * 201, "at most 200 characters, not 201"),
        ("tab\there", "cannot be printed"),
        ("bad\udcffbyte", "cannot be printed"),  # a byte that is not UTF-8 in argv
    ],
)
def test_a_bad_run_id_is_refused_before_anything_is_written(
    project: Path, run_id: str, message: str
) -> None:
    """`--run-id ''` used to start a run with a random id; a NUL, a lone surrogate or an id
    past Postgres' index limit gave a raw traceback from the driver."""
    for command in ("run", "submit"):
        done = podium(project, command, "agents.py:shout", "-i", '"hi"', "--run-id", run_id)
        refused(done, message)
    assert not (project / ".podium").exists()


def test_an_explicit_store_in_a_missing_directory_is_an_error(project: Path) -> None:
    """It used to be created silently: a typo in the path began a new, empty store."""
    url = f"sqlite:///{project / 'no' / 'such' / 'runs.db'}"
    refused(podium(project, "run", "agents.py:shout", "-i", '"hi"', "--store", url), "no/such")
    assert not (project / "no").exists()
    # the default directory is made as ever
    done = podium(project, "run", "agents.py:shout", "-i", '"hi"')
    assert done.returncode == 0, done.stderr
    assert (project / ".podium" / "podium.db").exists()


def test_a_busy_timeout_that_is_not_a_number_is_an_error(project: Path) -> None:
    url = f"sqlite:///{project / 'runs.db'}?busy_timeout=abc"
    refused(podium(project, "runs", "--store", url), "busy_timeout is a number of milliseconds")
    refused(podium(project, "run", "agents.py:shout", "-i", '"a"', "--store", url), "not 'abc'")
    assert not (project / "runs.db").exists()


def test_an_empty_store_file_is_refused(project: Path) -> None:
    """A 0-byte file used to be taken for a new store: the runs expected there vanished."""
    path = project / "runs.db"
    path.write_bytes(b"")
    url = f"sqlite:///{path}"
    for args in (("runs",), ("inbox",), ("run", "agents.py:shout", "-i", '"a"')):
        refused(podium(project, *args, "--store", url), "is an empty file (0 bytes)")
    assert path.stat().st_size == 0
    assert sorted(p.name for p in project.iterdir()) == ["agents.py", "runs.db"]


@agent
def echo(n: int) -> int:
    return n


async def _thirty_runs(url: str) -> None:
    rt = Runtime(url)
    try:
        for n in range(30):
            await rt.run(echo, n)
    finally:
        await rt.close()


def test_a_damaged_store_is_refused_and_left_as_it_is(project: Path) -> None:
    """A corrupted page used to give tracebacks in `runs` and `inbox` while new writes went
    on into the damaged file."""
    path = project / "runs.db"
    url = f"sqlite:///{path}"
    asyncio.run(_thirty_runs(url))
    data = bytearray(path.read_bytes())
    last = (len(data) // 4096 - 1) * 4096
    data[last : last + 64] = b"\xde\xad" * 32
    path.write_bytes(bytes(data))
    for args in (("runs",), ("inbox",), ("run", "agents.py:shout", "-i", '"a"')):
        refused(podium(project, *args, "--store", url), "is damaged")
    assert path.read_bytes() == bytes(data)
