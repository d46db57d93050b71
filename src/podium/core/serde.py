"""Values crossing the door: checked against declared types once, and turned into JSON for the
journal and back.

A validator is built once per agent from its annotations. Values that already are the declared
class pass with an `isinstance` check and are not re-validated; everything else goes through a
pydantic `TypeAdapter`.

Two JSON forms: `dumps` is text for people and models (anything goes; what has no JSON form is
shown as its `repr`), `store_dumps` is what a store keeps, so it refuses what it could not give
back (`Unstorable`) instead of keeping a `repr` that replays as a string. Floats that JSON has
no number for (NaN, Infinity) are kept as `{"$podium:float": "nan"}`, which `loads` turns back
into the float, so they survive every store (Postgres' `json` type rejects the bare tokens).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, is_typeddict

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

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
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing":
            # The "input" of a missing field is the whole object: saying it once per missing
            # field buries the one line this is meant to be.
            parts.append(f"{where}: {msg}")
            continue
        shown = repr(err.get("input"))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        parts.append(f"{where}: {msg} (got {shown})")
    return "; ".join(parts)


FLOAT_TAG = "$podium:float"
_TAG_TEXT = f'"{FLOAT_TAG}"'


class Unstorable(ValueError):
    """A value that has no JSON form a store could give back."""


def dumps(value: Any) -> str:
    """JSON text to show a value to people or models; what has no JSON form shows as its
    `repr`. Not for stores: see `store_dumps`."""
    return to_json(value, fallback=repr).decode()


def store_dumps(value: Any) -> str:
    """The JSON text a store keeps for a value; `Unstorable` if it has none (an object of an
    unknown class, a string that is not valid Unicode)."""
    try:
        out = to_json(value)
    except PydanticSerializationError as e:
        raise Unstorable(_unstorable_reason(value, e)) from None
    text = out.decode()
    if "NaN" in text or "Infinity" in text:  # bare tokens, or just text: look closer
        return _tag_non_finite(text)
    return text


def text_bytes(text: str | None) -> int:
    """The UTF-8 size of a store's JSON text: its length when it is ASCII (which CPython
    knows without looking), else the length of its encoding."""
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode())


def check_storable(value: Any) -> int:
    """Raise `Unstorable` if a store could not keep `value` (for stores that keep objects);
    else its size as JSON in bytes (a string's without the escapes JSON would add)."""
    kind = type(value)
    if kind is str:
        if value.isascii():
            return len(value) + 2
        try:
            return len(value.encode()) + 2
        except UnicodeEncodeError as e:
            raise Unstorable(f"a str that is not valid Unicode ({e})") from None
    if value is None or kind is int or kind is float or kind is bool:
        return 0 if value is None else len(repr(value))
    try:
        return len(to_json(value))
    except PydanticSerializationError as e:
        raise Unstorable(_unstorable_reason(value, e)) from None


def unstorable_output(agent: str, step: str, error: Unstorable) -> OutputTypeError:
    """The error of a step whose output no store could keep: names agent, step and type."""
    return OutputTypeError(
        agent,
        step,
        f"cannot be journaled: {error}; return JSON types, pydantic models or dataclasses",
    )


def _unstorable_reason(value: Any, error: Exception) -> str:
    detail = str(error).removeprefix("Error serializing to JSON: ")
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name} with no JSON form ({detail})"


def _tag_non_finite(out: str) -> str:
    """Rewrite NaN and infinities as tagged objects (the rare path: only when the text holds
    those words, maybe just inside strings)."""
    changed = False

    def walk(v: Any) -> Any:
        nonlocal changed
        if isinstance(v, float) and not math.isfinite(v):
            changed = True
            return {FLOAT_TAG: repr(v)}  # 'nan', 'inf', '-inf'
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    tagged = walk(json.loads(out))
    if not changed:
        return out
    return json.dumps(tagged, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and FLOAT_TAG in obj:
        return float(obj[FLOAT_TAG])
    return obj


def to_plain(value: Any) -> Any:
    """The JSON-compatible form of a value (dicts, lists, strings, numbers)."""
    return to_jsonable_python(value, fallback=repr)


def loads(text: str | bytes | None) -> Any:
    """A value from `store_dumps` text, tagged floats made floats again."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    if _TAG_TEXT in text:
        return json.loads(text, object_hook=_untag)
    return json.loads(text)


def clean_text(text: str | None) -> str | None:
    """An error message as every store can keep it: NUL and lone surrogates (which Postgres
    text and UTF-8 cannot hold) written as escapes."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text
