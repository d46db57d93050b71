"""`podium schema`, `podium validate FILE`, `podium graph FILE`: they read specs and never run
anything or create a store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from podium.cli.app import app
from podium.spec.schema import json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "yaml"

BROKEN = """\
name: desk
kind: sequential
steps:
  - python: agents.py:clean
  - kind: handoff
    name: h
    start: nobody
    agents: [{python: agents.py:triage}]
  - kind: loop
    name: again
  - python: agents.py:no_such_thing
  - kind: graph
    name: g
    start: a
    nodes: {a: {python: agents.py:draft}}
    edges: [{from: a, to: b}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(EXAMPLES / "agents.py", tmp_path / "agents.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    return tmp_path


def cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_schema_prints_the_published_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema()


@pytest.mark.parametrize("file", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_validate_accepts_every_example(file: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(file)])
    assert result.exit_code == 0, result.output
    kind = "sequential" if file.stem in ("approval", "human") else file.stem
    assert result.stdout.strip().startswith("ok: ") and result.stdout.strip().endswith(f"({kind})")


def test_validate_lists_every_problem_and_runs_nothing(project: Path) -> None:
    (project / "flow.yaml").write_text(BROKEN)
    result = CliRunner().invoke(app, ["validate", "flow.yaml", "--import"])
    assert result.exit_code == 2
    lines = result.stdout.strip().splitlines()
    assert lines == sorted(lines, key=lambda line: int(line.split("(line ")[1].split(")")[0]))
    expected = {
        "steps[1].start (line 7): no agent named 'nobody'",
        "steps[2].body (line 9): required field is missing",
        "steps[3].python (line 11): cannot import",
        "steps[4].edges[0].to (line 16): no node named 'b'",
    }
    for part in expected:
        assert any(line.startswith("flow.yaml: " + part) for line in lines), (part, lines)
    assert result.stderr.strip().startswith("error: flow.yaml has ")
    assert not (project / ".podium").exists()


def test_validate_reports_build_problems_after_shape_passes(project: Path) -> None:
    text = BROKEN.replace("  - kind: loop\n    name: again\n", "")
    text = text.replace("  - python: agents.py:no_such_thing\n", "")
    (project / "flow.yaml").write_text(text)
    assert CliRunner().invoke(app, ["validate", "flow.yaml"]).exit_code == 0  # imports nothing
    result = CliRunner().invoke(app, ["validate", "flow.yaml", "--import"])
    assert result.exit_code == 2
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("flow.yaml: steps[1].start (line 7): no agent named 'nobody'")
    assert lines[1].startswith("flow.yaml: steps[2].edges[0].to (line 13): no node named 'b'")


SIDEFX = """
from pathlib import Path
Path({marker!r}).write_text("imported")

from podium import agent

@agent
def thing(x: str) -> str:
    return x
"""


def test_validate_runs_no_user_code_unless_asked(project: Path) -> None:
    marker = project / "imported"
    (project / "podium_sidefx_q.py").write_text(SIDEFX.format(marker=str(marker)))
    (project / "ok.yaml").write_text(
        "name: ok\nkind: sequential\nsteps:\n  - python: podium_sidefx_q:thing\n"
        "  - python: podium_sidefx_q.py:thing\n"
    )
    checked = cli("validate", "ok.yaml")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.strip() == "ok: ok (sequential)"
    assert not marker.exists()
    (project / "bad.yaml").write_text(
        "name: bad\nkind: sequential\nsteps:\n  - python: no_such_mod_q:thing\n"
        "  - python: podium_sidefx_q:nothing\n  - python: gone.py:thing\n"
    )
    bad = cli("validate", "bad.yaml")
    assert bad.exit_code == 2
    assert bad.stdout.splitlines() == [
        "bad.yaml: steps[0].python (line 4): cannot find 'no_such_mod_q:thing': "
        "no module named 'no_such_mod_q'",
        "bad.yaml: steps[1].python (line 5): cannot find 'podium_sidefx_q:nothing': "
        "'podium_sidefx_q' has no attribute 'nothing'",
        "bad.yaml: steps[2].python (line 6): cannot find 'gone.py:thing': no such file gone.py",
    ]
    assert not marker.exists()
    built = cli("validate", "ok.yaml", "--import")
    assert built.exit_code == 0 and marker.exists()  # asked for: the module's code ran


def test_run_never_starts_a_malformed_spec(project: Path) -> None:
    (project / "flow.yaml").write_text(BROKEN)
    result = CliRunner().invoke(app, ["run", "flow.yaml", "-i", '"x"'])
    assert result.exit_code == 2
    assert not (project / ".podium").exists()


def test_missing_file_is_one_error_line(project: Path) -> None:
    for command in ("validate", "graph"):
        result = CliRunner().invoke(app, [command, "nope.yaml"])
        assert result.exit_code == 2
        assert result.stderr.strip() == "error: no such file: nope.yaml"


def test_graph_prints_mermaid(project: Path) -> None:
    result = CliRunner().invoke(app, ["graph", str(EXAMPLES / "handoff.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart TD\n")
    assert 'n_support__triage -->|"handoff"| n_support__invoices' in result.stdout
    lr = CliRunner().invoke(app, ["graph", str(EXAMPLES / "loop.yaml"), "--direction", "LR"])
    assert lr.stdout.startswith("flowchart LR\n")
    bad = CliRunner().invoke(app, ["graph", str(EXAMPLES / "loop.yaml"), "--direction", "UP"])
    assert bad.exit_code == 2 and "--direction 'UP'" in bad.stderr


def test_graph_of_a_malformed_spec_lists_problems(project: Path) -> None:
    (project / "flow.yaml").write_text(BROKEN)
    result = CliRunner().invoke(app, ["graph", "flow.yaml"])
    assert result.exit_code == 2
    assert "flowchart" not in result.stdout
    assert "steps[1].start (line 7)" in result.stdout


OLD_KEYS = """\
name: grow
kind: loop
max_iterations: 3
no_progress: null
body: {python: agents.py:extend}
"""
WARNINGS = [
    "warning: old.yaml: max_iterations (line 3): `max_iterations` is deprecated: use "
    "`max_turns`; the old name goes in the next release",
    "warning: old.yaml: no_progress (line 4): `no_progress` is deprecated: use `max_stalls`; "
    "the old name goes in the next release",
]


def test_old_keys_are_warning_lines_not_problems(project: Path) -> None:
    (project / "old.yaml").write_text(OLD_KEYS)
    for args in (["validate", "old.yaml"], ["validate", "old.yaml", "--import"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout == "ok: grow (loop)\n"
        assert result.stderr.splitlines() == WARNINGS
    drawn = cli("graph", "old.yaml")
    assert drawn.exit_code == 0 and drawn.stdout.startswith("flowchart TD\n")
    assert drawn.stderr.splitlines() == WARNINGS
    ran = cli("run", "old.yaml", "-i", '"go"', "--store", "memory://", "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["output"]["turns"] == 3  # max_iterations: 3 was read
    assert ran.stderr.splitlines()[:2] == WARNINGS


def test_old_keys_beside_problems_and_old_and_new_together(project: Path) -> None:
    (project / "old.yaml").write_text(OLD_KEYS + "max_turns: 4\nsurprise: 1\n")
    result = cli("validate", "old.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "old.yaml: max_iterations (line 3): give `max_turns` or its old name `max_iterations`, "
        "not both",
        "old.yaml: surprise (line 7): unknown field",
    ]
    assert result.stderr.splitlines()[:1] == WARNINGS[1:]
    assert result.stderr.splitlines()[-1] == "error: old.yaml has 2 problems"
