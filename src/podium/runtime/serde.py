"""Values crossing the door: checked against declared types once, and turned into JSON for the
journal and back.

A validator is built once per agent from its annotations. Values that already are the declared
class pass with an `isinstance` check and are not re-validated; everything else goes through a
pydantic `TypeAdapter`.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, is_typeddict

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json, to_jsonable_python

from podium.errors import OutputTypeError

Validator = Callable[[Any], Any]

_NO_CHECK: tuple[Any, ...] = (Any, object, inspect.Parameter.empty, inspect.Signature.empty, None)


def validator_for(tp: Any) -> Validator | None:
    """A function that returns the value checked (and coerced) to `tp`, or None for `Any`."""
    if any(tp is t for t in _NO_CHECK) or tp is type(None):
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(tp)
    validate = adapter.validate_python
    if isinstance(tp, type) and not is_typeddict(tp):

        def check(value: Any) -> Any:
            return value if isinstance(value, tp) else validate(value)

        return check
    return validate


def answer_as(tp: Any, value: Any, agent: str, step: str) -> Any:
    """`value` as the type a caller expects from `agent` (what `ctx.call(..., expect=tp)`
    does with an agent's output), or an `OutputTypeError` naming the agent, the step and the
    field. Objects with the right attributes are read as well as dicts; a type may state
    shorthand answers it accepts with `Annotated[T, BeforeValidator(...)]`."""
    known = _EXPECTING.get(id(tp))  # by identity: hashing an `Annotated` costs more
    check = known[1] if known is not None and known[0] is tp else _expecting(tp)
    try:
        return check(value)
    except ValidationError as e:
        what = f"is not a {type_name(tp)}: {describe_validation_error(e)}"
        raise OutputTypeError(agent, step, what) from None


_EXPECTING: dict[int, tuple[Any, Validator]] = {}


def _expecting(tp: Any) -> Validator:
    """A validator for an expected answer type, built once per type (a few hundred types
    at most are kept; each entry holds its type, so an id is never taken by another)."""
    adapter: TypeAdapter[Any] = TypeAdapter(tp)
    validate = functools.partial(adapter.validator.validate_python, from_attributes=True)
    check: Validator = validate
    if isinstance(tp, type) and not is_typeddict(tp):

        def check(value: Any) -> Any:
            return value if isinstance(value, tp) else validate(value)

    if len(_EXPECTING) >= 512:
        _EXPECTING.clear()
    _EXPECTING[id(tp)] = (tp, check)
    return check


def type_name(tp: Any) -> str:
    """A type's name for messages: `Plan`, `bool`, `list[str]`."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad field, e.g. `field 'order_id': Field required`."""
    parts = []
    for err in error.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        where = f"field {loc!r}" if loc else "value"
        got = err.get("input")
        shown = repr(got)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        parts.append(f"{where}: {err.get('msg', 'invalid')} (got {shown})")
    return "; ".join(parts)


def dumps(value: Any) -> str:
    """JSON text for a value: pydantic models, dataclasses and plain JSON types."""
    return to_json(value, fallback=repr).decode()


def to_plain(value: Any) -> Any:
    """The JSON-compatible form of a value (dicts, lists, strings, numbers)."""
    return to_jsonable_python(value, fallback=repr)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)
