"""Input and output guardrails per agent, as the OpenAI Agents SDK has them.

    def no_card_numbers(value) -> GuardResult:
        return GuardResult(tripwire=bool(CARD.search(str(value))), info="card number")

    LLMAgent("support", ..., input_guardrails=[no_card_numbers], output_guardrails=[...])

A guardrail is a function of the value (the agent's input, or its output), sync or async,
that returns a `GuardResult` (or a bool: True trips it). The door runs an agent's input
guardrails before the agent and its output guardrails after it; a tripped one stops the call
with `GuardrailTrippedError` (never retried: the same value trips it again) and a
`guard.tripped` event. The journal keeps the outcome, so a resumed run does not ask again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from podium.errors import UsageError

Where = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What a guardrail found: `tripwire` stops the call; `info` says why (for the error
    and the event)."""

    tripwire: bool
    info: Any = None


class Guardrail:
    """A named check of a value. Wraps a plain function; `name` is its name by default."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[Any], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise UsageError(f"a guardrail must be a function of the value, got {fn!r}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "guardrail"))

    async def check(self, value: Any) -> GuardResult:
        result = self.fn(value)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, GuardResult):
            return result
        if isinstance(result, bool):
            return GuardResult(result)
        raise UsageError(
            f"guardrail {self.name!r} returned {result!r}: return a GuardResult(tripwire=...) "
            "or a bool (True trips it)"
        )

    def __repr__(self) -> str:
        return f"Guardrail({self.name!r})"


def guardrail(fn: Callable[[Any], Any] | None = None, /, *, name: str | None = None) -> Any:
    """`@guardrail` or `@guardrail(name=...)`: a function as a named `Guardrail`."""

    def wrap(f: Callable[[Any], Any]) -> Guardrail:
        return Guardrail(f, name)

    return wrap if fn is None else wrap(fn)


def as_guardrails(items: Sequence[Any] | None, owner: str, where: Where) -> tuple[Guardrail, ...]:
    """An agent's guardrails, checked once at construction."""
    if not items:
        return ()
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise UsageError(f"{owner}: {where}_guardrails must be a list of functions")
    return tuple(g if isinstance(g, Guardrail) else Guardrail(g) for g in items)
