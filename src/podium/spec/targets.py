"""Load an agent from a target string: `package.module:object`, `path/to/file.py:object`,
or a YAML workflow file (`flow.yaml`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from podium.errors import TargetError


def load_target(ref: str) -> Any:
    """The agent a target names; `TargetError` (a one-line reason) if it cannot be had."""
    if ref.endswith((".yaml", ".yml")):
        from podium.spec.loader import load_yaml

        return load_yaml(ref)
    if ":" not in ref:
        raise TargetError(
            f"target {ref!r} is neither `module:object`, `file.py:object` nor a .yaml file"
        )
    where, _, attr = ref.rpartition(":")
    module = _import_file(where) if where.endswith(".py") else _import_module(where)
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


def _import_module(name: str) -> Any:
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise TargetError(f"cannot import module {name!r}: {e}") from None


def _import_file(path: str) -> Any:
    file = Path(path)
    if not file.is_file():
        raise TargetError(f"no such file: {path}")
    name = f"podium_target_{abs(hash(file.resolve()))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
