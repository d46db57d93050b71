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
their line: YAML syntax (with hostile files refused first), then the shape (pydantic, the
union of every kind's spec model, `podium.spec.schema`), then building (imports, pattern
arguments). A spec that fails any pass never starts a run.

Nothing here knows a kind: each kind's builder is registered beside the agent or pattern it
builds (`podium.agents.kinds`), and the loader hands it a `_Builder` that builds children,
imports references and records problems. Between the first two passes, keys a kind renamed
(`max_rounds`, now `max_turns`) are moved to their new names, each with a note.
"""

from __future__ import annotations

import contextlib
import difflib
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from podium.agents import kinds as registry
from podium.agents.base import is_agent as _is_agent
from podium.agents.kinds import FAILED, Loc, Rename
from podium.core.datafile import HostileYAMLError, check_yaml_size
from podium.errors import SpecProblemsError, TargetError, UsageError, renamed
from podium.spec import schema

__all__ = [
    "Problem",
    "SpecProblemsError",
    "build_spec",
    "load_yaml",
    "load_yaml_spec",
    "load_yaml_text",
]

T = TypeVar("T")


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


def load_yaml(path: str | Path, *, notes: list[Problem] | None = None) -> Any:
    """The agent a YAML workflow file describes. Python references in it are resolved
    relative to the file's folder. Raises `SpecError` listing every problem found.

    Keys a kind renamed (`max_rounds`, now `max_turns`) still load, for one release: each is
    a note appended to `notes` if given, else a `DeprecationWarning`."""
    return load_yaml_spec(path, notes=notes)[1]


def load_yaml_spec(path: str | Path, *, notes: list[Problem] | None = None) -> tuple[Any, Any]:
    """The validated spec (a kind's spec model) and the agent built from it, for tools that
    report on the spec itself (`podium validate`); `notes` as for `load_yaml`."""
    collected: list[Problem] = [] if notes is None else notes
    loaded = _load_file(path, collected)
    _warn(str(path), collected, notes)
    return loaded


def load_yaml_text(
    text: str,
    *,
    base_dir: str | Path = ".",
    source: str = "<spec>",
    notes: list[Problem] | None = None,
) -> Any:
    """`load_yaml` for a spec held in a string; `base_dir` anchors `file.py:object` refs."""
    collected: list[Problem] = [] if notes is None else notes
    agent = _load(text, Path(base_dir), source, collected)[1]
    _warn(source, collected, notes)
    return agent


def _load_file(path: str | Path, notes: list[Problem]) -> tuple[Any, Any]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"cannot read {path}: {e}") from None
    spec, agent = _load(text, file.parent, str(path), notes)
    with contextlib.suppress(AttributeError):  # lets `podium resume` find the file again
        agent.target = str(file.resolve())
    return spec, agent


def _warn(source: str, collected: list[Problem], notes: list[Problem] | None) -> None:
    """Without a list of the caller's (which has the notes already, even when loading
    failed), a `DeprecationWarning` for each note, at the caller's line."""
    if notes is not None:
        return
    for note in collected:
        warnings.warn(f"{source}: {note}", DeprecationWarning, stacklevel=3)


def _load(text: str, base_dir: Path, source: str, notes: list[Problem]) -> tuple[Any, Any]:
    data, root, clashes = read(text, source, notes)
    try:
        spec = schema.workflow().validate_python(data)
    except ValidationError as e:
        problems = _shape_problems(e, data, root)
        # Imports are checked too, so one attempt shows every problem, not just the first pass's.
        checker = _Builder(Path(base_dir), root)
        _check_refs(checker, data, ())
        everything = sorted(clashes + problems + checker.problems, key=lambda p: p.line or 0)
        raise SpecProblemsError(source, everything) from None
    if clashes:
        raise SpecProblemsError(source, clashes)
    builder = _Builder(Path(base_dir), root)
    agent = builder.top(spec)
    if builder.problems or agent is None:
        problems = sorted(builder.problems, key=lambda p: p.line or 0)
        raise SpecProblemsError(source, problems or [Problem("", "cannot build the workflow")])
    return spec, agent


def read(text: str, source: str, notes: list[Problem]) -> tuple[Any, yaml.Node, list[Problem]]:
    """The spec's data with every renamed key under its new name (a note for each appended
    to `notes`), its YAML tree (for lines), and the places where an old key and its new one
    are both given. `SpecProblemsError` when the YAML itself is refused (pass 1)."""
    data, root = _parse(text, source)
    renamed: list[Problem] = []
    clashes: list[Problem] = []
    data = _Renames(root, renamed, clashes).node(data, root, ())
    notes.extend(sorted(renamed, key=lambda p: p.line or 0))
    return data, root, clashes


# pass 1: YAML -----------------------------------------------------------------------------
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
        raise SpecProblemsError(source, [Problem("", f"YAML syntax: {problem}", line)]) from None
    except RecursionError:  # the size check caps nesting; this only guards a deeper stack
        msg = "the YAML is nested too deeply to load"
        raise SpecProblemsError(source, [Problem("", msg)]) from None
    if root is None or not isinstance(data, dict):
        got = "nothing" if root is None else type(data).__name__
        line = None if root is None else root.start_mark.line + 1
        msg = f"the spec must be a mapping with `name` and `kind` (got {got})"
        raise SpecProblemsError(source, [Problem("", msg, line)])
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


def _check_size(text: str, source: str) -> None:
    """Hostile YAML (alias bombs, recursive aliases, deep nesting) is refused before it is
    composed; see `podium.core.datafile`."""
    try:
        check_yaml_size(text)
    except HostileYAMLError as e:
        raise SpecProblemsError(source, [Problem("", e.message, e.line)]) from None


# renamed keys -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Renames:
    """Moves the keys a kind renamed (`Kind.renamed`) to their new names, walking the spec's
    nodes, with a note for each (where the old key is) and a problem where both names are
    given. The YAML tree's key is renamed too, so later problems find its line."""

    root: yaml.Node
    notes: list[Problem]
    clashes: list[Problem]

    def node(self, value: Any, at: yaml.Node | None, loc: Loc) -> Any:
        if not isinstance(value, dict):
            return value
        kind = registry.kinds().get(str(value.get("kind", "python")))
        out = dict(value)
        for old, rename in (kind.renamed if kind is not None else {}).items():
            if old in out:
                self._move(out, at, (*loc, old), rename)
        shapes = schema.fields().nodes
        for key, child in out.items():
            shape = shapes.get(key)
            if shape is None:
                continue
            where, _ = _child(at, key)
            if shape == "one":
                out[key] = self.node(child, where, (*loc, key))
            elif isinstance(child, list) and shape == "list":
                out[key] = [
                    self.node(v, _child(where, i)[0], (*loc, key, i)) for i, v in enumerate(child)
                ]
            elif isinstance(child, dict) and shape == "map":
                out[key] = {
                    k: self.node(v, _child(where, k)[0], (*loc, key, k)) for k, v in child.items()
                }
        return out

    def _move(self, out: dict[str, Any], at: yaml.Node | None, loc: Loc, rename: Rename) -> None:
        old = str(loc[-1])
        value = out.pop(old)
        if rename.convert is not None:
            value = rename.convert(value)
        head, _, inner = rename.new.partition(".")
        line = _line(self.root, loc)
        if inner:  # a key inside a mapping: `max_tokens` is `budget: {tokens: ...}`
            holder = out.get(head) or {}
            given = not isinstance(holder, dict) or inner in holder
            if not given:
                out[head] = {**holder, inner: value}
        else:
            given = head in out
            if not given:
                out[head] = value
                _rename_key(at, old, head)
        path = format_path(loc)
        if given:
            message = f"give `{rename.new}` or its old name `{old}`, not both"
            self.clashes.append(Problem(path, message, line))
            return
        how = f" ({rename.hint})" if rename.hint else ""
        message = (
            f"`{old}` is deprecated: use `{rename.new}`{how}; the old name goes in the next release"
        )
        self.notes.append(Problem(path, message, line))


def _line(root: yaml.Node, loc: Loc) -> int:
    """The line of the key or item at `loc` (or of the nearest place above it)."""
    node: yaml.Node | None = root
    line: int = root.start_mark.line + 1
    for el in loc:
        node, key_line = _child(node, el)
        if key_line is None:
            break
        line = key_line
    return line


def _rename_key(node: yaml.Node | None, old: str, new: str) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if key.value == old:
                key.value = new


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
    line: int = root.start_mark.line + 1
    at_node = True  # the next element may be the union tag pydantic inserts for a node
    parent: str | int | None = None
    shapes = schema.fields().nodes
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
            (shapes.get(str(parent)) == "list" and isinstance(el, int))
            or shapes.get(str(parent)) == "map"
            or shapes.get(str(el)) == "one"
        )
        parent = el
    return tuple(loc), data, line


def _kind_of(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    kind = data.get("kind", "python")
    return kind if isinstance(kind, str) and kind in registry.kinds() else None


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
        return "unknown field" + _did_you_mean(err["loc"])
    if kind == "unknown_kind":
        if not isinstance(value, dict):
            return (
                f"expected a mapping with `python:` or `kind:`, got {type(value).__name__} "
                f"{_short(value)}"
            )
        known = ", ".join(registry.kinds())
        return f"unknown kind {_short(value.get('kind'))} (expected one of: {known})"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        msg += f" (got {_short(err['input'])})"
    return msg


def _did_you_mean(raw: Sequence[Any]) -> str:
    """` (did you mean `max_turns`?)` when the unknown key is close to one or two of its
    kind's fields (pydantic names the kind just before the key), else ``."""
    if len(raw) < 2 or not isinstance(raw[-1], str):
        return ""
    owner = registry.kinds().get(str(raw[-2]))
    if owner is None:
        return ""
    fields = [*owner.spec.model_fields, *owner.renamed]
    close = difflib.get_close_matches(raw[-1], fields, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(f'`{c}`' for c in close)}?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_refs(b: _Builder, data: Any, loc: Loc) -> None:
    """In a spec that did not validate, build every node whose own shape is right (so its
    imports, the names it refers to and its constructor are checked too), and try every
    `python:` reference inside the nodes that are wrong (agents where a node is expected,
    any object under `classifier` and `tools`, `python:module:object` strings)."""
    objects = schema.fields().objects
    stack: list[tuple[Any, Loc]] = [(data, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            parent = next((p for p in reversed(where) if isinstance(p, str)), None)
            ref = item.get("python")
            if parent in objects:
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
        spec = schema.workflow().validate_python(item)
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

    def top(self, spec: Any) -> Any:
        """The agent of the whole file: its `tiers:` first, then the node."""
        table = getattr(spec, "tiers", None)
        if table is not None:
            from podium.models.tiers import Tiers

            tiers: dict[str, Any] = {}
            for name, models in table.items():
                tier = self.construct(
                    ("tiers", name), partial(Tiers, {name: models}, where="tiers")
                )
                if tier is not None:
                    tiers.update(tier.table)
            self.tiers = Tiers(tiers)
        built = self.node(spec, ())
        policy = self._policy(spec)
        if built is not None and policy is not None:
            with contextlib.suppress(AttributeError):  # the runtime reads it when it runs
                built.policy = policy
        limits = getattr(spec, "limits", None)
        if limits is not None and built is not None:
            from podium.runtime.limits import given_limits

            # the run's limits ride on the root agent: `Runtime.run` reads `run_limits`
            given = limits.model_dump(exclude_none=True)
            if self.construct(("limits",), lambda: given_limits(**given)) is not None:
                try:
                    built.run_limits = given
                except AttributeError:
                    self.problem(("limits",), f"{type(built).__name__} cannot carry `limits:`")
        return built

    def _policy(self, spec: Any) -> Any:
        """The file's `policies:` as a `Policy`, each problem at its field; a grant that
        names a tool or agent the workflow does not have is a problem too."""
        data = getattr(spec, "policies", None)
        if data is None:
            return None
        from podium.governance.policy import Policy, policy_problems

        problems = policy_problems(data)
        for e in problems:
            self.problem(("policies", *e.path), e.problem)
        if problems:
            return None
        policy = Policy.from_dict(data)
        tools, agents, opaque = _names_in(self, spec)
        if not opaque:  # every agent and tool is in the file: a name not there is a typo
            for path, message in policy.unknown_names(tools, agents):
                self.problem(("policies", *path), message)
        return policy

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(format_path(loc), message, _line(self.root, loc)))

    def node(self, spec: Any, loc: Loc) -> Any:
        """The agent for one node, or None after recording why it cannot be built: its
        kind's builder, found in the registry."""
        if loc and getattr(spec, "tiers", None) is not None:
            self.problem((*loc, "tiers"), "`tiers:` goes at the top of the file only")
        if loc and getattr(spec, "policies", None) is not None:
            self.problem((*loc, "policies"), "`policies:` goes at the top of the file only")
        if loc and getattr(spec, "limits", None) is not None:
            self.problem((*loc, "limits"), "`limits:` goes at the top of the file only")
        built = registry.kinds()[spec.kind].build(self, spec, loc)
        roles = getattr(spec, "roles", None)
        if built is not None and roles:
            built.roles = tuple(roles)
        return built

    def nodes(self, specs: Sequence[Any], loc: Loc) -> list[Any] | None:
        built = [self.node(s, (*loc, i)) for i, s in enumerate(specs)]
        return None if any(b is None for b in built) else built

    def construct(self, loc: Loc, make: Callable[[], T]) -> T | None:
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
        from podium.core import targets

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
        """An optional node: None when not given, `FAILED` when it cannot be built."""
        if spec is None:
            return None
        built = self.node(spec, loc)
        return FAILED if built is None else built

    def function(self, ref: str | None, loc: Loc, *, agents: bool = False) -> Any:
        """A function (or, with `agents`, also an agent) by import path: None when not
        given, `FAILED` when it cannot be had."""
        if ref is None:
            return None
        found = self.import_object(ref, loc)
        if found is None:
            return FAILED
        if _is_agent(found) and agents:
            return found
        if not callable(found) or (_is_agent(found) and not agents):
            what = "a function or an agent" if agents else "a function"
            self.problem(loc, f"{ref!r} is not {what} (a {type(found).__name__})")
            return FAILED
        return found

    def known(self, name: str, names: Sequence[str], loc: Loc, what: str) -> bool:
        """Whether `name` is one of `names`; if not, a problem saying which names there are."""
        if name in names:
            return True
        self.problem(loc, f"no {what} named {name!r} (there are: {', '.join(names) or 'none'})")
        return False

    def model(self, spec: str | None, loc: Loc) -> Any:
        """The model a spec names; with none named and none configured (`PODIUM_MODEL`), a
        scripted echo, so a workflow runs offline rather than reaching a provider by
        surprise."""
        from podium.models.settings import resolve_model

        try:
            model = resolve_model(spec)
        except UsageError as e:
            self.problem(loc, str(e))
            return None
        if model is None:
            from podium.models.scripted import ScriptedModel

            model = ScriptedModel.echo()
        return model

    def common(self, spec: Any) -> dict[str, Any]:
        """`retry`, `timeout`, `description` and `budget`, as every constructor takes them."""
        from podium.runtime.budget import Budget
        from podium.runtime.policies import Retry

        out: dict[str, Any] = {"timeout": spec.timeout, "description": spec.description}
        out["retry"] = None if spec.retry is None else Retry(**spec.retry.model_dump())
        budget = spec.budget
        out["budget"] = None if budget is None else Budget(**budget.model_dump(exclude_none=True))
        return out


def _names_in(b: _Builder, spec: Any) -> tuple[set[str], set[str], bool]:
    """The names of the tools (imported again: already loaded) and agents a validated spec
    holds, for grants that name others; and whether it holds Python agents, whose own
    tools and sub-agents the file does not show (then no name can be called unknown)."""
    from pydantic import BaseModel

    tools: set[str] = set()
    agents: set[str] = set()
    opaque = False
    stack: list[Any] = [spec]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            if getattr(item, "kind", None) == "python":
                opaque = True
                continue
            name = getattr(item, "name", None)
            if isinstance(name, str):
                agents.add(name)
            for tool_ref in getattr(item, "tools", None) or ():
                found = b.import_object(getattr(tool_ref, "python", ""), ())
                if isinstance(getattr(found, "name", None), str):
                    tools.add(found.name)
            fields = (f for f in type(item).model_fields if f not in ("tools", "policies"))
            stack.extend(getattr(item, f) for f in fields)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return tools, agents, opaque


def _add_to_path(folder: Path) -> None:
    """Modules next to the spec import without installing them (appended: never shadows)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def build_spec(spec: Any, base_dir: str | Path = ".") -> tuple[Any, list[Problem]]:
    """The agent a validated spec describes (None if it cannot be built) and every problem
    building it, with no YAML behind it (so no lines): for tools and tests that make specs
    in code."""
    builder = _Builder(Path(base_dir), yaml.compose("{}"))
    agent = builder.top(spec)
    return agent, builder.problems


__getattr__ = renamed(__name__, ["SpecProblems"])
