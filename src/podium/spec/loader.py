"""Build an agent from a YAML workflow file.

    name: support
    kind: sequential
    steps:
      - python: mypkg.agents:understand
      - kind: parallel
        name: checks
        branches: [{python: mypkg.agents:inventory}, {python: mypkg.agents:pricing}]

Loading happens in three passes, and each collects every problem before giving up, so one
`SpecError` lists them all with their place in the spec (`steps[1].branches[0].python`) and
their line: YAML syntax, then the shape (pydantic, `podium.spec.schema`), then building
(imports, pattern arguments). A spec that fails any pass never starts a run.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from podium.agents.base import is_agent as _is_agent
from podium.errors import SpecError, TargetError, UsageError
from podium.runtime.budget import Budget
from podium.spec.schema import (
    NODE_KINDS,
    WORKFLOW,
    AdaptiveSpec,
    ApprovalSpec,
    GraphSpec,
    GroupChatSpec,
    HandoffSpec,
    HumanSpec,
    LLMSpec,
    LoopSpec,
    MagenticSpec,
    ParallelSpec,
    PythonRef,
    RemoteSpec,
    RetrySpec,
    RouterSpec,
    RuleSpec,
    SequentialSpec,
    SupervisorSpec,
)

__all__ = ["Problem", "SpecProblems", "load_yaml", "load_yaml_spec", "load_yaml_text"]

Loc = tuple[str | int, ...]

# Fields whose values (list items or mapping values) are themselves nodes.
_NODE_LISTS = frozenset({"steps", "branches", "workers", "participants", "agents"})
_NODE_MAPS = frozenset({"routes", "nodes", "strategies"})
_NODE_FIELDS = frozenset(
    {"fallback", "planner", "reviewer", "synthesizer", "ledger", "progress", "answer"}
    | {"manager", "body", "critic"}
)
# Fields holding a function or object (not an agent) as `{python: ...}`.
_OBJECT_REFS = frozenset({"classifier", "tools"})
# Marks a node that could not be built (None means "not given").
_FAILED: Any = object()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a spec, and where."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "(top level)"
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{line}: {self.message}"


class SpecProblems(SpecError):
    """A `SpecError` that keeps its problems as data, for tools that show them one by one."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        what = "a problem" if n == 1 else f"{n} problems"
        super().__init__(f"{source} has {what}: " + "; ".join(str(p) for p in self.problems))


def load_yaml(path: str | Path) -> Any:
    """The agent a YAML workflow file describes. Python references in it are resolved
    relative to the file's folder. Raises `SpecError` listing every problem found."""
    return load_yaml_spec(path)[1]


def load_yaml_spec(path: str | Path) -> tuple[Any, Any]:
    """The validated spec (a `podium.spec.schema` model) and the agent built from it, for
    tools that report on the spec itself (`podium validate`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"cannot read {path}: {e}") from None
    spec, agent = _load(text, file.parent, str(path))
    with contextlib.suppress(AttributeError):  # lets `podium resume` find the file again
        agent.target = str(file.resolve())
    return spec, agent


def load_yaml_text(text: str, *, base_dir: str | Path = ".", source: str = "<spec>") -> Any:
    """`load_yaml` for a spec held in a string; `base_dir` anchors `file.py:object` refs."""
    return _load(text, Path(base_dir), source)[1]


def _load(text: str, base_dir: Path, source: str) -> tuple[Any, Any]:
    data, root = _parse(text, source)
    try:
        spec = WORKFLOW.validate_python(data)
    except ValidationError as e:
        problems = _shape_problems(e, data, root)
        # Imports are checked too, so one attempt shows every problem, not just the first pass's.
        checker = _Builder(Path(base_dir), root)
        _check_refs(checker, data, ())
        everything = sorted(problems + checker.problems, key=lambda p: p.line or 0)
        raise SpecProblems(source, everything) from None
    builder = _Builder(Path(base_dir), root)
    builder.tiers = _tiers(builder, getattr(spec, "tiers", None))
    agent = builder.node(spec, ())
    if builder.problems or agent is None:
        problems = sorted(builder.problems, key=lambda p: p.line or 0)
        raise SpecProblems(source, problems or [Problem("", "cannot build the workflow")])
    return spec, agent


# pass 1: YAML -----------------------------------------------------------------------------
# What a workflow file may ask of the loader. Aliases let a few hundred bytes describe a
# billion nodes (or an infinite one), and each nesting level costs Python stack in the YAML
# composer: both are refused before anything is built. Real workflows stay far below.
MAX_NODES = 100_000
MAX_DEPTH = 300


def _parse(text: str, source: str) -> tuple[Any, yaml.Node]:
    _check_size(text, source)
    try:
        loader = yaml.SafeLoader(text)  # reads (and checks) the text: inside the `try`
        try:
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        problem, line = _syntax_error(e, text)
        raise SpecProblems(source, [Problem("", f"YAML syntax: {problem}", line)]) from None
    except RecursionError:  # the size check caps nesting; this only guards a deeper stack
        msg = "the YAML is nested too deeply to load"
        raise SpecProblems(source, [Problem("", msg)]) from None
    if root is None or not isinstance(data, dict):
        got = "nothing" if root is None else type(data).__name__
        line = None if root is None else root.start_mark.line + 1
        msg = f"the spec must be a mapping with `name` and `kind` (got {got})"
        raise SpecProblems(source, [Problem("", msg, line)])
    return data, root


def _syntax_error(e: yaml.YAMLError, text: str) -> tuple[str, int | None]:
    """What is wrong and on which line, in one line of text."""
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow
        char = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        return f"unacceptable character {char}: {e.reason}", text.count("\n", 0, e.position) + 1
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = None if mark is None else mark.line + 1
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return str(problem), line


# libyaml's parser where PyYAML has it: PyYAML's own scanner is quadratic in flow nesting.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class _Open:
    """A collection whose end the size check has not reached yet."""

    anchor: str | None
    size: int = 1


def _check_size(text: str, source: str) -> None:
    """Refuse recursive aliases, more than `MAX_NODES` nodes once aliases are expanded, and
    nesting deeper than `MAX_DEPTH`, from the event stream alone: nothing is composed or
    expanded, so a hostile file costs time and memory in proportion to its own length."""
    try:
        _count(yaml.parse(text, Loader=_FAST_LOADER), source)
    except yaml.YAMLError:
        return  # bad syntax: the loader reports it, in its own words and with its line


def _count(events: Iterator[yaml.Event], source: str) -> None:
    sizes: dict[str, int] = {}  # expanded node count of each anchored node seen so far
    stack: list[_Open] = []
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Open(event.anchor))
            if len(stack) > MAX_DEPTH:
                _refuse(source, event, f"the YAML is nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, yaml.AliasEvent):
            if any(o.anchor == event.anchor for o in stack):
                _refuse(source, event, f"recursive alias *{event.anchor} (it contains itself)")
            # an alias to an anchor not seen yet counts 1: the composer then says it is unknown
            size, anchor = sizes.get(str(event.anchor), 1), None
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            size, anchor = done.size, done.anchor
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        else:  # stream and document boundaries
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1].size += size
            if stack[-1].size > MAX_NODES:
                _refuse(source, event, f"more than {MAX_NODES} nodes once its aliases are expanded")


def _refuse(source: str, event: yaml.Event, message: str) -> None:
    line = None if event.start_mark is None else event.start_mark.line + 1
    raise SpecProblems(source, [Problem("", message, line)])


# pass 2: shape ----------------------------------------------------------------------------
def _shape_problems(error: ValidationError, data: Any, root: yaml.Node) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in error.errors(include_url=False):
        loc, value, line = _locate(err["loc"], data, root)
        problem = Problem(format_path(loc), _message(err, value), line)
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            problems.append(problem)
    return problems


def _locate(raw: Sequence[Any], data: Any, root: yaml.Node) -> tuple[Loc, Any, int | None]:
    """Turn pydantic's location (which names the union member after each node) into a path
    through the data, and find the YAML line it points at."""
    loc: list[str | int] = []
    node: yaml.Node | None = root
    line = root.start_mark.line + 1
    at_node = True  # the next element may be the union tag pydantic inserts for a node
    parent: str | int | None = None
    for el in raw:
        if at_node and isinstance(el, str) and _kind_of(data) == el:
            at_node = False
            continue
        loc.append(el)
        if _has(data, el):
            data = data[el]
            node, key_line = _child(node, el)
        else:  # the element is missing (a required field): point at its parent
            data, node, key_line = None, None, None
        if key_line is not None:
            line = key_line
        at_node = (
            (parent in _NODE_LISTS and isinstance(el, int))
            or parent in _NODE_MAPS
            or el in _NODE_FIELDS
        )
        parent = el
    return tuple(loc), data, line


def _kind_of(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    kind = data.get("kind", "python")
    return kind if isinstance(kind, str) and kind in NODE_KINDS else None


def _has(data: Any, el: str | int) -> bool:
    if isinstance(data, dict):
        return el in data
    return isinstance(data, list) and isinstance(el, int) and 0 <= el < len(data)


def _child(node: yaml.Node | None, el: str | int) -> tuple[yaml.Node | None, int | None]:
    """The YAML node under `node` at key or index `el`, and the line of its key or item."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(el):
                return value, key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode) and isinstance(el, int) and el < len(node.value):
        item = node.value[el]
        return item, item.start_mark.line + 1
    return None, None


def _message(err: Any, value: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "unknown_kind":
        if not isinstance(value, dict):
            return (
                f"expected a mapping with `python:` or `kind:`, got {type(value).__name__} "
                f"{_short(value)}"
            )
        return (
            f"unknown kind {_short(value.get('kind'))} (expected one of: {', '.join(NODE_KINDS)})"
        )
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        msg += f" (got {_short(err['input'])})"
    return msg


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_refs(b: _Builder, data: Any, loc: Loc) -> None:
    """In a spec that did not validate, build every node whose own shape is right (so its
    imports, the names it refers to and its constructor are checked too), and try every
    `python:` reference inside the nodes that are wrong (agents where a node is expected,
    any object under `classifier` and `tools`, `python:module:object` strings)."""
    stack: list[tuple[Any, Loc]] = [(data, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            parent = next((p for p in reversed(where) if isinstance(p, str)), None)
            ref = item.get("python")
            if parent in _OBJECT_REFS:
                if isinstance(ref, str) and ref:
                    b.import_object(ref, (*where, "python"))
                continue
            if where and _build_alone(b, item, where):
                continue
            if isinstance(ref, str) and item.get("kind", "python") == "python" and ref:
                b.agent(ref, (*where, "python"))
            stack.extend((v, (*where, k)) for k, v in reversed(item.items()) if k != "python")
        elif isinstance(item, str) and item.startswith("python:") and where:
            b.import_object(item, where)
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in reversed(list(enumerate(item))))


def _build_alone(b: _Builder, item: dict[str, Any], where: Loc) -> bool:
    """Build `item` as a node if it is one and its shape is right; whether it was."""
    if "kind" not in item and "python" not in item:
        return False
    try:
        spec = WORKFLOW.validate_python(item)
    except ValidationError:
        return False
    b.node(spec, where)
    return True


def format_path(loc: Loc) -> str:
    """`('steps', 1, 'branches', 0, 'python')` -> `steps[1].branches[0].python`."""
    out = ""
    for el in loc:
        if isinstance(el, int):
            out += f"[{el}]"
        else:
            out += f".{el}" if out else str(el)
    return out


# pass 3: building -------------------------------------------------------------------------
@dataclass(slots=True)
class _Builder:
    """Turns a validated spec into agents, collecting problems instead of stopping at one."""

    base_dir: Path
    root: yaml.Node
    problems: list[Problem] = field(default_factory=list)
    tiers: Any = None  # the file's `tiers:` table, for `llm` nodes that ask for a tier

    def problem(self, loc: Loc, message: str) -> None:
        node: yaml.Node | None = self.root
        line = self.root.start_mark.line + 1
        for el in loc:
            node, key_line = _child(node, el)
            if key_line is None:
                break
            line = key_line
        self.problems.append(Problem(format_path(loc), message, line))

    def node(self, spec: Any, loc: Loc) -> Any:
        """The agent for one node, or None after recording why it cannot be built."""
        if loc and getattr(spec, "tiers", None) is not None:
            self.problem((*loc, "tiers"), "`tiers:` goes at the top of the file only")
        build = _BUILDERS[spec.kind]
        return build(self, spec, loc)

    def nodes(self, specs: Sequence[Any], loc: Loc) -> list[Any] | None:
        built = [self.node(s, (*loc, i)) for i, s in enumerate(specs)]
        return None if any(b is None for b in built) else built

    def construct(self, loc: Loc, make: Callable[[], Any]) -> Any:
        """Call a pattern's constructor; its `UsageError` becomes a problem at this node."""
        try:
            return make()
        except UsageError as e:
            self.problem(loc, str(e))
        except Exception as e:  # e.g. an output type pydantic cannot build a schema for
            self.problem(loc, f"{type(e).__name__}: {e}")
        return None

    def import_object(self, ref: str, loc: Loc) -> Any:
        """`module:object` or `file.py:object` (relative to the spec's folder), with or
        without a `python:` prefix, or None."""
        where, sep, attr = ref.removeprefix("python:").rpartition(":")
        if not sep or not where or not attr:
            self.problem(loc, f"{ref!r} is not `module:object` or `file.py:object`")
            return None
        from podium.spec import targets

        try:
            if where.endswith(".py"):
                file = Path(where)
                module = targets._import_file(
                    str(file if file.is_absolute() else self.base_dir / file)
                )
            else:
                _add_to_path(self.base_dir)
                module = targets._import_module(where)
        except TargetError as e:
            self.problem(loc, f"cannot import {ref!r}: {e}")
            return None
        except Exception as e:  # the module itself failed while importing
            self.problem(loc, f"cannot import {ref!r}: {type(e).__name__}: {e}")
            return None
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                self.problem(loc, f"cannot import {ref!r}: {where!r} has no attribute {attr!r}")
                return None
            obj = getattr(obj, part)
        return obj

    def agent(self, ref: str, loc: Loc) -> Any:
        obj = self.import_object(ref, loc)
        if obj is None:
            return None
        if callable(obj) and not _is_agent(obj) and getattr(obj, "__podium_factory__", False):
            obj = obj()
        if not _is_agent(obj):
            self.problem(
                loc,
                f"{ref!r} is not an agent (a {type(obj).__name__}; an agent has a `name` and "
                "`async run(input, ctx)`: decorate a function with @agent)",
            )
            return None
        return obj

    def maybe(self, spec: Any, loc: Loc) -> Any:
        """An optional node: None when not given, `_FAILED` when it cannot be built."""
        if spec is None:
            return None
        built = self.node(spec, loc)
        return _FAILED if built is None else built

    def function(self, ref: str | None, loc: Loc, *, agents: bool = False) -> Any:
        """A function (or, with `agents`, also an agent) by import path: None when not
        given, `_FAILED` when it cannot be had."""
        if ref is None:
            return None
        found = self.import_object(ref, loc)
        if found is None:
            return _FAILED
        if _is_agent(found) and agents:
            return found
        if not callable(found) or (_is_agent(found) and not agents):
            what = "a function or an agent" if agents else "a function"
            self.problem(loc, f"{ref!r} is not {what} (a {type(found).__name__})")
            return _FAILED
        return found

    def known(self, name: str, names: Sequence[str], loc: Loc, what: str) -> bool:
        """Whether `name` is one of `names`; if not, a problem saying which names there are."""
        if name in names:
            return True
        self.problem(loc, f"no {what} named {name!r} (there are: {', '.join(names) or 'none'})")
        return False


def _add_to_path(folder: Path) -> None:
    """Modules next to the spec import without installing them (appended: never shadows)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def _retry(spec: RetrySpec | None) -> Any:
    if spec is None:
        return None
    from podium.runtime.policies import Retry

    return Retry(**spec.model_dump())


def _common(spec: Any) -> dict[str, Any]:
    return {"retry": _retry(spec.retry), "timeout": spec.timeout, "description": spec.description}


def _build_python(b: _Builder, spec: PythonRef, loc: Loc) -> Any:
    return b.agent(spec.python, (*loc, "python"))


def _build_sequential(b: _Builder, spec: SequentialSpec, loc: Loc) -> Any:
    from podium.patterns.sequential import Sequential

    steps = b.nodes(spec.steps, (*loc, "steps"))
    if steps is None:
        return None
    return b.construct(loc, lambda: Sequential(spec.name, steps, **_common(spec)))


def _build_parallel(b: _Builder, spec: ParallelSpec, loc: Loc) -> Any:
    from podium.patterns.parallel import Parallel

    branches = b.nodes(spec.branches, (*loc, "branches"))
    merge: Any = spec.merge
    if merge.startswith("python:"):
        merge = b.import_object(merge.removeprefix("python:"), (*loc, "merge"))
        if merge is not None and not callable(merge) and not _is_agent(merge):
            b.problem((*loc, "merge"), f"{spec.merge!r} is neither a function nor an agent")
            merge = None
    if branches is None or merge is None:
        return None
    return b.construct(
        loc,
        lambda: Parallel(
            spec.name,
            branches,
            merge=merge,
            min_success=spec.min_success,
            branch_timeout=spec.branch_timeout,
            **_common(spec),
        ),
    )


def _build_router(b: _Builder, spec: RouterSpec, loc: Loc) -> Any:
    from podium.patterns.router import Router

    routes = {k: b.node(v, (*loc, "routes", k)) for k, v in spec.routes.items()}
    fallback = None if spec.fallback is None else b.node(spec.fallback, (*loc, "fallback"))
    classifier = _classifier(b, spec, loc)
    model = None if spec.model is None else _model(b, spec.model, (*loc, "model"))
    if (
        any(r is None for r in routes.values())
        or (spec.fallback is not None and fallback is None)
        or (spec.model is None and classifier is None)
        or (spec.model is not None and model is None)
    ):
        return None
    common = {"threshold": spec.threshold, "fallback": fallback, **_common(spec)}
    if model is not None:
        return b.construct(
            loc,
            lambda: Router.llm(
                spec.name, routes, model=model, instructions=spec.instructions, **common
            ),
        )
    return b.construct(loc, lambda: Router(spec.name, routes, classifier=classifier, **common))


def _classifier(b: _Builder, spec: RouterSpec, loc: Loc) -> Any:
    """A function or agent from `classifier`, or `Rule`s from `rules` (None if neither)."""
    if spec.classifier is not None:
        cloc = (*loc, "classifier", "python")
        found = b.import_object(spec.classifier.python, cloc)
        if found is not None and not callable(found) and not _is_agent(found):
            b.problem(cloc, f"{spec.classifier.python!r} is neither a function nor an agent")
            return None
        return found
    names = list(spec.routes)
    rules = [_rule(b, names, r, (*loc, "rules", i)) for i, r in enumerate(spec.rules or ())]
    return rules if rules and all(r is not None for r in rules) else None


def _rule(b: _Builder, routes: Sequence[str], r: RuleSpec, loc: Loc, field: str = "routes") -> Any:
    from podium.patterns.router import Rule

    if r.route not in routes:
        what = "route" if field == "routes" else "strategy"
        b.problem((*loc, "route"), f"no {what} {r.route!r} in `{field}`")
        return None
    when = None
    if r.when is not None:
        when = b.import_object(r.when, (*loc, "when"))
        if when is None:
            return None
        if not callable(when):
            b.problem((*loc, "when"), f"{r.when!r} is not a function")
            return None
    return b.construct(
        loc, lambda: Rule(r.route, when=when, keywords=r.keywords, confidence=r.confidence)
    )


def _model(b: _Builder, spec: str | None, loc: Loc) -> Any:
    """The model a spec names; with none named and none configured (`PODIUM_MODEL`), a
    scripted echo, so a workflow runs offline rather than reaching a provider by surprise."""
    try:
        from podium.models.settings import resolve_model

        model = resolve_model(spec)
    except UsageError as e:
        b.problem(loc, str(e))
        return None
    if model is None:
        from podium.models.scripted import ScriptedModel

        model = ScriptedModel.echo()
    return model


def _tiers(b: _Builder, table: dict[str, Any] | None) -> Any:
    """The file's own tiers (`tiers:` at the top), each problem named at its tier."""
    if table is None:
        return None
    from podium.models.tiers import Tiers

    tiers: dict[str, Any] = {}
    for name, models in table.items():
        tier = b.construct(("tiers", name), partial(Tiers, {name: models}, where="tiers"))
        if tier is not None:
            tiers.update(tier.table)
    return Tiers(tiers)


def _llm_model(b: _Builder, spec: LLMSpec, loc: Loc) -> Any:
    """A model, or `tier:<name>` as written (the runtime's tiers pick the model), or None
    when the node asks for a `tier`."""
    if spec.tier is not None and spec.model is None:
        return None
    if spec.model is not None and spec.model.startswith("tier:"):
        return spec.model
    return _model(b, spec.model, (*loc, "model"))


def _llm_extras(spec: LLMSpec) -> dict[str, Any]:
    """What an `llm` node adds for cost: its tier, cache and batching."""
    from podium.runtime.cache import Cache

    cache = spec.cache if isinstance(spec.cache, bool) else Cache(ttl=spec.cache.ttl)
    return {"tier": spec.tier, "cache": cache, "batchable": spec.batchable}


def _build_llm(b: _Builder, spec: LLMSpec, loc: Loc) -> Any:
    from podium.agents.llm import LLMAgent
    from podium.tools.tool import Tool

    model = _llm_model(b, spec, loc)
    tools = []
    for i, ref in enumerate(spec.tools):
        tool = b.import_object(ref.python, (*loc, "tools", i, "python"))
        if tool is not None and not isinstance(tool, Tool):
            b.problem((*loc, "tools", i, "python"), f"{ref.python!r} is not a tool (use @tool)")
            tool = None
        tools.append(tool)
    output_type = None
    if spec.output_type is not None:
        output_type = b.import_object(spec.output_type, (*loc, "output_type"))
        if output_type is None:
            return None
    fallbacks = [
        _model(b, m, (*loc, "fallback_models", i)) for i, m in enumerate(spec.fallback_models)
    ]
    if (model is None and spec.tier is None) or any(t is None for t in tools):
        return None
    if any(m is None for m in fallbacks):
        return None
    return b.construct(
        loc,
        lambda: LLMAgent(
            spec.name,
            model=model,
            instructions=spec.instructions,
            tools=tools,
            output_type=output_type,
            max_turns=spec.max_turns,
            fallback_models=fallbacks,
            tiers=b.tiers,
            **_llm_extras(spec),
            **_common(spec),
        ),
    )


# people and remote agents -------------------------------------------------------------------
def _person(spec: HumanSpec | ApprovalSpec) -> dict[str, Any]:
    return {
        "assignee": spec.assignee,
        "deadline": spec.deadline,
        "on_timeout": spec.on_timeout,
        "escalate_to": spec.escalate_to,
        "description": spec.description,
    }


def _build_human(b: _Builder, spec: HumanSpec, loc: Loc) -> Any:
    from podium.agents.human import HumanAgent

    answer_type: Any = str
    if spec.answer_type is not None:
        answer_type = b.import_object(spec.answer_type, (*loc, "answer_type"))
        if answer_type is None:
            return None
    return b.construct(
        loc,
        lambda: HumanAgent(
            spec.name, question=spec.question, answer_type=answer_type, **_person(spec)
        ),
    )


def _build_approval(b: _Builder, spec: ApprovalSpec, loc: Loc) -> Any:
    from podium.agents.human import HumanApproval

    input_type: Any = Any
    if spec.input_type is not None:
        input_type = b.import_object(spec.input_type, (*loc, "input_type"))
        if input_type is None:
            return None
    return b.construct(
        loc,
        lambda: HumanApproval(
            spec.name, prompt=spec.prompt, input_type=input_type, **_person(spec)
        ),
    )


def _build_remote(b: _Builder, spec: RemoteSpec, loc: Loc) -> Any:
    b.problem(
        (*loc, "kind"),
        f"remote agent {spec.name!r}: `kind: remote` (A2A) is not supported yet; wrap the "
        "client in a Python agent and use `python: module:object` for now",
    )
    return None


# managers and teams -------------------------------------------------------------------------
def _names(agents: Sequence[Any]) -> list[str]:
    return [str(a.name) for a in agents]


def _failed(*values: Any) -> bool:
    return any(v is _FAILED for v in values)


def _build_supervisor(b: _Builder, spec: SupervisorSpec, loc: Loc) -> Any:
    from podium.patterns.supervisor import Supervisor

    workers = b.nodes(spec.workers, (*loc, "workers"))
    planner = b.maybe(spec.planner, (*loc, "planner"))
    reviewer = b.maybe(spec.reviewer, (*loc, "reviewer"))
    synthesizer = b.maybe(spec.synthesizer, (*loc, "synthesizer"))
    model = None if spec.model is None else _model(b, spec.model, (*loc, "model"))
    if workers is None or _failed(planner, reviewer, synthesizer):
        return None
    names = _names(workers)
    known = [
        b.known(w, names, (*loc, "worker_timeouts", w), "worker") for w in spec.worker_timeouts
    ]
    if not all(known) or (spec.model is not None and model is None):
        return None
    timeout: Any = spec.worker_timeout
    if spec.worker_timeouts:
        every = {n: spec.worker_timeout for n in names if spec.worker_timeout is not None}
        timeout = {**every, **spec.worker_timeouts}
    options: dict[str, Any] = {
        "max_turns": spec.max_rounds,
        "budget": None if spec.max_tokens is None else Budget(tokens=spec.max_tokens),
        "worker_timeout": timeout,
        "worker_errors": spec.worker_errors,
        "max_reasks": spec.max_plan_errors,
        **_common(spec),
    }
    if model is not None:
        return b.construct(
            loc,
            lambda: Supervisor.llm(
                spec.name,
                workers,
                model=model,
                review=spec.review,
                instructions=spec.instructions,
                **options,
            ),
        )
    roles = {"planner": planner, "reviewer": reviewer, "synthesizer": synthesizer}
    return b.construct(loc, lambda: Supervisor(spec.name, workers, **roles, **options))


def _build_magentic(b: _Builder, spec: MagenticSpec, loc: Loc) -> Any:
    from podium.patterns.magentic import Magentic

    participants = b.nodes(spec.participants, (*loc, "participants"))
    ledger = b.maybe(spec.ledger, (*loc, "ledger"))
    progress = b.maybe(spec.progress, (*loc, "progress"))
    answer = b.maybe(spec.answer, (*loc, "answer"))
    model = None if spec.model is None else _model(b, spec.model, (*loc, "model"))
    if participants is None or _failed(ledger, progress, answer):
        return None
    if spec.model is not None and model is None:
        return None
    options: dict[str, Any] = {
        "max_turns": spec.max_rounds,
        "max_stalls": spec.max_stalls,
        "max_replans": spec.max_replans,
        "budget": None if spec.max_tokens is None else Budget(tokens=spec.max_tokens),
        **_common(spec),
    }
    if model is not None:
        return b.construct(
            loc,
            lambda: Magentic.llm(
                spec.name, participants, model=model, instructions=spec.instructions, **options
            ),
        )
    return b.construct(
        loc,
        lambda: Magentic(
            spec.name, participants, ledger=ledger, progress=progress, answer=answer, **options
        ),
    )


def _build_groupchat(b: _Builder, spec: GroupChatSpec, loc: Loc) -> Any:
    from podium.patterns.groupchat import GroupChat

    participants = b.nodes(spec.participants, (*loc, "participants"))
    speaker: Any = spec.speaker
    if spec.manager is not None:
        speaker = b.maybe(spec.manager, (*loc, "manager"))
    elif speaker != "round_robin":
        speaker = b.function(speaker, (*loc, "speaker"), agents=True)
    until = b.function(spec.until, (*loc, "until"))
    fallback = b.maybe(spec.fallback, (*loc, "fallback"))
    if participants is None or _failed(speaker, until, fallback):
        return None
    names = _names(participants)
    ok = spec.critic is None or b.known(spec.critic, names, (*loc, "critic"), "participant")
    for who in spec.weights or {}:
        ok = b.known(who, names, (*loc, "weights", who), "participant") and ok
    if not ok:
        return None
    options: dict[str, Any] = {
        "speaker": speaker,
        "until": until,
        "consensus": spec.consensus,
        "weights": spec.weights,
        "threshold": spec.threshold,
        "options": spec.options,
        "approve": spec.approve,
        "max_stalls": spec.deadlock_turns,
        "on_deadlock": spec.on_deadlock,
        "fallback": fallback,
        "max_reasks": spec.manager_retries,
        **_common(spec),
    }
    rounds = spec.rounds
    if rounds is not None:
        critic = participants[names.index(str(spec.critic))]
        proposers = [p for p in participants if p is not critic]
        return b.construct(
            loc,
            lambda: GroupChat.debate(
                spec.name, proposers=proposers, critic=critic, rounds=rounds, **options
            ),
        )
    return b.construct(
        loc,
        lambda: GroupChat(
            spec.name,
            participants,
            max_turns=spec.max_turns or 12,
            critic=spec.critic,
            **options,
        ),
    )


def _build_handoff(b: _Builder, spec: HandoffSpec, loc: Loc) -> Any:
    from podium.patterns.handoff import Handoff

    agents = b.nodes(spec.agents, (*loc, "agents"))
    if agents is None:
        return None
    names = _names(agents)
    ok = spec.start is None or b.known(spec.start, names, (*loc, "start"), "agent")
    for sender, receivers in (spec.routes or {}).items():
        ok = b.known(sender, names, (*loc, "routes", sender), "agent") and ok
        for i, receiver in enumerate(receivers):
            ok = b.known(receiver, names, (*loc, "routes", sender, i), "agent") and ok
    if not ok:
        return None
    return b.construct(
        loc,
        lambda: Handoff(
            spec.name,
            agents,
            start=spec.start,
            routes=spec.routes,
            max_turns=spec.max_handoffs + 1,  # the first agent's turn, then one per transfer
            ping_pong=spec.ping_pong,
            **_common(spec),
        ),
    )


# loops and graphs ---------------------------------------------------------------------------
def _build_loop(b: _Builder, spec: LoopSpec, loc: Loc) -> Any:
    from podium.patterns.loop import Loop

    body = b.node(spec.body, (*loc, "body"))
    until = b.function(spec.until, (*loc, "until"), agents=True)
    critic = b.maybe(spec.critic, (*loc, "critic"))
    if body is None or _failed(until, critic):
        return None
    return b.construct(
        loc,
        lambda: Loop(
            spec.name,
            body,
            until=critic if critic is not None else until,
            max_turns=spec.max_iterations,
            max_stalls=spec.no_progress,
            state=spec.state,
            check_first=spec.check_first,
            **_common(spec),
        ),
    )


def _build_graph(b: _Builder, spec: GraphSpec, loc: Loc) -> Any:
    from podium.patterns.graph import Graph

    nodes = {k: b.node(v, (*loc, "nodes", k)) for k, v in spec.nodes.items()}
    ids = list(spec.nodes)
    ok = b.known(spec.start, ids, (*loc, "start"), "node")
    edges: list[tuple[str, str, Any]] = []
    for i, e in enumerate(spec.edges):
        where = (*loc, "edges", i)
        good = b.known(e.source, ids, (*where, "from"), "node")
        good = b.known(e.target, [*ids, "END"], (*where, "to"), "node") and good
        when = b.function(e.when, (*where, "when"))
        ok = ok and good and when is not _FAILED
        edges.append((e.source, e.target, when))
    if not ok or any(n is None for n in nodes.values()):
        return None

    def make() -> Graph:
        g = Graph(spec.name, max_turns=spec.max_steps, **_common(spec))
        handles = {k: g.node(agent, label=k) for k, agent in nodes.items()}
        handles["END"] = g.END
        for source, target, when in edges:
            g.edge(handles[source], handles[target], when=when)
        g.start(handles[spec.start])
        g.validate()  # unreachable nodes or no way to END: a problem now, not at run time
        return g

    return b.construct(loc, make)


def _build_adaptive(b: _Builder, spec: AdaptiveSpec, loc: Loc) -> Any:
    from podium.patterns.adaptive import Adaptive

    strategies = {k: b.node(v, (*loc, "strategies", k)) for k, v in spec.strategies.items()}
    names = list(spec.strategies)
    classifier: Any = None
    if spec.classifier is not None:
        cloc = (*loc, "classifier", "python")
        classifier = b.function(spec.classifier.python, cloc, agents=True)
    elif spec.rules is not None:
        rules = [
            _rule(b, names, r, (*loc, "rules", i), "strategies") for i, r in enumerate(spec.rules)
        ]
        classifier = _FAILED if any(r is None for r in rules) else rules
    model = None if spec.model is None else _model(b, spec.model, (*loc, "model"))
    success = b.function(spec.success, (*loc, "success"), agents=True)
    outcomes = None
    if spec.outcomes is not None:
        outcomes = b.import_object(spec.outcomes, (*loc, "outcomes"))
    ok = spec.default is None or b.known(spec.default, names, (*loc, "default"), "strategy")
    if (
        not ok
        or any(s is None for s in strategies.values())
        or _failed(classifier, success)
        or (spec.model is not None and model is None)
        or (spec.outcomes is not None and outcomes is None)
    ):
        return None
    options: dict[str, Any] = {
        "learning": spec.learning,
        "default": spec.default,
        "success": success,
        "outcomes": outcomes,
        "namespace": spec.namespace,
        "cost_weight": spec.cost_weight,
        "latency_weight": spec.latency_weight,
        "prior": spec.prior,
        "seed": spec.seed,
        **_common(spec),
    }
    if model is not None:
        return b.construct(
            loc,
            lambda: Adaptive.llm(
                spec.name,
                strategies,
                model=model,
                kinds=spec.kinds,
                instructions=spec.instructions,
                **options,
            ),
        )
    return b.construct(
        loc, lambda: Adaptive(spec.name, strategies, classifier=classifier, **options)
    )


_BUILDERS: dict[str, Callable[[_Builder, Any, Loc], Any]] = {
    "python": _build_python,
    "llm": _build_llm,
    "human": _build_human,
    "approval": _build_approval,
    "remote": _build_remote,
    "sequential": _build_sequential,
    "parallel": _build_parallel,
    "router": _build_router,
    "supervisor": _build_supervisor,
    "magentic": _build_magentic,
    "groupchat": _build_groupchat,
    "handoff": _build_handoff,
    "loop": _build_loop,
    "graph": _build_graph,
    "adaptive": _build_adaptive,
}
