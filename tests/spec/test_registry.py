"""The registry of kinds drives the loader, the JSON Schema and `podium graph`, and the
schema cannot drift from the constructors.

Drift: for every registered kind, a value on either side of each bound (and a spread of
ordinary values) is accepted by the schema exactly when the constructor accepts it, and every
default the schema publishes is the constructor's. A bound written in one place only (the
schema's `gt=0` against GroupChat's `> 0.5`, a `branch_timeout` the schema checks and
Parallel does not) fails here, naming the kind, the field and the value.

Renamed keys: every old key of every kind still loads, to the same agent as its new name,
with a note; both at once is a problem. `budget:` works on every kind that has it."""

from __future__ import annotations

import inspect
import json
import math
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError

from podium import Budget, SpecError, agent
from podium.agents import kinds as registry
from podium.agents.kinds import Builder, Canvas, Loc, NodeFields, Rename
from podium.spec.loader import Problem, SpecProblemsError, build_spec, load_yaml_text
from podium.spec.mermaid import to_mermaid
from podium.spec.schema import NODE_KINDS, WORKFLOW, json_schema, node_kinds


def stable_id(value: object) -> str:
    """A test id without memory addresses, so every xdist worker collects the same ids."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(value))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "yaml"


def ref(name: str) -> dict[str, str]:
    return {"python": f"agents.py:{name}"}


# One or more valid specs per kind, to change one number at a time. Every kind needs one.
BASES: dict[str, list[dict[str, Any]]] = {
    "python": [ref("solo")],
    "llm": [
        {"kind": "llm", "name": "w", "model": "scripted", "retry": {}, "budget": {"usd": 1}},
        {"kind": "llm", "name": "w", "model": "scripted", "mcp_servers": [{"command": "srv"}]},
    ],
    "human": [{"kind": "human", "name": "h", "question": "why?"}],
    "approval": [{"kind": "approval", "name": "a"}],
    "remote": [{"kind": "remote", "name": "r", "url": "http://127.0.0.1:9/"}],
    "sequential": [{"kind": "sequential", "name": "s", "steps": [ref("solo")]}],
    "parallel": [{"kind": "parallel", "name": "p", "branches": [ref("solo"), ref("team")]}],
    "router": [
        {
            "kind": "router",
            "name": "r",
            "rules": [{"route": "a", "keywords": ["x"]}],
            "routes": {"a": ref("solo")},
        }
    ],
    "supervisor": [
        {
            "kind": "supervisor",
            "name": "s",
            "planner": ref("planner"),
            "workers": [ref("sizing")],
            "worker_timeouts": {"sizing": 5},
        }
    ],
    "magentic": [
        {
            "kind": "magentic",
            "name": "m",
            "ledger": ref("ledger"),
            "progress": ref("progress"),
            "participants": [ref("researcher")],
        }
    ],
    "groupchat": [
        {
            "kind": "groupchat",
            "name": "c",
            "consensus": "weighted",
            "weights": {"growth": 1, "value": 1},
            "participants": [ref("growth"), ref("value")],
        },
        {
            "kind": "groupchat",
            "name": "d",
            "critic": "value",
            "rounds": 2,
            "participants": [ref("growth"), ref("value")],
        },
    ],
    "handoff": [{"kind": "handoff", "name": "h", "agents": [ref("triage"), ref("invoices")]}],
    "loop": [{"kind": "loop", "name": "l", "body": ref("extend")}],
    "graph": [
        {
            "kind": "graph",
            "name": "g",
            "start": "a",
            "nodes": {"a": ref("draft")},
            "edges": [{"from": "a", "to": "END"}],
        }
    ],
    "adaptive": [
        {
            "kind": "adaptive",
            "name": "a",
            "learning": True,
            "rules": [{"route": "direct", "keywords": ["x"]}],
            "strategies": {"direct": ref("solo")},
        }
    ],
}

# A sub-model the bases leave out, given so that its numbers get probed too.
NESTED: dict[str, dict[str, Any]] = {
    "retry": {},
    "budget": {"usd": 1.0},
    "cache": {},
    "limits": {},
}

Path_ = tuple[str | int, ...]


def _bare(annotation: Any) -> Any:
    """The type without `Annotated` metadata, and without None or a bool beside it (a
    `batchable: true`, a `cache: true`): what is left when the field holds something else."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if _bare(a) not in (type(None), bool)]
        if len(rest) == 1:
            return _bare(rest[0])
    return annotation


def _numeric(annotation: Any) -> type | None:
    """int or float when a field holds one number."""
    bare = _bare(annotation)
    return bare if bare in (int, float) else None


def _model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds."""
    bare = _bare(annotation)
    return bare if inspect.isclass(bare) and issubclass(bare, BaseModel) else None


def numbers(model: type[BaseModel], base: dict[str, Any], at: Path_ = ()) -> Iterator[Path_]:
    """Every place in `base` (a valid spec of `model`) where one number may be set."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        ann = _bare(info.annotation)
        if _numeric(ann) is not None:
            yield (*at, key)
        elif (sub := _model(ann)) is not None and "kind" not in sub.model_fields:
            if isinstance(base.get(key), dict):
                yield from numbers(sub, base[key], (*at, key))
            elif key in NESTED:
                base[key] = dict(NESTED[key])
                yield from numbers(sub, base[key], (*at, key))
        elif get_origin(ann) is list and isinstance(base.get(key), list) and base[key]:
            item = _model(get_args(ann)[0])
            if item is not None and "kind" not in item.model_fields:
                yield from numbers(item, base[key][0], (*at, key, 0))
        elif (
            get_origin(ann) is dict
            and isinstance(base.get(key), dict)
            and _numeric(get_args(ann)[1]) is not None
        ):
            yield (*at, key, "*")  # a value of the mapping


def schema_bounds() -> list[float]:
    """Every bound the published schema declares, as candidate values for every number."""
    found: set[float] = set()
    stack: list[Any] = [WORKFLOW.json_schema()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(node.get(k), int | float):
                    found.add(float(node[k]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def candidates(integer: bool, bounds: list[float]) -> list[float]:
    """Ordinary values, and each bound with its neighbours."""
    values = {-1.0, 0.0, 1.0, 2.0}
    if not integer:
        values |= {0.25, 0.5, 0.75, 0.999, 1.5}
    step = 1.0 if integer else 0.001
    for b in bounds:
        values |= {b - step, b, b + step}
    if integer:
        values = {v for v in values if v.is_integer() and -1 <= v <= 2}
    return sorted(values)


def put(data: Any, path: Path_, value: Any) -> Any:
    """`data` (plain data or a spec model) with `value` at `path`, nothing validated."""
    head, rest = path[0], path[1:]
    if head == "*":  # the first value of a mapping
        first = next(iter(data))
        return {**data, first: put(data[first], rest, value) if rest else value}
    if isinstance(data, BaseModel):
        name = next(n for n, f in type(data).model_fields.items() if (f.alias or n) == head)
        inner = getattr(data, name)
        return data.model_copy(update={name: put(inner, rest, value) if rest else value})
    if isinstance(data, list):
        copy = list(data)
        copy[head] = put(copy[head], rest, value) if rest else value  # type: ignore[index]
        return copy
    copy = dict(data)
    copy[head] = put(copy.get(head), rest, value) if rest else value
    return copy


def _field_type(model: type[BaseModel], path: Path_) -> type:
    current: Any = model
    for el in path:
        if isinstance(el, int) or el == "*":
            continue
        info = next(f for n, f in current.model_fields.items() if (f.alias or n) == el)
        ann = _bare(info.annotation)
        if get_origin(ann) is dict:
            ann = get_args(ann)[1]
        elif get_origin(ann) is list:
            ann = get_args(ann)[0]
        current = _model(ann) or _numeric(ann)
    assert current in (int, float), (model, path)
    return current  # type: ignore[no-any-return]


def _schema_ok(data: dict[str, Any], path: Path_) -> bool | None:
    """Whether the schema accepts `data`; None when it refuses for another reason."""
    try:
        WORKFLOW.validate_python(data)
    except ValidationError as e:
        where = [
            tuple(x for x in err["loc"] if x != data.get("kind", "python")) for err in e.errors()
        ]
        prefix = tuple(p for p in path if p != "*")
        if any(w[: len(prefix)] == prefix for w in where if prefix):
            return False
        return None
    return True


def probe(kind: str) -> tuple[list[str], set[Path_]]:
    """Every disagreement for `kind`, and the paths that were probed conclusively."""
    model = NODE_KINDS[kind]
    wrong: list[str] = []
    probed: set[Path_] = set()
    bounds = schema_bounds()
    for base in BASES[kind]:
        base = dict(base)
        for path in list(numbers(model, base)):
            integer = _field_type(model, path) is int
            values = [int(v) if integer else v for v in candidates(integer, bounds)]
            verdicts = {v: _schema_ok(put(base, path, v), path) for v in values}
            if not any(verdicts.values()):
                continue  # this base cannot take the field (another of its rules says no)
            probed.add(path)
            valid = WORKFLOW.validate_python(base)
            for value, accepted in verdicts.items():
                if accepted is None:
                    continue
                _, problems = build_spec(put(valid, path, value), EXAMPLES)
                if accepted != (not problems):
                    said = "; ".join(str(p) for p in problems) or "built"
                    schema = "accepts" if accepted else "refuses"
                    where = ".".join(map(str, path))
                    wrong.append(f"{kind}.{where}={value!r}: schema {schema}, constructor: {said}")
    return wrong, probed


def bounded(kind: str) -> set[Path_]:
    """Every place in `kind`'s published schema with a numeric bound (lists as item 0, a
    mapping's values as `*`), following sub-models but not child nodes."""
    schema = WORKFLOW.json_schema()
    defs = schema["$defs"]
    kinds = {m.__name__ for m in NODE_KINDS.values()}
    found: set[Path_] = set()
    stack: list[tuple[Any, Path_]] = [(defs[NODE_KINDS[kind].__name__], ())]
    while stack:
        node, at = stack.pop()
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref", "").rsplit("/", 1)[-1]
        if ref:
            if ref not in kinds:
                stack.append((defs[ref], at))
            continue
        if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            found.add(at)
        for key, sub in node.get("properties", {}).items():
            stack.append((sub, (*at, key)))
        for option in node.get("anyOf", []) + node.get("oneOf", []):
            stack.append((option, at))
        if isinstance(node.get("items"), dict):
            stack.append((node["items"], (*at, 0)))
        if isinstance(node.get("additionalProperties"), dict):
            stack.append((node["additionalProperties"], (*at, "*")))
    return found


@pytest.mark.parametrize("kind", sorted(NODE_KINDS))
def test_schema_bounds_are_the_constructors(kind: str) -> None:
    assert kind in BASES, f"add a valid {kind!r} spec to BASES"
    wrong, probed = probe(kind)
    assert not wrong, "\n".join(wrong)
    missed = bounded(kind) - probed
    assert not missed, f"{kind}: add to BASES what probes {sorted(map(str, missed))}"


def test_every_kind_has_a_base() -> None:
    assert set(BASES) == set(NODE_KINDS)


def test_candidates_cover_each_bound() -> None:
    assert {0.5, 0.501, 0.499} <= set(candidates(False, [0.5]))
    assert candidates(True, [1.0]) == [-1.0, 0.0, 1.0, 2.0]
    assert not any(math.isnan(v) for v in candidates(False, []))


# defaults -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(NODE_KINDS))
def test_schema_defaults_are_the_constructors(kind: str) -> None:
    """A default the schema publishes (not None, which leaves it to the constructor) is the
    default of the constructor's keyword of the same name."""
    drawn = registry.kinds()[kind].draws
    if drawn is None:
        return
    params = inspect.signature(drawn).parameters
    for name, info in NODE_KINDS[kind].model_fields.items():
        if info.is_required() or name not in params:
            continue
        default = info.get_default(call_default_factory=True)
        if default is None:
            continue
        expected = params[name].default
        if expected is inspect.Parameter.empty:
            continue  # required in Python, a default in YAML (`instructions: ""`)
        if isinstance(expected, tuple):
            expected = list(expected)
        assert default == expected, f"{kind}.{name}: schema {default!r}, constructor {expected!r}"


# renamed keys -------------------------------------------------------------------------------
def renames() -> Iterator[tuple[str, str, Rename]]:
    for name, kind in registry.kinds().items():
        for old, rename in kind.renamed.items():
            yield name, old, rename


def load(data: dict[str, Any], notes: list[Problem] | None = None) -> Any:
    return load_yaml_text(json.dumps(data, indent=1), base_dir=EXAMPLES, notes=notes)


@pytest.mark.parametrize(("kind", "old", "rename"), list(renames()), ids=stable_id)
def test_old_keys_load_as_the_new_ones_with_a_note(kind: str, old: str, rename: Rename) -> None:
    base = dict(BASES[kind][0])
    head, _, inner = rename.new.partition(".")
    value = 2
    new = {**base, head: {inner: value} if inner else value}
    if rename.convert is not None:
        new[head] = rename.convert(value)
    notes: list[Problem] = []
    agent_old = load({**base, old: value}, notes)
    assert [n.path for n in notes] == [old], notes
    assert f"`{old}` is deprecated: use `{rename.new}`" in notes[0].message
    assert notes[0].line is not None
    agent_new = load(new, notes=[])
    for attr in ("max_turns", "max_stalls", "max_reasks", "budget"):
        assert getattr(agent_old, attr, None) == getattr(agent_new, attr, None), attr
    with pytest.warns(DeprecationWarning, match=f"`{old}` is deprecated"):
        load({**base, old: value})
    with pytest.raises(SpecProblemsError) as clash:
        load({**new, old: value}, notes=[])
    assert f"give `{rename.new}` or its old name `{old}`, not both" in str(clash.value)


def test_renamed_keys_are_the_unified_names() -> None:
    targets = {r.new for _, _, r in renames()}
    assert targets == {"max_turns", "max_stalls", "max_reasks", "budget.tokens"}
    olds = {(k, o) for k, o, _ in renames()}
    assert ("handoff", "max_handoffs") in olds and ("groupchat", "deadlock_turns") in olds


def test_a_renamed_key_inside_a_nested_node_is_found_on_its_line() -> None:
    text = (
        "name: top\nkind: sequential\nsteps:\n  - kind: loop\n    name: l\n"
        "    body: {python: agents.py:extend}\n    max_iterations: 0\n"
    )
    notes: list[Problem] = []
    with pytest.raises(SpecProblemsError) as info:
        load_yaml_text(text, base_dir=EXAMPLES, notes=notes)
    assert [(n.path, n.line) for n in notes] == [("steps[0].max_iterations", 7)]
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("steps[0].max_turns", 7)


# budget -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", sorted(k for k, m in NODE_KINDS.items() if "budget" in m.model_fields)
)
def test_budget_on_every_kind_that_has_one(kind: str) -> None:
    built = load({**BASES[kind][0], "budget": {"usd": 0.5, "tokens": 1000}})
    assert built.budget == Budget(usd=0.5, tokens=1000)


def test_every_pattern_and_llm_takes_a_budget() -> None:
    people = {"python", "human", "approval", "remote"}
    assert {k for k, m in NODE_KINDS.items() if "budget" in m.model_fields} == (
        set(NODE_KINDS) - people
    )


def test_a_budget_needs_a_limit() -> None:
    with pytest.raises(SpecError, match=r"budget \(line \d+\): a budget needs at least one"):
        load({**BASES["loop"][0], "budget": {"alert_at": 0.5}})


# the registry drives everything --------------------------------------------------------------
class TwiceSpec(NodeFields):
    """A kind a test declares: its body runs twice."""

    kind: Literal["twice"]
    body: NodeSpec  # noqa: F821  (resolved by the loader's union)
    times: int = 2


def _build_twice(b: Builder, spec: TwiceSpec, loc: Loc) -> Any:
    body = b.node(spec.body, (*loc, "body"))
    if body is None:
        return None
    from podium import Sequential

    return b.construct(loc, lambda: Sequential(spec.name, [body] * spec.times))


def _draw_twice(d: Canvas, agent: Any, me: str) -> None:
    first = d.draw(agent.steps[0], me)
    d.edge(first, first, "twice", dotted=True)


@agent
def shout(text: str) -> str:
    return text.upper()


def test_a_kind_registered_outside_podium_loads_validates_and_draws() -> None:
    class Twice:  # what the drawing of `twice` draws
        pass

    registry.register(TwiceSpec, _build_twice, draw=_draw_twice, renamed={"count": "times"})
    try:
        assert "twice" in node_kinds() and "TwiceSpec" in json.dumps(json_schema())
        text = (
            "name: t\nkind: twice\ncount: 3\nbody:\n  kind: loop\n  name: l\n"
            "  max_iterations: 1\n  body: {python: agents.py:extend}\n"
        )
        notes: list[Problem] = []
        flow = load_yaml_text(text, base_dir=EXAMPLES, notes=notes)
        assert len(flow.steps) == 3 and flow.steps[0].max_turns == 1
        assert [n.path for n in notes] == ["count", "body.max_iterations"]
        with pytest.raises(SpecProblemsError) as info:
            load_yaml_text("name: t\nkind: twice\nbody: {kind: twice}\n", base_dir=EXAMPLES)
        assert [p.path for p in info.value.problems] == ["body.name", "body.body"]
        assert 'subgraph n_t["t (sequential)"]' in to_mermaid(flow)
    finally:
        registry.unregister("twice")
    assert "twice" not in node_kinds() and "TwiceSpec" not in json.dumps(json_schema())
    with pytest.raises(SpecError, match="unknown kind 'twice'"):
        load_yaml_text("name: t\nkind: twice\nbody: {python: agents.py:extend}\n")
