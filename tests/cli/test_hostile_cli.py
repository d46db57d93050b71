"""The CLI under a hostile user: absurd numbers, inputs JSON can parse but nothing can store,
binary files and directories as `@input`. Each is one `error:` line and exit 2, in a real
subprocess, with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from forked import run_module
from podium import Runtime, UsageError

AGENTS = """
from podium import agent

@agent
def shout(text: str) -> str:
    return text.upper()

@agent
def anything(value) -> str:
    return "got it"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "agents.py").write_text(AGENTS)
    (tmp_path / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    (tmp_path / "deep300.json").write_text("[" * 300 + "]" * 300)
    (tmp_path / "bigint.json").write_text("9" * 5000)
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    (tmp_path / "folder").mkdir()
    return tmp_path


def podium(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return run_module("podium.cli.app", *args, cwd=cwd, env=env)


HOSTILE_INPUT = {
    "10000 nested lists": ("agents.py:anything", "@deep.json", "nested too deeply"),
    "300 nested lists": ("agents.py:anything", "@deep300.json", "nested more than 200 levels"),
    "a 5000-digit number": ("agents.py:anything", "@bigint.json", "(4300 digits)"),
    "a lone surrogate": ("agents.py:shout", '"\\ud800"', "lone surrogate"),
    "a binary file": ("agents.py:shout", "@binary.json", "is not UTF-8 text"),
    "a directory": ("agents.py:shout", "@folder", "cannot read input file 'folder'"),
    "an empty name": ("agents.py:shout", "@", "cannot read input file ''"),
    "a file that never ends": ("agents.py:shout", "@/dev/zero", "is larger than 64 MiB"),
}


@pytest.mark.parametrize("case", list(HOSTILE_INPUT))
def test_hostile_input_is_one_line_and_writes_nothing(project: Path, case: str) -> None:
    target, given, message = HOSTILE_INPUT[case]
    for command in ("run", "submit"):
        result = podium(project, command, target, "-i", given)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and message in line, line
    assert not (project / ".podium").exists()


def test_runs_with_a_limit_beyond_any_integer_lists_every_run(project: Path) -> None:
    for text in ("a", "b"):
        assert podium(project, "run", "agents.py:shout", "-i", f'"{text}"').returncode == 0
    listed = podium(project, "runs", "--limit", "99999999999999999999", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2


@pytest.mark.parametrize("limit", [0, -1])
async def test_list_runs_refuses_a_limit_below_one(store_url: str, limit: int) -> None:
    async with Runtime(store_url) as rt:
        for text in ("a", "b"):
            await rt.run(_shout(), text)
        with pytest.raises(UsageError, match="limit"):
            await rt.list_runs(limit=limit)


def _shout() -> object:
    from podium import agent

    @agent
    def shout(text: str) -> str:
        return text.upper()

    return shout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--lease", "inf"), ("--grace", "nan"), ("--grace", "inf"), ("--grace", "-1")],
)
def test_worker_refuses_durations_that_are_not_finite(
    project: Path, option: str, value: str
) -> None:
    result = podium(project, "worker", "--until-idle", option, value)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {option} ") and "Traceback" not in result.stderr
    assert not (project / ".podium").exists()
