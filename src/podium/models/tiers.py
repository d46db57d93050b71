"""Model tiers: agents ask for a kind of model (`fast`, `smart`, any name), a runtime decides
which models that is.

    rt = Runtime(tiers={
        "fast": "openai:gpt-4o-mini",
        "smart": ["anthropic:claude-sonnet-4-5", "openai:gpt-4o"],   # a model, then fallbacks
    })
    LLMAgent("triage", tier="fast", ...)          # or model="tier:fast"
    Runtime(tiers="tiers.yaml")                   # ... or from a JSON or YAML file
    PODIUM_TIERS=tiers.yaml podium run flow.yaml  # ... or from the environment

A tier is a model and its fallbacks, tried in order when a model fails for good: the same
fallback chain as `LLMAgent(fallback_models=...)` (an agent's own `fallback_models` come after
its tier's). Moving a whole team from one provider to another, or trying a cheaper model on
the easy work, is a change to the table, not to every agent. A workflow file can carry its
own table (`tiers:` at the top); a runtime's table wins for the names it defines.

Models are named as everywhere else (`openai:...`, `anthropic:...`, `local:...`,
`scripted`) or given as `Model` objects; they are resolved when the table is built, so a
typo fails there, not at the first call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium.core.datafile import read_table
from podium.errors import UsageError
from podium.models.base import Model
from podium.models.settings import resolve_model

ENV = "PODIUM_TIERS"
PREFIX = "tier:"  # `LLMAgent(model="tier:fast")`


class Tiers:
    """Tier name to a model and its fallbacks. Never changes once built (`with_tiers` makes
    a new table)."""

    __slots__ = ("table",)

    def __init__(self, table: Mapping[str, Any] | None = None, *, where: str = "tiers") -> None:
        self.table: dict[str, tuple[Model, ...]] = parse_tiers(table or {}, where)

    def __contains__(self, tier: object) -> bool:
        return tier in self.table

    def names(self) -> list[str]:
        return sorted(self.table)

    def models(self, tier: str) -> tuple[Model, ...]:
        """The tier's model first, then its fallbacks; `UsageError` for an unknown tier."""
        try:
            return self.table[tier]
        except KeyError:
            raise UsageError(
                f"unknown tier {tier!r} (tiers: {', '.join(self.names()) or 'none'})"
            ) from None

    def with_tiers(self, table: Mapping[str, Any], where: str) -> Tiers:
        """This table with `table`'s tiers added or replaced."""
        out = Tiers()
        out.table = {**self.table, **parse_tiers(table, where)}
        return out

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={[m.name for m in v]}" for k, v in sorted(self.table.items()))
        return f"Tiers({shown})"


def parse_tiers(table: Mapping[str, Any], where: str) -> dict[str, tuple[Model, ...]]:
    """Tiers from plain data (`{"fast": "openai:gpt-4o-mini", "smart": [..., ...]}`), checked:
    every problem names the tier and where the table came from."""
    if isinstance(table, Tiers):
        return dict(table.table)
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: expected a mapping of tier name to models, got {table!r}")
    out: dict[str, tuple[Model, ...]] = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not name or PREFIX in name or "/" in name:
            raise UsageError(f"{where}: tier names must be words like 'fast', got {name!r}")
        specs = [entry] if isinstance(entry, str | Model) else entry
        if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
            raise UsageError(
                f"{where}: tier {name!r}: expected a model or a list of models (the first, "
                f"then its fallbacks), got {entry!r}"
            )
        out[name] = tuple(_model(s, f"{where}: tier {name!r}") for s in specs)
    return out


def _model(spec: Any, where: str) -> Model:
    if isinstance(spec, str) and spec.startswith(PREFIX):
        raise UsageError(f"{where}: a tier is made of models, not of another tier ({spec!r})")
    try:
        model = resolve_model(spec) if isinstance(spec, str | Model) else None
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    if model is None:
        raise UsageError(f"{where}: {spec!r} is not a model name or a Model")
    return model


def load_tiers(path: str | Path) -> dict[str, Any]:
    """The raw table of a JSON or YAML tiers file: tier names at the top, or under `tiers:`."""
    data = read_table(path, "tiers file", "tiers")
    if not isinstance(data, Mapping):
        raise UsageError(f"tiers file {str(path)!r}: expected a mapping of tier name to models")
    return dict(data)


def resolve_tiers(spec: Tiers | Mapping[str, Any] | str | Path | None = None) -> Tiers | None:
    """The tiers a runtime uses: a `Tiers` as given; otherwise the file `PODIUM_TIERS` names,
    then `spec` (a file path, or a mapping) over it; None when neither says anything."""
    if isinstance(spec, Tiers):
        return spec
    env = os.environ.get(ENV)
    tiers = None
    if env:
        tiers = Tiers(load_tiers(env), where=f"${ENV} ({env})")
    if spec is None:
        return tiers
    table: Mapping[str, Any] = load_tiers(spec) if isinstance(spec, str | Path) else spec
    where = f"tiers file {str(spec)!r}" if isinstance(spec, str | Path) else "tiers"
    return Tiers(table, where=where) if tiers is None else tiers.with_tiers(table, where)
