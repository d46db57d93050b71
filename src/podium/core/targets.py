"""Targets: how another process finds an agent again, and which stored targets it may load.

    package.module:object     an object in an importable module
    path/to/file.py:object    an object in a Python file
    flow.yaml                 a YAML workflow

A target typed by the user (`podium run path/flow.py:flow`, `rt.run(..., target=...)`) loads
as given: it is their own choice. A target read back from a store is data, chosen by whoever
could write the store, and loading it runs code. So a stored target loads only if the
operator trusts it, the way a Temporal worker runs only the workflow types registered with it:

- pinned: `--target` (repeatable) on the commands that resume runs, `PODIUM_TARGETS`
  (comma-separated), `targets = [...]` under `[tool.podium]` in the project's pyproject.toml,
  or `Runtime(targets=[...])`. When any is given, only those load (a run whose stored target
  is not one of them is driven by the pinned agent of the same name, if there is one).
- otherwise: a `.py` or `.yaml` file inside the project directory, or a module found on
  `sys.path` (installed, or in the project). A path anywhere else is refused.

A refused target is refused before anything is imported. Modules are located without running
them (`PathFinder.find_spec`, one dotted component at a time: `importlib.util.find_spec` would
import the parent packages). The project directory is the nearest folder, from the working
directory up, holding a pyproject.toml or a .git; else the working directory. Modules of the
project are found after installed ones: a `json.py` lying in the project never shadows `json`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys
import tomllib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any

from podium.errors import TargetError

_FILE_PREFIX = "podium_target_"  # modules loaded from a file path are named so
_HOW_TO_TRUST = "--target {ref} (or list it in [tool.podium] targets or PODIUM_TARGETS)"


# loading -------------------------------------------------------------------------------------
# Loaders for targets that are files of another language than Python, by suffix. This module
# sits below everything that could read such a file (the YAML spec loader builds agents and
# patterns), so the layer above plugs its loader in: `podium/__init__.py` registers YAML's.
FileLoader = Callable[..., Any]  # (path, *, notes=list | None) -> agent
_FILE_LOADERS: dict[str, FileLoader] = {}


def register_file_loader(suffixes: Sequence[str], load: FileLoader) -> None:
    """Load targets whose path ends in one of `suffixes` with `load(path, notes=...)`."""
    for suffix in suffixes:
        _FILE_LOADERS[suffix] = load


def load_target(ref: str, *, notes: list[Any] | None = None) -> Any:
    """The agent a target names; `TargetError` (a one-line reason) if it cannot be had,
    also when the module raises while it is imported. `notes`: as for `load_yaml`."""
    for suffix, load in _FILE_LOADERS.items():
        if ref.endswith(suffix):
            return load(ref, notes=notes)
    where, attr = _split(ref)
    try:
        module = _import_file(where) if where.endswith(".py") else _import_module(where)
    except TargetError:
        raise
    except Exception as e:  # the user's module raised while importing
        raise TargetError(f"cannot load target {ref!r}: {type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"target {ref!r}: {where!r} has no attribute {attr!r}") from None
    if callable(obj) and not hasattr(obj, "run") and getattr(obj, "__podium_factory__", False):
        obj = obj()
    if not hasattr(obj, "name") or not hasattr(obj, "run"):
        raise TargetError(f"target {ref!r} is not an agent (it needs `name` and `run`)")
    return obj


def _split(ref: str) -> tuple[str, str]:
    where, sep, attr = ref.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(
            f"target {ref!r} is neither `module:object`, `file.py:object` nor a .yaml file"
        )
    return where, attr


def _import_module(name: str) -> Any:
    """Import `name` with the project's folders searched after installed packages."""
    for folder in (os.getcwd(), str(project_root())):
        if not any(_same_dir(p, folder) for p in sys.path):
            sys.path.append(folder)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise TargetError(f"cannot import module {name!r}: {e}") from None


def _import_file(path: str) -> Any:
    file = Path(path)
    if not file.is_file():
        raise TargetError(f"no such file: {path}")
    name = f"{_FILE_PREFIX}{abs(hash(file.resolve()))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a broken file is not half-loaded for the next attempt
        raise
    return module


def normalise(ref: str, base: Path | None = None) -> str:
    """A target as it is stored and compared: file paths made absolute (against `base`, by
    default the working directory), module targets as they are."""
    base = Path.cwd() if base is None else base
    if ref.endswith((".yaml", ".yml")):
        return str((base / ref).resolve())
    where, _, attr = ref.rpartition(":")
    if where.endswith(".py"):
        return f"{(base / where).resolve()}:{attr}"
    return ref


# locating without running ---------------------------------------------------------------
def project_root(start: Path | None = None) -> Path:
    """The nearest folder from `start` (the working directory) up that holds a pyproject.toml
    or a .git; `start` itself if none does."""
    here = (Path.cwd() if start is None else start).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return here


def locate_module(name: str, extra: Sequence[str] = ()) -> str | None:
    """Where module `name` would be imported from (its file, or a package's folder), found
    without running any of it: `sys.path` first, then the `extra` folders. None if nowhere."""
    spec: ModuleSpec | None = None
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        full = ".".join(parts[:i])
        loaded = sys.modules.get(full)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            spec = loaded.__spec__
        elif i == 1:
            spec = _find_top(full, extra)
        else:
            where = None if spec is None else spec.submodule_search_locations
            spec = None if where is None else PathFinder.find_spec(full, list(where))
        if spec is None:
            return None
    assert spec is not None
    if spec.origin and spec.has_location:
        return spec.origin
    locations = list(spec.submodule_search_locations or ())
    return locations[0] if locations else (spec.origin or name)


def locate_ref(ref: str, base_dir: Path) -> str | None:
    """Why a spec's `module:object` or `file.py:object` reference (a file relative to
    `base_dir`) cannot be had, found without running any code: no such module or file, or
    its source defines no such name. None if it looks fine."""
    where, sep, attr = ref.removeprefix("python:").rpartition(":")
    if not sep or not where or not attr:
        return f"{ref!r} is not `module:object` or `file.py:object`"
    origin: str | None
    if where.endswith(".py"):
        file = Path(where) if Path(where).is_absolute() else base_dir / where
        origin = str(file) if file.is_file() else None
        if origin is None:
            return f"cannot find {ref!r}: no such file {file}"
    else:
        folders = [str(base_dir.resolve()), os.getcwd(), str(project_root())]
        origin = locate_module(where, folders)
        if origin is None:
            return f"cannot find {ref!r}: no module named {where!r}"
    name = attr.split(".")[0]
    if _defines(origin, name) is False:
        return f"cannot find {ref!r}: {where!r} has no attribute {name!r}"
    return None


def _defines(origin: str, name: str) -> bool | None:
    """Whether the Python source at `origin` binds `name` at module level (read, not run);
    None when that cannot be told (no source, `import *`, a module `__getattr__`)."""
    if not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None  # importing it says what is wrong, when asked to (--import)
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(a.name == "*" for a in node.names):
                return None
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, field, ()))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)
    if "__getattr__" in names:
        return None
    return name in names


def _find_top(name: str, extra: Sequence[str]) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        if finder is PathFinder:
            spec = PathFinder.find_spec(name, [*sys.path, *extra])
        else:
            spec = find(name, None)
        if spec is not None:
            return spec  # type: ignore[no-any-return,unused-ignore]
    return None


def _same_dir(entry: str, folder: str) -> bool:
    try:
        return Path(entry or ".").resolve() == Path(folder).resolve()
    except OSError:
        return False


# trust ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrustedTargets:
    """Which stored targets this process loads: the `pinned` ones if any, else those inside
    `root` (the project directory) and installed modules."""

    root: Path
    pinned: tuple[str, ...] = ()

    @classmethod
    def load(cls, targets: Sequence[str] = ()) -> TrustedTargets:
        """`targets` (from `--target`) with `PODIUM_TARGETS` and the project's
        `[tool.podium] targets`, relative paths against the working directory (the
        pyproject's folder for its own list)."""
        cwd = Path.cwd()
        root = project_root(cwd)
        env = [t.strip() for t in os.environ.get("PODIUM_TARGETS", "").split(",")]
        pinned = [normalise(t, cwd) for t in [*targets, *env] if t]
        pinned += [normalise(t, root) for t in _configured(root)]
        return cls(root, tuple(dict.fromkeys(pinned)))

    def refusal(self, ref: str) -> str | None:
        """Why `ref`, read from a store, may not be loaded here; None if it may."""
        if self.pinned:
            if normalise(ref) in self.pinned:
                return None
            return f"target {ref!r} is not one of the trusted targets ({', '.join(self.pinned)})"
        if ref.endswith((".yaml", ".yml")):
            return self._outside(ref, Path(ref))
        where, _ = _split(ref)
        if where.endswith(".py"):
            return self._outside(ref, Path(where))
        if locate_module(where, [os.getcwd(), str(self.root)]) is None:
            return f"target {ref!r}: no module {where!r} is installed or in {self.root}"
        return None

    def _outside(self, ref: str, path: Path) -> str | None:
        if path.resolve().is_relative_to(self.root):
            return None
        return f"target {ref!r} is outside the project directory {self.root}"

    def agent_for(self, ref: str | None, agent_name: str, run_id: str) -> Any:
        """The agent that drives run `run_id` (started as `agent_name`, stored target `ref`),
        loaded only if trusted; `TargetError` before importing anything otherwise."""
        if self.pinned and (ref is None or normalise(ref) not in self.pinned):
            return self._pinned_named(ref, agent_name, run_id)
        if ref is None:
            raise TargetError(
                f"run {run_id} has no stored target: pass --target module:object (or the "
                "agent: rt.resume(run_id, agent))"
            )
        why = self.refusal(ref)
        if why is not None:
            raise TargetError(
                f"run {run_id}: {why}, so podium does not load it (a store may not choose "
                f"the code that runs); if you trust it: {_HOW_TO_TRUST.format(ref=ref)}"
            )
        return load_target(ref)

    def _pinned_named(self, ref: str | None, agent_name: str, run_id: str) -> Any:
        for pinned in self.pinned:
            agent = load_target(pinned)
            if agent.name == agent_name:
                return agent
        stored = "no stored target" if ref is None else f"stored target {ref!r}"
        raise TargetError(
            f"run {run_id} ({stored}) is agent {agent_name!r}, and no trusted target is: "
            f"the trusted ones are {', '.join(self.pinned)}"
        )

    def resumable(self, ref: str | None) -> str | None:
        """Why a run stored with `ref` could not be resumed by another process here, and
        what to do about it; None if it can."""
        if ref is None:
            return (
                "it stores no target, so only this process can resume it (rt.resume(run_id, "
                "agent)); define the agent at module level in an importable module, or pass "
                "target='module:object'"
            )
        try:
            why = self.refusal(ref)
        except TargetError as e:
            why = str(e)
        if why is None:
            return None
        return f"{why}: resume it with {_HOW_TO_TRUST.format(ref=ref)}"


def _configured(root: Path) -> list[str]:
    """`targets` under `[tool.podium]` in the project's pyproject.toml, if any."""
    file = root / "pyproject.toml"
    if not file.is_file():
        return []
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise TargetError(f"cannot read {file}: {e}") from None
    targets = data.get("tool", {}).get("podium", {}).get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise TargetError(f"{file}: [tool.podium] targets must be a list of strings")
    return targets


# finding an agent's target ----------------------------------------------------------------
_found: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def find_target(agent: Any) -> str | None:
    """How another process imports `agent` again: `module:name` where `name` is a
    module-level name bound to this very object (checked by identity), or None. For
    `python -m pkg.mod` the `__main__` module is `pkg.mod`; a plain script is not importable
    by name, so an agent defined only there has no target."""
    own = getattr(agent, "target", None)
    if isinstance(own, str) and own:
        return own
    try:
        return _found[agent]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable
        pass
    target = next(
        (_as_target(name, module, attr) for name, module, attr in _bound(agent)),
        None,
    )
    with contextlib.suppress(TypeError):
        _found[agent] = target
    return target


def _bound(agent: Any) -> Iterator[tuple[str, ModuleType, str]]:
    """Every (module name, module, attribute) of the user's modules that is `agent`."""
    for name, module in list(sys.modules.items()):
        if not _users(name, module) or _as_target(name, module, "x") is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is agent and not attr.startswith("_"):
                yield name, module, attr


def _users(name: str, module: Any) -> bool:
    """Whether `module` may hold a user's agent: not the standard library, not podium, not
    an installed package."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top == "podium" or not isinstance(module, ModuleType):
        return name == "__main__"
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and "site-packages" not in file and "dist-packages" not in file


def _as_target(name: str, module: Any, attr: str) -> str | None:
    if name == "__main__":
        spec = getattr(module, "__spec__", None)
        real = getattr(spec, "name", None)
        return None if not real or real == "__main__" else f"{real}:{attr}"
    if name.startswith(_FILE_PREFIX):
        file = getattr(module, "__file__", None)
        return None if not file else f"{file}:{attr}"
    return f"{name}:{attr}"
