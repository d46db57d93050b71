"""Targets: a run started from Python stores how to load its agent again, so another process
can resume it; and a target read from a store loads only if the operator trusts it, checked
before anything is imported."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium import NO_RETRY, HumanApproval, Runtime, Sequential, agent
from podium.cli.app import app

SHOP = """
import json, os, sys
from pathlib import Path

from podium import HumanApproval, Runtime, Sequential, agent


@agent
def propose(x: int) -> int:
    return x


@agent
def pay(x: int) -> str:
    Path(os.environ["PAID"]).write_text(str(x))
    return f"paid {x}"


flow = Sequential("shop", [propose, HumanApproval("ok"), pay])

if __name__ == "__main__":
    result = Runtime(sys.argv[1]).run_sync(flow, int(sys.argv[2]))
    print(json.dumps({"run_id": result.run_id, "status": str(result.status)}))
"""

START = """
import json, sys
from podium import Runtime
from shop.flows import flow

result = Runtime(sys.argv[1]).run_sync(flow, int(sys.argv[2]))
print(json.dumps({"run_id": result.run_id, "status": str(result.status)}))
"""

# A script whose flow lives only in itself: run as a file, it is not importable by name.
LOCAL = SHOP.replace('"shop"', '"local"')

# Loading this runs code: it leaves a marker file. Nothing here may ever load it.
EVIL = """
from pathlib import Path
Path({marker!r}).write_text("ran")
from podium import agent

@agent
def flow(x: int) -> int:
    return x
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (its own pyproject.toml) with a `shop` package, as the working
    directory; its store is `runs.db` in it."""
    root = tmp_path / "proj"
    (root / "shop").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "flows.py").write_text(SHOP)
    (root / "start.py").write_text(START)
    (root / "local.py").write_text(LOCAL)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PAID", str(tmp_path / "paid"))
    for var in ("PODIUM_STORE", "PODIUM_TARGETS"):
        monkeypatch.delenv(var, raising=False)
    return root


def store_of(proj: Path) -> str:
    return f"sqlite:///{proj / 'runs.db'}"


def python(proj: Path, *args: str, path: str | None = None) -> Any:
    """`python ARGS` in the project folder, with `path` in front of PYTHONPATH."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored_target(proj: Path, run_id: str) -> str | None:
    with sqlite3.connect(proj / "runs.db") as db:
        (target,) = db.execute("SELECT target FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return target  # type: ignore[no-any-return]


def tamper(proj: Path, run_id: str, target: str) -> None:
    """Whoever can write the store points the run at code of their choosing."""
    with sqlite3.connect(proj / "runs.db") as db:
        db.execute("UPDATE runs SET target = ? WHERE run_id = ?", (target, run_id))


# resuming from any process -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("start", "target"),
    [(["-m", "shop.flows"], "shop.flows:flow"), (["start.py"], "shop.flows:flow")],
    ids=["python -m pkg.mod", "a script importing the flow"],
)
def test_a_run_started_from_python_is_approved_by_another_process(
    proj: Path, tmp_path: Path, start: list[str], target: str
) -> None:
    started = python(proj, *start, store_of(proj), "5")
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["status"] == "waiting" and started.stderr == ""
    assert stored_target(proj, run["run_id"]) == target
    approved = python(proj, "-m", "podium", "approve", run["run_id"], "--store", store_of(proj))
    assert approved.returncode == 0, approved.stderr
    assert "paid 5" in approved.stdout and (tmp_path / "paid").read_text() == "5"


@pytest.mark.slow
def test_a_flow_only_in_a_script_says_at_run_time_how_to_make_it_resumable(proj: Path) -> None:
    started = python(proj, "local.py", store_of(proj), "5")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    assert "stores no target" in started.stderr and "target='module:object'" in started.stderr
    assert stored_target(proj, run_id) is None
    approve = python(proj, "-m", "podium", "approve", run_id, "--store", store_of(proj))
    assert approve.returncode == 2 and "has no stored target" in approve.stderr
    assert "--target" in approve.stderr


def test_find_target_checks_identity_and_skips_what_cannot_be_imported() -> None:
    import human_flow  # tests/ is on sys.path under pytest, as the project's folder would be
    from podium.core.targets import find_target

    assert find_target(human_flow.flow) == "human_flow:flow"
    assert find_target(human_flow.ship) == "human_flow:ship"  # an @agent function
    assert find_target(human_flow.counted) == "human_flow:counted"  # FunctionAgent(fn)
    assert human_flow.counted.target is None  # its function's name is not the agent
    local = Sequential("nowhere", [HumanApproval("ok")])
    assert find_target(local) is None


# a stored target is not a licence to run code ----------------------------------------------


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def refused(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def evil(tmp_path: Path) -> tuple[str, Path]:
    """A target outside the project whose import would leave a marker file."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    marker = tmp_path / "evil-ran"
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    return f"{folder / 'evil.py'}:flow", marker


def _runs(store: str) -> tuple[str, str, str]:
    """A waiting run, a dead-lettered run and a queued run, built in this process."""

    @agent
    def flow(x: int) -> int:
        raise ValueError("broken") if x < 0 else x

    async def go() -> tuple[str, str, str]:
        async with Runtime(store, retry=NO_RETRY) as rt:
            waits = await rt.run(Sequential("flow", [HumanApproval("ok")]), 1, target="x:y")
            dead = await rt.run(flow, -1, target="x:y")
            queued = await rt.submit(flow, 2, target="x:y")
            return waits.run_id, dead.run_id, queued

    return asyncio.run(go())


def test_a_stored_target_outside_the_project_is_never_imported(
    proj: Path, evil: tuple[str, Path]
) -> None:
    target, marker = evil
    store = store_of(proj)
    waits, dead, queued = _runs(store)
    for run_id in (waits, dead, queued):
        tamper(proj, run_id, target)
    why = "is outside the project directory"
    refused(cli("approve", waits, "--store", store), why, f"--target {target}")
    refused(cli("reject", waits, "-m", "no", "--store", store), why)
    refused(cli("answer", waits, "1", "--store", store), why)
    refused(cli("resume", waits, "--store", store), why)
    refused(cli("dlq", "requeue", dead, "--store", store), why)
    worked = cli("worker", "--until-idle", "--json", "--store", store)
    assert worked.exit_code == 0 and json.loads(worked.stdout)["errors"] == 1
    assert not marker.exists()
    status = json.loads(cli("show", waits, "--store", store, "--json").stdout)["status"]
    assert status == "waiting"


def test_a_module_target_that_is_nowhere_is_refused_before_importing(proj: Path) -> None:
    store = store_of(proj)
    waits, _, _ = _runs(store)
    tamper(proj, waits, "no_such_pkg_zz.flows:flow")
    refused(cli("resume", waits, "--store", store), "no module 'no_such_pkg_zz.flows'")


def test_locating_a_module_runs_none_of_its_packages(tmp_path: Path) -> None:
    from podium.core.targets import locate_module

    pkg = tmp_path / "lib" / "noisy_pkg_q"
    (pkg / "sub").mkdir(parents=True)
    marker = tmp_path / "imported"
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (pkg / "sub" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (pkg / "sub" / "mod.py").write_text("x = 1\n")
    found = locate_module("noisy_pkg_q.sub.mod", [str(tmp_path / "lib")])
    assert found == str(pkg / "sub" / "mod.py")
    assert locate_module("noisy_pkg_q.nothing", [str(tmp_path / "lib")]) is None
    assert not marker.exists() and "noisy_pkg_q" not in sys.modules


@pytest.mark.slow
def test_a_project_file_does_not_shadow_an_installed_module(proj: Path, tmp_path: Path) -> None:
    site = tmp_path / "site" / "shadowdemo_q"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    (site / "flows.py").write_text(
        "from podium import HumanApproval, Sequential, agent\n\n"
        "@agent\ndef mark(x: int) -> str:\n    return f'installed {x}'\n\n"
        "flow = Sequential('shadow', [HumanApproval('ok'), mark])\n"
    )
    marker = tmp_path / "shadowed"
    local = proj / "shadowdemo_q"
    local.mkdir()
    (local / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (local / "flows.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    site = str(tmp_path / "site")
    store = store_of(proj)
    started = python(proj, "-m", "podium", "run", "shadowdemo_q.flows:flow", "-i", "3",
                     "--store", store, "--json", path=site)  # fmt: skip
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    approved = python(
        proj, "-m", "podium", "approve", run_id, "--store", store, "--json", path=site
    )
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["output"] == "installed 3"
    assert not marker.exists()


OTHER = """
from podium import HumanApproval, Sequential, agent

@agent
def done(x: int) -> str:
    return f"done {x}"

flow = Sequential("other", [HumanApproval("ok"), done])
"""


@pytest.fixture
def other(tmp_path: Path) -> str:
    """A flow file outside the project, which the user runs on purpose."""
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "flow.py").write_text(OTHER)
    return f"{folder / 'flow.py'}:flow"


def _start_other(store: str, other: str) -> str:
    started = cli("run", other, "-i", "4", "--store", store, "--json")
    assert started.exit_code == 0, started.output
    return str(json.loads(started.stdout)["run_id"])


def test_a_target_outside_the_project_loads_when_named_with_target(
    proj: Path, other: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_of(proj)
    with caplog.at_level(logging.WARNING, logger="podium"):
        run_id = _start_other(store, other)  # explicit on the command line: it runs
    assert f"--target {other}" in caplog.text  # and says how to resume it
    refused(cli("approve", run_id, "--store", store), "outside the project directory")
    done = cli("approve", run_id, "--target", other, "--store", store, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["output"] == "done 4"


def test_podium_targets_and_the_project_config_pin_what_loads(
    proj: Path, other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(proj)
    first, second = (_start_other(store, other) for _ in range(2))
    third = cli("run", "shop/flows.py:flow", "-i", "1", "--store", store, "--json")
    assert json.loads(third.stdout)["status"] == "waiting"
    monkeypatch.setenv("PODIUM_TARGETS", other)
    assert cli("approve", first, "--store", store).exit_code == 0
    monkeypatch.delenv("PODIUM_TARGETS")
    relative = os.path.relpath(other.rpartition(":")[0], proj)
    (proj / "pyproject.toml").write_text(
        f'[project]\nname = "shop"\n\n[tool.podium]\ntargets = ["{relative}:flow"]\n'
    )
    assert cli("approve", second, "--store", store).exit_code == 0
    # pinned, only the pinned load: a flow inside the project that is not listed is refused
    shop = json.loads(third.stdout)["run_id"]
    refused(cli("approve", shop, "--store", store), "agent 'shop'", "no trusted target is")


def test_trust_rules_without_anything_pinned(proj: Path, tmp_path: Path) -> None:
    from podium.core.targets import TrustedTargets

    trusted = TrustedTargets.load()
    assert trusted.root == proj and trusted.pinned == ()
    assert trusted.refusal(str(proj / "shop" / "flows.py") + ":flow") is None
    assert trusted.refusal(str(proj / "flow.yaml")) is None
    assert trusted.refusal("json:loads") is None  # installed (here: the standard library)
    assert "outside the project" in (trusted.refusal(str(tmp_path / "x.py") + ":f") or "")
    assert "outside the project" in (trusted.refusal("/etc/flow.yaml") or "")
