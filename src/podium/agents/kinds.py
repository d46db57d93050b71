"""The registry of kinds: every `kind:` a YAML workflow may name, declared once, beside the code
of the agent or pattern it builds.

    register(SupervisorSpec, build, draws=Supervisor, draw=draw, renamed={...})

A kind is its spec model (a pydantic model whose `kind` is a `Literal` of the kind's name), a
builder that turns a validated spec into the agent, and how `podium graph` draws it: the
agent class it draws (`draws`), with `draw` for what goes inside a pattern's subgraph, or a
`shape` for a single agent. The loader, the JSON Schema (`podium schema`) and `podium graph`
all iterate this registry (`podium.spec`), so adding a kind is one `register` call in the
kind's own module and nothing in `podium.spec`.

The builder works through a `Builder` (the loader's): it builds child nodes, imports
`python:` references, and records every problem with its place in the spec instead of
stopping at the first. It calls the constructor through `Builder.construct`, which turns the
constructor's `UsageError` into a problem; the numbers the spec model bounds use the same
`podium.core.bounds` as the constructor's checks.

Old keys a kind still reads for one release (`max_rounds` for `max_turns`) are `renamed`:
the loader rewrites them, and `podium validate` prints a warning line for each.

This module sits below the patterns (they import it) and imports nothing of them, nor of
`podium.spec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from podium.core.bounds import ATTEMPTS, DELAY, POSITIVE, POSITIVE_NUMBER, SECONDS
from podium.runtime.budget import ALERT_AT, LIMITS
from podium.runtime.limits import JOURNAL_BYTES, STEPS
from podium.runtime.policies import MULTIPLIER

__all__ = [
    "FAILED",
    "REF",
    "Builder",
    "BudgetSpec",
    "Canvas",
    "Kind",
    "Loc",
    "NodeFields",
    "PythonRef",
    "Ref",
    "Rename",
    "RetrySpec",
    "Spec",
    "TOKENS_RENAMED",
    "drawn_as",
    "failed",
    "generation",
    "is_ref",
    "kinds",
    "label_of",
    "one_of",
    "register",
    "unregister",
]

T = TypeVar("T")
Loc = tuple[str | int, ...]
"""A place in a spec: `("steps", 1, "branches", 0)`."""

FAILED: Any = object()
"""What `Builder.maybe` and `Builder.function` give for something that could not be built (None
means "not given")."""


def failed(*values: Any) -> bool:
    """Whether any of `values` is `FAILED`."""
    return any(v is FAILED for v in values)


# the spec side ------------------------------------------------------------------------------
REF = "`python:module:object` (or `file.py:object` relative to the spec)"


class _RefMark:
    """Marks a string field holding a `module:object` reference (for `podium validate`, which
    looks such references up without importing them)."""

    __slots__ = ()


REF_MARK = _RefMark()
Ref = Annotated[str, Field(min_length=1), REF_MARK]
"""A `module:object` or `file.py:object` reference, with or without the `python:` prefix."""


def is_ref(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """Whether a field (its annotation and metadata) holds a `Ref`."""
    if any(m is REF_MARK for m in metadata):
        return True
    return any(a is REF_MARK or is_ref(a) for a in get_args(annotation))


class Spec(BaseModel):
    """A spec model. Unknown keys are errors: a typo in a spec should fail loudly, not be
    ignored. Built on first use (`defer_build`): the models live in the patterns' modules,
    and `import podium` should not pay for YAML it may never read."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


if TYPE_CHECKING:
    NodeSpec = Spec  # a child node: any registered kind's spec (the loader's union at run time)


class RetrySpec(Spec):
    attempts: int = ATTEMPTS.field(3)
    initial_delay: float = DELAY.field(0.2)
    max_delay: float = DELAY.field(10.0)
    multiplier: float = MULTIPLIER.field(2.0)
    jitter: bool = True


class BudgetSpec(Spec):
    """What an agent and everything below it may spend (`podium.Budget`); give at least one."""

    tokens: int | None = POSITIVE.field(None)
    usd: float | None = POSITIVE_NUMBER.field(None)
    model_calls: int | None = POSITIVE.field(None)
    tool_calls: int | None = POSITIVE.field(None)
    seconds: float | None = SECONDS.field(None)
    alert_at: float = ALERT_AT.field(0.7, description="the share of a limit that raises an alert")

    @model_validator(mode="after")
    def _some_limit(self) -> BudgetSpec:
        if all(getattr(self, name) is None for name in LIMITS):
            raise ValueError(f"a budget needs at least one of {', '.join(LIMITS)}")
        return self


class LimitsSpec(Spec):
    """The run's limits, at the top of a workflow file (`podium.runtime.limits`): they apply
    to every run of the workflow, unless the run is given its own (`--max-steps`, ...)."""

    deadline: float | None = SECONDS.field(
        None, description="seconds of running (waits for people not counted); default 24 h"
    )
    max_steps: int | None = STEPS.field(None, description="steps journaled; default 10,000")
    max_journal_bytes: int | None = JOURNAL_BYTES.field(
        None, description="bytes of step outputs in all; default 1 GiB"
    )


class PythonRef(Spec):
    """An agent (or, for `classifier` and `tools`, a function or object) found by import path:
    `package.module:object` or `file.py:object` relative to the YAML file's folder."""

    kind: Literal["python"] = "python"
    python: Ref


class NodeFields(Spec):
    """Fields every pattern (and an `llm` agent) has."""

    name: str = Field(min_length=1)
    description: str = ""
    retry: RetrySpec | None = None
    timeout: float | None = SECONDS.field(None)
    budget: BudgetSpec | None = Field(
        None, description="limits on this agent and everything it calls"
    )
    tiers: dict[str, str | list[str]] | None = Field(
        None,
        description="at the top of the file only: tier name to a model, or to a model and its "
        "fallbacks, for `llm` nodes that ask for a `tier` (a runtime's tiers win)",
    )
    roles: list[str] = Field(
        default_factory=list,
        description="roles this agent holds: the `policies:` grants to a role apply to its "
        "tool calls",
    )
    policies: dict[str, Any] | None = Field(
        None,
        description="at the top of the file only: deny-by-default grants checked on every tool "
        "call (`grants: [{agent|role, tools, when, needs_approval, approval_above, "
        "approval_ttl}]`, `roles: {agent: [role]}`, `approval_ttl`); see docs/security.md",
    )
    limits: LimitsSpec | None = Field(
        None,
        description="at the top of the file only: the limits of every run of this workflow "
        "(a run's own options win)",
    )


def one_of(spec: BaseModel, keys: tuple[str, str], what: str, extras: tuple[str, ...]) -> None:
    """Exactly one of two ways to give a manager; the agent way's helpers need the agent."""
    given = [k for k in keys if getattr(spec, k) is not None]
    if len(given) != 1:
        raise ValueError(
            f"{what} needs exactly one of `{keys[0]}` or `{keys[1]}`"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if given[0] == keys[1]:
        extra = [k for k in extras if getattr(spec, k) is not None]
        if extra:
            raise ValueError(f"with `{keys[1]}`, drop {', '.join(extra)} (the model plays them)")


# what a builder and a drawer are handed ----------------------------------------------------
class Builder(Protocol):
    """What a kind's builder may ask of the loader. Every method records a problem (with its
    path and line) rather than raising; None (or `FAILED`) says something could not be had."""

    def problem(self, loc: Loc, message: str) -> None: ...

    def node(self, spec: Any, loc: Loc) -> Any:
        """The agent for a child node, or None."""

    def nodes(self, specs: Sequence[Any], loc: Loc) -> list[Any] | None:
        """The agents for a list of nodes, or None if any failed."""

    def maybe(self, spec: Any, loc: Loc) -> Any:
        """An optional node: None when not given, `FAILED` when it cannot be built."""

    def function(self, ref: str | None, loc: Loc, *, agents: bool = False) -> Any:
        """A function (with `agents`, or an agent): None when not given, else `FAILED`."""

    def import_object(self, ref: str, loc: Loc) -> Any:
        """Any object by `module:object`, or None."""

    def agent(self, ref: str, loc: Loc) -> Any:
        """An agent by `module:object` (a factory marked as one is called), or None."""

    def known(self, name: str, names: Sequence[str], loc: Loc, what: str) -> bool:
        """Whether `name` is one of `names` (a problem listing them if not)."""

    def model(self, spec: str | None, loc: Loc) -> Any:
        """The model a spec names (`PODIUM_MODEL`, else a scripted echo, when None), or None."""

    def common(self, spec: Any) -> dict[str, Any]:
        """`retry`, `timeout`, `description` and `budget` as constructor keywords; call it
        inside `construct` (a bad budget is the constructor's problem)."""

    @property
    def tiers(self) -> Any:
        """The file's `tiers:` (a `Tiers`), for `llm` nodes that ask for a tier; or None."""

    def construct(self, loc: Loc, make: Callable[[], T]) -> T | None:
        """`make()`, with its `UsageError` a problem at `loc`; None then."""


class Canvas(Protocol):
    """What a kind's drawer may do in `podium graph`'s Mermaid diagram."""

    def draw(self, agent: Any, parent: str) -> str:
        """Draw a child agent inside `parent`; the id to draw edges to and from."""

    def draw_all(self, agents: Sequence[Any], parent: str) -> list[str]: ...

    def box(self, parent: str, name: str, label: str, shape: str = "[]") -> str:
        """A plain node; `shape` is Mermaid's pair of brackets (`[]`, `(())`, `{}`, ...)."""

    def edge(self, a: str, b: str, label: str | None = None, *, dotted: bool = False) -> None: ...


def label_of(fn: Any) -> str:
    """How a diagram names a function (a condition, a reducer)."""
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "condition")


# the registry ------------------------------------------------------------------------------
Build = Callable[[Builder, Any, Loc], Any]
Draw = Callable[[Canvas, Any, str], None]


@dataclass(frozen=True, slots=True)
class Rename:
    """An old key of a kind, read for one release: its value goes to `new` (`budget.tokens`:
    a key inside a mapping), through `convert` if the meaning changed too."""

    new: str
    convert: Callable[[Any], Any] | None = None
    hint: str = ""  # what else changed, for the warning


TOKENS_RENAMED = Rename("budget.tokens", hint="the door's budget counts tokens now")
"""A pattern's old `max_tokens`, which it counted itself."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One registered kind; see the module docstring."""

    name: str
    spec: type[BaseModel]
    build: Build
    draws: type | None = None
    draw: Draw | None = None
    shape: str = "[]"
    renamed: Mapping[str, Rename] = field(default_factory=dict)
    agent: bool = False  # an agent kind rather than a pattern (for the order)


_KINDS: dict[str, Kind] = {}
_ordered: Mapping[str, Kind] = MappingProxyType({})
_generation = 0


def register(
    spec: type[BaseModel],
    build: Build,
    *,
    draws: type | None = None,
    draw: Draw | None = None,
    shape: str = "[]",
    renamed: Mapping[str, str | Rename] | None = None,
    agent: bool = False,
) -> Kind:
    """Declare a kind: its name is the `Literal` of `spec`'s `kind` field. Registering a name
    again replaces it (a module reloaded), so the last declaration wins."""
    name = _kind_name(spec)
    table = {old: r if isinstance(r, Rename) else Rename(r) for old, r in (renamed or {}).items()}
    kind = Kind(name, spec, build, draws, draw, shape, table, agent)
    _KINDS[kind.name] = kind
    _changed()
    return kind


def _kind_name(spec: type[BaseModel]) -> str:
    """The one name of `spec`'s `kind: Literal[...]`."""
    annotation = spec.model_fields["kind"].annotation if "kind" in spec.model_fields else None
    names = get_args(annotation)
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{spec.__name__}.kind must be a Literal of one name, got {annotation!r}")
    return names[0]


def unregister(name: str) -> None:
    """Forget a kind (a plug-in unloaded, a test's own kind)."""
    if _KINDS.pop(name, None) is not None:
        _changed()


def _changed() -> None:
    global _generation, _ordered
    order = sorted(_KINDS.values(), key=lambda k: (k.name != "python", not k.agent, k.name))
    _ordered = MappingProxyType({k.name: k for k in order})
    _generation += 1


def generation() -> int:
    """How many registrations there have been: what `podium.spec` caches its union by."""
    return _generation


def kinds() -> Mapping[str, Kind]:
    """Every kind by name, in a stable order: `python`, the other agent kinds, then the
    patterns, each group alphabetically."""
    return _ordered


def drawn_as(agent: Any) -> Kind | None:
    """The kind that draws `agent`: the nearest class in its MRO that a kind `draws`."""
    by_class = {k.draws: k for k in _KINDS.values() if k.draws is not None}
    for cls in type(agent).__mro__:
        if cls in by_class:
            return by_class[cls]
    return None
