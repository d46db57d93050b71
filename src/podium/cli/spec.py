"""Workflow files from the terminal, without running them.

    podium schema                       # the JSON Schema of a workflow file
    podium validate flow.yaml           # every problem, one per line; exit 2 if any
    podium validate flow.yaml --import  # also build it, importing its Python modules
    podium graph flow.yaml              # the topology as a Mermaid flowchart

`validate` reads the YAML and checks its shape, then finds every `python:` reference without
running it: the module is located on the path (or the file next to the spec) and its source
read for the name. Importing runs a module's code, so only `--import` (and `graph`, which
needs the agents) does it, loading the spec exactly as `podium run` does. None of them starts
a run or opens a store. A key that a kind renamed (`max_rounds`, now `max_turns`) still loads
for one release: each is a `warning:` line on stderr, never a problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from podium.cli.app import EXIT_USAGE, app, usage_errors
from podium.errors import TargetError, UsageError

T = TypeVar("T")

FileArg = Annotated[str, typer.Argument(help="A YAML workflow file.", show_default=False)]


@app.command()
def schema() -> None:
    """Print the JSON Schema of a workflow file (for editors and CI)."""
    from podium.spec.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def validate(
    file: FileArg,
    build: Annotated[
        bool,
        typer.Option(
            "--import",
            help="Also build the workflow: imports its Python modules (running their code) "
            "and checks pattern arguments and the names nodes and `policies:` grants refer to.",
        ),
    ] = False,
) -> None:
    """Check a workflow file: every problem with its path and line, or `ok: NAME (KIND)`.
    Python references are located without running them, unless --import. A key that was
    renamed (still read for one release) is a warning line on stderr, not a problem."""
    if build:
        spec, _ = _load(file)
    else:
        notes: list[Any] = []
        spec = _report(file, lambda: check_yaml_refs(file, notes), notes)
    typer.echo(f"ok: {spec.name} ({spec.kind})")


@app.command()
def graph(
    file: FileArg,
    direction: Annotated[
        str, typer.Option("--direction", help="TD (top-down) or LR (left-right).")
    ] = "TD",
) -> None:
    """Print a workflow's topology as a Mermaid flowchart. It builds the workflow, so it
    imports the spec's Python modules (their code runs, as with `podium run`)."""
    from podium.spec.mermaid import to_mermaid

    with usage_errors():
        if direction not in ("TD", "TB", "LR", "RL", "BT"):
            raise UsageError(f"--direction {direction!r}: use TD, TB, LR, RL or BT")
    _, agent = _load(file)
    typer.echo(to_mermaid(agent, direction=direction), nl=False)


def _load(file: str) -> tuple[Any, Any]:
    """The spec and its agent, built (importing the spec's modules)."""
    from podium.spec.loader import load_yaml_spec

    notes: list[Any] = []
    return _report(file, lambda: load_yaml_spec(file, notes=notes), notes)


def check_yaml_refs(file: str, notes: list[Any] | None = None) -> Any:
    """The validated spec of `file`, its `python:` references found without importing
    them; `SpecProblemsError` listing everything wrong. Renamed keys are noted in `notes`."""
    from pydantic import ValidationError

    from podium.core.targets import locate_ref
    from podium.spec import loader, schema

    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"cannot read {file}: {e}") from None
    data, root, problems = loader.read(text, file, [] if notes is None else notes)
    spec = None
    try:
        spec = schema.workflow().validate_python(data)
    except ValidationError as e:
        problems += loader._shape_problems(e, data, root)
    where = loader._Builder(path.parent, root)  # only to place problems on their lines
    if spec is not None and getattr(spec, "policies", None) is not None:
        from podium.governance.policy import policy_problems

        # its shape; the tools and agents it names are checked with --import
        for bad in policy_problems(spec.policies):
            where.problem(("policies", *bad.path), bad.problem)
    refs = schema.fields().refs
    for ref, loc in _refs(data, (), refs):
        why = locate_ref(ref, path.parent)
        if why is not None:
            where.problem(loc, why)
    problems += where.problems
    if problems or spec is None:
        raise loader.SpecProblemsError(file, sorted(problems, key=lambda p: p.line or 0))
    return spec


def _refs(
    data: Any, loc: tuple[str | int, ...], fields: frozenset[str]
) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every Python reference in a spec's data, with its place: a `python:` string, or a
    string with a `:` in a field the kinds declare a `Ref` (`until`, `output_type`, ...)."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*loc, key)
            if isinstance(value, str) and (
                value.startswith("python:") or (key in fields and ":" in value)
            ):
                yield value, here
            else:
                yield from _refs(value, here, fields)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _refs(value, (*loc, i), fields)
    elif isinstance(data, str) and data.startswith("python:") and loc:
        yield data, loc


def _report(file: str, load: Callable[[], T], notes: list[Any]) -> T:
    """`load()`; a malformed spec prints each problem on its own line on stdout (`FILE: PATH
    (line N): MESSAGE`), a count on stderr, and exits 2; any other misuse (no such file) is
    one `error:` line, as everywhere in the CLI. What `load` noted in `notes` (keys that
    were renamed) goes first, each a `warning: FILE: PATH (line N): MESSAGE` line on stderr:
    a warning, never a failure."""
    from podium.spec.loader import SpecProblemsError

    with usage_errors():
        try:
            loaded = load()
        except SpecProblemsError as e:
            _warn(file, notes)
            for problem in e.problems:
                typer.echo(f"{e.source}: {problem}")
            n = len(e.problems)
            typer.echo(f"error: {e.source} has {n} problem{'s' if n != 1 else ''}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    _warn(file, notes)
    return loaded


def _warn(file: str, notes: list[Any]) -> None:
    for note in notes:
        typer.echo(f"warning: {file}: {note}", err=True)
