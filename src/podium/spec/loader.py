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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from podium.errors import SpecError, TargetError, UsageError
from podium.spec.schema import (
    NODE_KINDS,
    WORKFLOW,
    LLMSpec,
    ParallelSpec,
    PythonRef,
    RetrySpec,
    RouterSpec,
    RuleSpec,
    SequentialSpec,
)

__all__ = ["Problem", "SpecProblems", "load_yaml", "load_yaml_text"]

Loc = tuple[str | int, ...]

# Fields whose values (list items or mapping values) are themselves nodes.
_NODE_LISTS = frozenset({"steps", "branches"})
_NODE_MAPS = frozenset({"routes"})
_NODE_FIELDS = frozenset({"fallback"})


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
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"cannot read {path}: {e}") from None
    agent = load_yaml_text(text, base_dir=file.parent, source=str(path))
    with contextlib.suppress(AttributeError):  # lets `podium resume` find the file again
        agent.target = str(file.resolve())
    return agent


def load_yaml_text(text: str, *, base_dir: str | Path = ".", source: str = "<spec>") -> Any:
    """`load_yaml` for a spec held in a string; `base_dir` anchors `file.py:object` refs."""
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
    agent = builder.node(spec, ())
    if builder.problems or agent is None:
        problems = sorted(builder.problems, key=lambda p: p.line or 0)
        raise SpecProblems(source, problems or [Problem("", "cannot build the workflow")])
    return agent


# pass 1: YAML -----------------------------------------------------------------------------
def _parse(text: str, source: str) -> tuple[Any, yaml.Node]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(e, "problem", None) or str(e)
        raise SpecProblems(source, [Problem("", f"YAML syntax: {problem}", line)]) from None
    finally:
        loader.dispose()
    if root is None or not isinstance(data, dict):
        got = "nothing" if root is None else type(data).__name__
        line = None if root is None else root.start_mark.line + 1
        msg = f"the spec must be a mapping with `name` and `kind` (got {got})"
        raise SpecProblems(source, [Problem("", msg, line)])
    return data, root


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
        if at_node and isinstance(el, str) and el in NODE_KINDS and isinstance(data, dict):
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
    """Try every `python:` reference in a spec that did not validate (agents where a node
    is expected, any object under `classifier` and `tools`)."""
    stack: list[tuple[Any, Loc]] = [(data, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            ref = item.get("python")
            if isinstance(ref, str) and item.get("kind", "python") == "python" and ref:
                parent = next((p for p in reversed(where) if isinstance(p, str)), None)
                if parent in ("classifier", "tools"):
                    b.import_object(ref, (*where, "python"))
                else:
                    b.agent(ref, (*where, "python"))
            stack.extend((v, (*where, k)) for k, v in reversed(item.items()) if k != "python")
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in reversed(list(enumerate(item))))


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
        """`module:object` or `file.py:object` (relative to the spec's folder), or None."""
        where, sep, attr = ref.rpartition(":")
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


def _is_agent(obj: Any) -> bool:
    return hasattr(obj, "name") and hasattr(obj, "run")


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
    rules = [_rule(b, spec, r, (*loc, "rules", i)) for i, r in enumerate(spec.rules or ())]
    return rules if rules and all(r is not None for r in rules) else None


def _rule(b: _Builder, router: RouterSpec, r: RuleSpec, loc: Loc) -> Any:
    from podium.patterns.router import Rule

    if r.route not in router.routes:
        b.problem((*loc, "route"), f"no route {r.route!r} in `routes`")
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


def _build_llm(b: _Builder, spec: LLMSpec, loc: Loc) -> Any:
    from podium.agents.llm import LLMAgent
    from podium.tools.tool import Tool

    model = _model(b, spec.model, (*loc, "model"))
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
    if model is None or any(t is None for t in tools):
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
            **_common(spec),
        ),
    )


_BUILDERS: dict[str, Callable[[_Builder, Any, Loc], Any]] = {
    "python": _build_python,
    "sequential": _build_sequential,
    "parallel": _build_parallel,
    "router": _build_router,
    "llm": _build_llm,
}
