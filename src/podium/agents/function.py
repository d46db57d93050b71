"""Plain Python as agents: `FunctionAgent` and the `@agent` decorator.

    @agent
    async def check_stock(order: Order, ctx: RunContext) -> Stock: ...

The first parameter is the input, its annotation the input type; a parameter annotated
`RunContext` (or named `ctx`) receives the context; the return annotation is the output type.
A sync function runs inline on the event loop (keep it quick) unless `thread=True`.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, overload

from podium.agents.base import AgentBase
from podium.agents.kinds import Builder, Loc, PythonRef, register
from podium.errors import UsageError
from podium.governance.privacy import check_sees

if TYPE_CHECKING:
    from podium.runtime.breaker import Breaker
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to no types
        return {}


def _is_ctx(param: inspect.Parameter, hint: Any) -> bool:
    from podium.runtime.context import RunContext

    if hint is RunContext or param.name == "ctx":
        return True
    return isinstance(param.annotation, str) and param.annotation.split(".")[-1] == "RunContext"


class FunctionAgent(AgentBase[Any, Any]):
    """An agent backed by a Python function, sync or async."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str | None = None,
        thread: bool = False,
        fallbacks: Sequence[Any] = (),
        breaker: Breaker | None = None,
        budget: Budget | None = None,
        roles: Sequence[str] = (),
        sees_pii: Iterable[str] = (),
        input_guardrails: Sequence[Any] = (),
        output_guardrails: Sequence[Any] = (),
    ) -> None:
        if not callable(fn):
            raise UsageError(f"FunctionAgent needs a callable, got {fn!r}")
        self.fn = fn
        self.thread = thread
        self.is_async = inspect.iscoroutinefunction(fn)
        sig = inspect.signature(fn)
        hints = _hints(fn)
        self.ctx_param: str | None = None
        self.input_param: str | None = None
        self.ctx_first = False
        input_type: Any = Any
        for param in sig.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.kind == param.KEYWORD_ONLY and param.default is param.empty:
                raise UsageError(
                    f"agent function {fn.__name__!r}: keyword-only parameter {param.name!r} "
                    "needs a default; an agent takes one input and optionally ctx"
                )
            if param.kind == param.KEYWORD_ONLY:
                continue
            hint = hints.get(param.name, Any)
            if self.ctx_param is None and _is_ctx(param, hint):
                self.ctx_param = param.name
                self.ctx_first = self.input_param is None
            elif self.input_param is None:
                self.input_param = param.name
                input_type = hint
            elif param.default is param.empty:
                raise UsageError(
                    f"agent function {fn.__name__!r} has an extra required parameter "
                    f"{param.name!r}: an agent takes one input and optionally ctx"
                )
        self._setup(
            name or str(getattr(fn, "__name__", "agent")),
            input_type=input_type,
            output_type=hints.get("return", Any),
            retry=retry,
            timeout=timeout,
            description=description or inspect.getdoc(fn) or "",
            fallbacks=fallbacks,
            breaker=breaker,
            budget=budget,
            roles=roles,
        )
        # The kinds of PII this agent may see raw where the runtime has `pii=Privacy(...)`.
        self.sees_pii = check_sees(sees_pii, f"agent {self.name!r}")
        self._guardrails(input_guardrails, output_guardrails)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    async def run(self, input: Any, ctx: RunContext) -> Any:
        args = self._args(input, ctx)
        if self.is_async:
            return await self.fn(*args)
        if self.thread:
            return await asyncio.to_thread(self.fn, *args)
        return self.fn(*args)

    def _args(self, input: Any, ctx: RunContext) -> tuple[Any, ...]:
        """Positional arguments in the order the function declares them."""
        if self.input_param is None:
            return () if self.ctx_param is None else (ctx,)
        if self.ctx_param is None:
            return (input,)
        return (ctx, input) if self.ctx_first else (input, ctx)

    @property
    def target(self) -> str | None:
        """`module:name` when importing that name gives back this very agent (a module-level
        `@agent` function), so another process can resume its runs; None otherwise. Under
        `python -m pkg.mod` the `__main__` module is `pkg.mod`."""
        name = getattr(self.fn, "__module__", None)
        qualname = getattr(self.fn, "__qualname__", "")
        module = sys.modules.get(name) if name else None
        if module is None or "<" in qualname:
            return None
        obj: Any = module
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is not self:
            return None
        if name == "__main__":
            name = getattr(getattr(module, "__spec__", None), "name", None)
            if not name or name == "__main__":
                return None  # a script run as a file: not importable by name
        return f"{name}:{qualname}"


@overload
def agent(fn: Callable[..., Any], /) -> FunctionAgent: ...


@overload
def agent(
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    description: str | None = None,
    thread: bool = False,
    fallbacks: Sequence[Any] = (),
    breaker: Breaker | None = None,
    budget: Budget | None = None,
    roles: Sequence[str] = (),
    sees_pii: Iterable[str] = (),
    input_guardrails: Sequence[Any] = (),
    output_guardrails: Sequence[Any] = (),
) -> Callable[[Callable[..., Any]], FunctionAgent]: ...


def agent(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    description: str | None = None,
    thread: bool = False,
    fallbacks: Sequence[Any] = (),
    breaker: Breaker | None = None,
    budget: Budget | None = None,
    roles: Sequence[str] = (),
    sees_pii: Iterable[str] = (),
    input_guardrails: Sequence[Any] = (),
    output_guardrails: Sequence[Any] = (),
) -> FunctionAgent | Callable[[Callable[..., Any]], FunctionAgent]:
    """Turn a function into an agent named after it: `@agent` or `@agent(timeout=5)`.
    `budget` covers every call the function makes through its context, and below; `roles`
    are the roles whose grants a policy gives its tool calls.
    `sees_pii` are the kinds of personal data it may see raw (`{"card"}`) when the runtime
    has `pii=Privacy(...)`; it gets tokens for the others. `input_guardrails` /
    `output_guardrails` check its input and output at the door."""

    def wrap(f: Callable[..., Any]) -> FunctionAgent:
        return FunctionAgent(
            f,
            name=name,
            retry=retry,
            timeout=timeout,
            description=description,
            thread=thread,
            fallbacks=fallbacks,
            breaker=breaker,
            budget=budget,
            roles=roles,
            sees_pii=sees_pii,
            input_guardrails=input_guardrails,
            output_guardrails=output_guardrails,
        )

    return wrap if fn is None else wrap(fn)


# YAML: `python: module:object` (`kind: python`, the default) ----------------------------------
def _build_python(b: Builder, spec: PythonRef, loc: Loc) -> Any:
    return b.agent(spec.python, (*loc, "python"))


register(PythonRef, _build_python, draws=FunctionAgent, agent=True)
