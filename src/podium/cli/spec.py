"""Workflow files from the terminal, without running them.

    podium schema               # the JSON Schema of a workflow file
    podium validate flow.yaml   # every problem, one per line; exit 2 if any
    podium graph flow.yaml      # the topology as a Mermaid flowchart

`validate` and `graph` load the spec exactly as `podium run` does (YAML, shape, then building:
imports and pattern arguments) but never start a run and never open a store.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from podium.cli.app import EXIT_USAGE, app, usage_errors
from podium.errors import UsageError

FileArg = Annotated[str, typer.Argument(help="A YAML workflow file.", show_default=False)]


@app.command()
def schema() -> None:
    """Print the JSON Schema of a workflow file (for editors and CI)."""
    from podium.spec.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def validate(file: FileArg) -> None:
    """Check a workflow file: every problem with its path and line, or `ok: NAME (KIND)`."""
    spec, agent = _load(file)
    typer.echo(f"ok: {agent.name} ({spec.kind})")


@app.command()
def graph(
    file: FileArg,
    direction: Annotated[
        str, typer.Option("--direction", help="TD (top-down) or LR (left-right).")
    ] = "TD",
) -> None:
    """Print a workflow's topology as a Mermaid flowchart."""
    from podium.spec.mermaid import to_mermaid

    with usage_errors():
        if direction not in ("TD", "TB", "LR", "RL", "BT"):
            raise UsageError(f"--direction {direction!r}: use TD, TB, LR, RL or BT")
    _, agent = _load(file)
    typer.echo(to_mermaid(agent, direction=direction), nl=False)


def _load(file: str) -> tuple[Any, Any]:
    """The spec and its agent. A malformed spec prints each problem on its own line on
    stdout (`FILE: PATH (line N): MESSAGE`), a count on stderr, and exits 2; any other misuse
    (no such file) is one `error:` line, as everywhere in the CLI."""
    from podium.spec.loader import SpecProblems, load_yaml_spec

    with usage_errors():
        try:
            return load_yaml_spec(file)
        except SpecProblems as e:
            for problem in e.problems:
                typer.echo(f"{e.source}: {problem}")
            n = len(e.problems)
            typer.echo(f"error: {e.source} has {n} problem{'s' if n != 1 else ''}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
