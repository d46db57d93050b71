"""The door: every hop from one agent to another, and every tool and model use, goes through
one chain of small middlewares built once per runtime.

    journal lookup (replay)  ->  events  ->  [trace]  ->  [privacy]  ->  [policy]
      ->  journal record  ->  [contain]  ->  cache  ->  budget  ->  fallback  ->  breaker
      ->  retry  ->  timeout  ->  execute

The contain slot sits inside the journal record: what it notes of a step (the untrusted
content a step read, its guardrails' verdicts) is written before the step's row completes,
so a crash never keeps the row without it (see `podium.runtime.taint`). The privacy slot
comes first: the target gets its input as it may see it (tokens in place of
the personal data it is not allowed), so the policy checks the arguments the tool will get.
The policy slot sits before the journal record: a refused call writes no step row (its
`policy.denied` event is the record), and a call that waits for a person's approval waits
before an effect's `started` row is durable (see `podium.runtime.guard`). The cache sits
before the budget: a hit spends nothing, so an exhausted budget does not
refuse it. Bracketed slots are empty until a layer fills them (`Runtime(middleware={...})`).
The policy, budget and cache slots are entered only by runs that need them (see `Doors`);
so is the trace slot (OpenTelemetry spans, `podium.observability.otel`), by runs of a runtime
with tracing. It sits right inside events: a replayed step gets no span (it ran, and was
traced, before), and every layer below runs inside the step's span. A
middleware is `async def mw(call, next) -> output`; it may look at and change the `Call`,
call `next(call)` zero or more times, and must re-raise what it does not handle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from podium.core.records import CallKind
from podium.core.serde import Validator

if TYPE_CHECKING:
    from podium.core.records import Usage
    from podium.runtime.context import RunState
    from podium.runtime.policies import Retry

Handler = Callable[["Call"], Awaitable[Any]]
Middleware = Callable[["Call", Handler], Awaitable[Any]]

# The named slots, in chain order. Built-ins fill some; the rest wait for later layers.
SLOTS: tuple[str, ...] = (
    "events",
    "trace",
    "privacy",
    "policy",
    "journal",
    "contain",
    "cache",
    "budget",
    "fallback",
    "breaker",
    "retry",
    "timeout",
)


class Call:
    """One hop through the door. Created per call; middlewares read and annotate it."""

    __slots__ = (
        "agent",
        "attempt",
        "check_output",
        "input",
        "key",
        "kind",
        "name",
        "parent",
        "retry",
        "run",
        "target",
        "timeout",
        "usage",
    )

    def __init__(
        self,
        run: RunState,
        parent: str,
        target: Any,
        kind: CallKind,
        key: str,
        input: Any,
        retry: Retry | None,
        timeout: float | None,
        agent: str = "",
    ) -> None:
        self.run = run
        self.parent = parent
        self.agent = agent  # the agent whose step makes this call (its policy grants apply)
        self.target = target
        self.name: str = target.name
        self.kind = kind  # what the target is: an agent, a tool, a model, ...
        self.key = key
        self.input = input
        self.attempt = 1
        self.retry = retry
        self.timeout = timeout
        self.usage: Usage | None = None
        self.check_output: Validator | None = getattr(target, "check_output", None)


def compose(middlewares: Sequence[Middleware], terminal: Handler) -> Handler:
    """Fold middlewares around the terminal handler, first in the list outermost."""
    handler = terminal
    for mw in reversed(middlewares):
        handler = partial(mw, nxt=handler)  # type: ignore[call-arg]
    return handler


def build_chain(
    builtins: Mapping[str, Middleware], extra: Mapping[str, Middleware] | None = None
) -> list[Middleware]:
    """The ordered middleware list: each slot's middleware, the caller's replacing a built-in."""
    extra = extra or {}
    unknown = set(extra) - set(SLOTS)
    if unknown:
        from podium.errors import UsageError

        raise UsageError(f"unknown middleware slot(s) {sorted(unknown)}; slots are {SLOTS}")
    chain: list[Middleware] = []
    for slot in SLOTS:
        mw = extra.get(slot, builtins.get(slot))
        if mw is not None:
            chain.append(mw)
    return chain


class Doors:
    """The door in each variant a run may need, composed once per runtime on first use:
    with or without the journal lookup (a resumed run replays), and with or without the
    slots that only cost something to the runs that use them (`optional`: the budget, the
    cache, the policy slot's guardrails and taint rule). A run starts on the leanest
    variant and moves to a fuller one when a budget, a cached model or tool, or a guarded
    agent shows up (or the run is contained), so a run with none never enters those slots.
    A middleware the caller gave for a slot (`extra`) is always in."""

    __slots__ = ("_built", "_builtins", "_extra", "_optional", "_replay", "_terminal")

    def __init__(
        self,
        builtins: Mapping[str, Middleware],
        optional: Mapping[str, Middleware],
        extra: Mapping[str, Middleware] | None,
        terminal: Handler,
        replay: Middleware,
    ) -> None:
        build_chain(builtins, extra)  # an unknown slot fails now, not at the first run
        self._builtins = dict(builtins)
        self._optional = dict(optional)
        self._extra = dict(extra or {})
        self._terminal = terminal
        self._replay = replay
        self._built: dict[tuple[bool, frozenset[str]], Handler] = {}

    def get(self, replay: bool = False, on: frozenset[str] = frozenset()) -> Handler:
        """The door with the journal lookup when `replay`, and the optional slots in `on`."""
        key = (replay, on)
        door = self._built.get(key)
        if door is None:
            slots = {**self._builtins, **{name: self._optional[name] for name in on}}
            chain = build_chain(slots, self._extra)
            if replay:
                chain = [self._replay, *chain]
            door = self._built[key] = compose(chain, self._terminal)
        return door
