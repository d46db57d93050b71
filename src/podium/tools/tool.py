"""Python functions as tools an agent (or a model) can use through the door.

    @tool
    async def refund(order_id: int, amount: float, ctx: ToolContext) -> Receipt:
        '''Refund part of an order.

        Args:
            order_id: The order to refund.
            amount: How much, in the order's currency.
        '''

    receipt = await ctx.use(refund, {"order_id": 3, "amount": 9.5})

The JSON Schema a model sees is derived once from the signature and the docstring; the same
pydantic model validates the arguments at the door. A parameter annotated `ToolContext`
receives where the call is in the run (and an idempotency key), and is not in the schema.
Whether a tool changes the world (`effect`), may safely run twice (`idempotent`) and how to
check or undo it (`reconcile`, `compensate`) are declared here for the exactly-once layer.
`cache=True` (or a `podium.Cache`) reuses a result for the same arguments; a tool with an
effect cannot be cached (a cached result would skip the change it makes).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, create_model

from podium.core.names import check_name
from podium.core.serde import Validator, validator_for
from podium.core.tools import ToolContext, ToolSpec
from podium.errors import UsageError
from podium.governance.privacy import check_sees
from podium.runtime.cache import Cache, as_cache

if TYPE_CHECKING:
    from podium.runtime.door import Call
    from podium.runtime.policies import Retry


class Tool:
    """A function behind the door contract (`check_input`, `check_output`, `invoke`)."""

    name: str
    description: str
    parameters: dict[str, Any]
    spec: ToolSpec
    check_output: Validator | None

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        effect: bool = False,
        idempotent: bool | None = None,
        reconcile: Callable[..., Any] | None = None,
        compensate: Callable[..., Any] | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        thread: bool = False,
        cache: Cache | bool | None = None,
        needs_approval: bool = False,
        sees_pii: Iterable[str] = (),
        trusted: bool = False,
        sanitiser: bool = False,
    ) -> None:
        if not callable(fn):
            raise UsageError(f"Tool needs a callable, got {fn!r}")
        self.fn = fn
        self.name = check_name(name or str(getattr(fn, "__name__", "tool")), "tool")
        if timeout is not None and timeout <= 0:
            raise UsageError(f"tool {self.name!r}: timeout must be positive, got {timeout}")
        self.cache = as_cache(cache, f"tool {self.name!r}")
        if self.cache is not None and effect:
            raise UsageError(
                f"tool {self.name!r}: a tool with an effect cannot be cached: a cached result "
                "would skip the change it makes in the world (drop cache= or effect=True)"
            )
        self.effect = effect
        if not isinstance(needs_approval, bool):
            raise UsageError(f"tool {self.name!r}: needs_approval must be True or False")
        # Every call waits for a person's approval of its exact arguments (podium.governance).
        self.needs_approval = needs_approval
        # Its output is untrusted content (prompt injection) unless declared trusted; a
        # sanitiser's output is trusted and vouches for the values in it (podium.governance.taint).
        self.trusted = trusted or sanitiser
        self.sanitiser = sanitiser
        if sanitiser and effect:
            raise UsageError(
                f"tool {self.name!r}: a sanitiser checks values and changes nothing; it cannot "
                "have an effect (drop effect=True)"
            )
        # Pure tools may run twice; a tool that changes the world may not, unless it says so.
        self.idempotent = (not effect) if idempotent is None else idempotent
        self.reconcile = reconcile
        self.compensate = compensate
        self.retry = retry
        self.timeout = timeout
        self.thread = thread
        # The kinds of PII this tool gets raw under `Runtime(pii=...)` (a token it was
        # handed is revealed at the door): a `charge_card` tool sees `{"card"}`.
        self.sees_pii = check_sees(sees_pii, f"tool {self.name!r}")
        self.is_async = inspect.iscoroutinefunction(fn)
        summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        hints = _hints(fn)
        self.ctx_param, fields = _fields(fn, self.name, hints, param_docs)
        self.args_model, self.parameters = _args_model(self.name, fields)
        self._arg_names = tuple(fields)
        self.spec = ToolSpec(self.name, self.description, self.parameters)
        self.check_output = validator_for(hints.get("return", Any))
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def check_input(self, args: Any) -> dict[str, Any]:
        """The keyword arguments, validated and coerced; raises pydantic's ValidationError
        (the door turns it into `HandoffTypeError` naming the tool and the field)."""
        model = self.args_model.model_validate({} if args is None else args)
        return {k: getattr(model, k) for k in self._arg_names}

    def cache_identity(self, args: Any) -> dict[str, Any]:
        """What decides this tool's result, for the cache's key."""
        return {"tool": self.name, "parameters": self.parameters, "args": args}

    async def invoke(self, call: Call) -> Any:
        kwargs = dict(call.input)
        if self.ctx_param is not None:
            kwargs[self.ctx_param] = ToolContext.of(call)
        if self.is_async:
            return await self.fn(**kwargs)
        if self.thread:
            return await asyncio.to_thread(self.fn, **kwargs)
        return self.fn(**kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to no types
        return {}


def _is_tool_context(param: inspect.Parameter, hint: Any) -> bool:
    if hint is ToolContext:
        return True
    ann = param.annotation
    return isinstance(ann, str) and ann.split(".")[-1] == "ToolContext"


def _fields(
    fn: Callable[..., Any], tool_name: str, hints: dict[str, Any], docs: dict[str, str]
) -> tuple[str | None, dict[str, Any]]:
    """The context parameter's name (if any) and one pydantic field per argument."""
    ctx_param: str | None = None
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise UsageError(
                f"tool {tool_name!r}: parameter {param.name!r} must be a named parameter "
                "(tools are called with keyword arguments)"
            )
        hint = hints.get(param.name, Any)
        if _is_tool_context(param, hint):
            ctx_param = param.name
            continue
        default: Any = ... if param.default is param.empty else param.default
        fields[param.name] = (hint, Field(default, description=docs.get(param.name)))
    return ctx_param, fields


def _args_model(name: str, fields: dict[str, Any]) -> tuple[type[BaseModel], dict[str, Any]]:
    """The pydantic model that validates arguments, and the JSON Schema a model is shown."""
    try:
        model: type[BaseModel] = create_model(  # type: ignore[call-overload,unused-ignore]
            f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        return model, _clean_schema(model.model_json_schema())
    except PydanticUserError as e:
        raise UsageError(
            f"tool {name!r}: its parameters cannot be described as JSON Schema "
            f"(use JSON types, pydantic models or dataclasses): {e}"
        ) from None


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the titles pydantic invents ("Order Id"); models read descriptions, not titles."""
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args):\s*$")
_NUMPY_SECTION = re.compile(r"^(Parameters|Other Parameters)\s*$")
_ANY_SECTION = re.compile(
    r"^(Returns?|Yields?|Raises|Examples?|Notes?|See Also|Attributes|Warnings?|References|"
    r"Args|Arguments|Parameters|Params|Keyword Args|Other Parameters)\s*:?\s*$"
)
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(:.*)?$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and per-parameter descriptions from a
    Google (`Args:`) or NumPy (`Parameters` + dashes) style docstring."""
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    in_sections = False
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        underlined = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        is_section = bool(_ANY_SECTION.match(stripped)) or (underlined and bool(stripped))
        in_sections = in_sections or is_section
        if _GOOGLE_SECTION.match(stripped):
            i = _parse_items(lines, i + 1, _GOOGLE_ITEM, params)
        elif underlined and _NUMPY_SECTION.match(stripped):
            i = _parse_items(lines, i + 2, _NUMPY_ITEM, params)
        elif is_section:
            i = _skip_section(lines, i + (2 if underlined else 1))
        else:
            if not in_sections:
                summary.append(stripped)
            i += 1
    text = "\n".join(summary).strip()
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parse_items(lines: list[str], i: int, item: re.Pattern[str], out: dict[str, str]) -> int:
    """Read `name: text` items (and their indented continuation lines) until the section
    ends at a line indented no deeper than the items, or at a blank line before such a line."""
    base: int | None = None
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if base is None:
            base = _indent(line)
        indent = _indent(line)
        if indent < base or (indent == base and _ANY_SECTION.match(line.strip())):
            break
        match = item.match(line.strip()) if indent == base else None
        if match:
            current = match.group(1).lstrip("*")
            rest = match.group(3) if item is _GOOGLE_ITEM else ""
            out[current] = (rest or "").strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
        i += 1
    return i


def _skip_section(lines: list[str], i: int) -> int:
    """Skip a section we do not read (Returns, Raises, ...): its indented or non-blank body."""
    while i < len(lines) and lines[i].strip() and not _ANY_SECTION.match(lines[i].strip()):
        i += 1
    return i


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    effect: bool = False,
    idempotent: bool | None = None,
    reconcile: Callable[..., Any] | None = None,
    compensate: Callable[..., Any] | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    thread: bool = False,
    cache: Cache | bool | None = None,
    needs_approval: bool = False,
    sees_pii: Iterable[str] = (),
    trusted: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    effect: bool = False,
    idempotent: bool | None = None,
    reconcile: Callable[..., Any] | None = None,
    compensate: Callable[..., Any] | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    thread: bool = False,
    cache: Cache | bool | None = None,
    needs_approval: bool = False,
    sees_pii: Iterable[str] = (),
    trusted: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a `Tool`: `@tool` or `@tool(effect=True, idempotent=False)`.

    `thread=True` runs a sync function in a worker thread (for blocking I/O); `cache=True`
    reuses a result for the same arguments (not for a tool with an effect);
    `needs_approval=True` suspends the run at every call until a person approves its exact
    arguments (`podium approve RUN`), inside an agent's tool loop too; `sees_pii` are the
    kinds of personal data it gets raw under `Runtime(pii=...)` (`{"card"}`).
    `trusted=True` says its output is not attacker-controlled (a clock, a calculator, your
    own database): reading it does not taint the agent (see `podium.governance.taint`)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(
            f,
            name=name,
            description=description,
            effect=effect,
            idempotent=idempotent,
            reconcile=reconcile,
            compensate=compensate,
            retry=retry,
            timeout=timeout,
            thread=thread,
            cache=cache,
            needs_approval=needs_approval,
            sees_pii=sees_pii,
            trusted=trusted,
        )

    return wrap if fn is None else wrap(fn)


@overload
def sanitiser(fn: Callable[..., Any], /) -> Tool: ...


@overload
def sanitiser(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def sanitiser(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """A tool that checks values derived from untrusted content and returns the ones it
    vouches for (raise to refuse): against a schema, an allowlist, a limit. Its output is
    trusted, and a side-effecting call whose every argument value came out of a sanitiser
    runs without a person's approval (see `podium.governance.taint`). It goes through the
    door like any tool, so what it vouched for is journaled and replayed."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, sanitiser=True)

    return wrap if fn is None else wrap(fn)
