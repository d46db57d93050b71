"""The shape of a YAML workflow: one node, of any kind in the registry (`podium.agents.kinds`).

Each kind declares its spec model beside its own code (a pattern's in its module, `llm` in
`podium.agents.llm`, ...); this module only joins them: the union of every kind's model,
told apart by `kind` (a node without one is a Python reference), the JSON Schema of that
union (`podium schema`), and what the loader needs to know about the models' fields (which
hold child nodes, which hold `module:object` references). Nothing here names a kind.

A child node is written `NodeSpec` in a spec model; the name is resolved here, once every
kind has registered, so the models can refer to each other in any order.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, GetCoreSchemaHandler, Tag, TypeAdapter

import podium.agents.function
import podium.agents.human
import podium.agents.llm
import podium.agents.remote
import podium.patterns  # noqa: F401  (importing the kinds' modules registers them)
from podium.agents import kinds as registry
from podium.agents.kinds import PythonRef

__all__ = ["Fields", "fields", "json_schema", "node_kinds", "workflow"]

Shape = Literal["one", "list", "map"]


@dataclass(frozen=True, slots=True)
class Fields:
    """What the loader needs to know about the spec models' fields, by name across every
    kind: where child nodes sit (one node, a list or a mapping of them), which hold an
    object by `{python: ...}` (not an agent), and which hold a `module:object` string."""

    nodes: Mapping[str, Shape]
    objects: frozenset[str]
    refs: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Compiled:
    generation: int
    kinds: dict[str, type[BaseModel]]
    adapter: TypeAdapter[Any]
    fields: Fields


_compiled: _Compiled | None = None


def _node_kind(value: Any) -> str | None:
    """A node without `kind` is a Python reference; otherwise its kind picks the model."""
    if isinstance(value, dict):
        kind = value.get("kind", "python")
        return kind if isinstance(kind, str) and kind in registry.kinds() else None
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    return None


class _AnyNode:
    """What `NodeSpec` means in every spec model: a node of any kind registered so far. The
    models' fields keep this one type, and their validators are rebuilt from it when a kind
    registers, so a new kind may appear anywhere a node may."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return handler.generate_schema(_union())


def _union() -> Any:
    table = {name: kind.spec for name, kind in registry.kinds().items()}
    members = tuple(Annotated[model, Tag(name)] for name, model in table.items())
    return Annotated[
        Union[members],  # noqa: UP007  (a union built from a tuple)
        Discriminator(
            _node_kind,
            custom_error_type="unknown_kind",
            custom_error_message="unknown kind (expected one of: " + ", ".join(table) + ")",
        ),
    ]


def _compile() -> _Compiled:
    """The validator of a node of any kind, rebuilt when a kind registers."""
    global _compiled
    if _compiled is not None and _compiled.generation == registry.generation():
        return _compiled
    table = {name: kind.spec for name, kind in registry.kinds().items()}
    models = _with_submodels(table.values())
    for model in models:  # a model built earlier holds the kinds of then: forget them all first
        for cached in ("__pydantic_core_schema__", "__pydantic_validator__"):
            if cached in model.__dict__:
                delattr(model, cached)
    for model in models:
        model.model_rebuild(force=True, _types_namespace={"NodeSpec": _AnyNode})
    adapter: TypeAdapter[Any] = TypeAdapter(_AnyNode)
    _compiled = _Compiled(registry.generation(), table, adapter, _fields(table))
    return _compiled


def _with_submodels(models: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    """`models` and every model their fields hold (rules, edges, budgets), each once."""
    seen: dict[type[BaseModel], None] = {}
    stack = list(models)
    while stack:
        model = stack.pop()
        if model not in seen:
            seen[model] = None
            for info in model.model_fields.values():
                stack.extend(_models_in(info.annotation))
    return list(seen)


def _fields(table: Mapping[str, type[BaseModel]]) -> Fields:
    nodes: dict[str, Shape] = {}
    objects: set[str] = set()
    refs: set[str] = set()
    seen: set[type[BaseModel]] = set()
    stack = list(table.values())
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            key = info.alias or name
            ann = _strip_none(info.annotation)
            shape = _node_shape(ann)
            if shape is not None:
                nodes[key] = shape
                continue
            if PythonRef in (ann, *get_args(ann)) and model is not PythonRef:
                objects.add(key)
            if registry.is_ref(info.annotation, info.metadata):
                refs.add(key)
            stack.extend(_models_in(ann))
    return Fields(nodes, frozenset(objects), frozenset(refs))


def _strip_none(ann: Any) -> Any:
    if get_origin(ann) in (Union, types.UnionType):
        rest = [a for a in get_args(ann) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return ann


def _node_shape(ann: Any) -> Shape | None:
    if ann is _AnyNode:
        return "one"
    args = get_args(ann)
    if get_origin(ann) is list and args and args[0] is _AnyNode:
        return "list"
    if get_origin(ann) is dict and len(args) == 2 and args[1] is _AnyNode:
        return "map"
    return None


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """Sub-models (rules, edges) a field holds, to look into their fields too."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in get_args(ann) for m in _models_in(a)]


def workflow() -> TypeAdapter[Any]:
    """The validator of a workflow file's data: one node."""
    return _compile().adapter


def node_kinds() -> dict[str, type[BaseModel]]:
    """Every kind's spec model, by kind, in the registry's order."""
    return dict(_compile().kinds)


def fields() -> Fields:
    return _compile().fields


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a workflow file (`podium schema`), with a title and the
    draft it follows, so editors can validate YAML against it."""
    schema: dict[str, Any] = workflow().json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "podium workflow",
        "description": "A podium YAML workflow: one node, usually a pattern made of nodes.",
        **schema,
    }


def __getattr__(name: str) -> Any:
    """`WORKFLOW` and `NODE_KINDS`, always those of the kinds registered so far."""
    if name == "WORKFLOW":
        return workflow()
    if name == "NODE_KINDS":
        return node_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
