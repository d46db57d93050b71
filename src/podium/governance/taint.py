"""Prompt-injection containment, as pure rules: what is untrusted, what derives from it, and
what a side-effecting call that derives from it needs before it may run.

A *label* is the set of sources a value or a context derives from: the step keys of the
untrusted outputs it read (`/flow/reader/fetch#0`). The empty label is trusted. Content from
tools (unless declared `trusted=True`), retrieved documents, other agents' outputs and remote
peers is untrusted by default; what an agent produces after reading it carries its label.

Two derivations, both conservative, whose union decides:

- context level: an agent (a step) that read untrusted content is tainted for the rest of
  its run, and so is everything it hands on (an LLM cannot be told which part of its
  context it obeyed, so everything it writes afterwards may be the attacker's);
- value level: an argument that occurs in untrusted content derives from it, even if it
  reached the caller another way (shared state, the key-value store). Strings shorter than
  `MIN_DERIVED` characters (and small numbers) are not matched: "20" or "bob" occur in too
  much text to say anything.

A side-effecting call whose arguments derive from untrusted content is allowed only when a
plan pinned before the untrusted content was read names it (`PinnedPlan`), when a sanitiser
declassified every argument value, or when a person approves it: `check_effect` returns a
`Verdict` to `APPROVE` (escalate), never a plain denial, so useful work goes on.

This module imports only `podium.core` and `podium.errors` and the verdict; the wiring
(labels kept per run, the door's middleware, approvals) is `podium.runtime.taint`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.serde import dumps
from podium.errors import UsageError
from podium.governance.verdict import ALLOW, Action, Verdict

Label = frozenset[str]
CLEAN: Label = frozenset()
MIN_DERIVED = 4  # shortest argument text matched against untrusted content
MAX_SHOWN = 8  # sources named in a reason or an event

Constraint = Callable[[Any], bool]
"""An argument constraint in a plan: a predicate on the value (an exact value is a constant)."""


def render(value: Any) -> str:
    """The text a value is matched against: itself for a string, its JSON otherwise."""
    return value if isinstance(value, str) else dumps(value)


def leaves(value: Any) -> Iterator[Any]:
    """The scalar values inside `value` (dict values, list items, recursively)."""
    if isinstance(value, Mapping):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    elif value is not None:
        yield value


def _matchable(leaf: Any) -> str | None:
    """The text of a leaf worth matching against untrusted content, or None."""
    if isinstance(leaf, bool):
        return None
    text = leaf if isinstance(leaf, str) else str(leaf) if isinstance(leaf, int | float) else None
    if text is None:
        return None
    text = text.strip()
    return text if len(text) >= MIN_DERIVED else None


def derived_sources(value: Any, untrusted: Mapping[str, str]) -> Label:
    """Value-level derivation: the sources (keys of `untrusted`, source -> its text) whose
    text contains one of `value`'s leaves."""
    if not untrusted:
        return CLEAN
    found: set[str] = set()
    for leaf in leaves(value):
        text = _matchable(leaf)
        if text is None:
            continue
        found.update(src for src, content in untrusted.items() if text in content)
    return frozenset(found)


def declassified(value: Any) -> set[str]:
    """The canonical forms of `value`'s leaves: what a sanitiser's output vouches for."""
    return {_canonical(leaf) for leaf in leaves(value)}


def _canonical(leaf: Any) -> str:
    return dumps(leaf)


def all_declassified(args: Any, clean: set[str] | frozenset[str]) -> bool:
    """True when every leaf of `args` was vouched for by a sanitiser (and there is one)."""
    found = [_canonical(leaf) for leaf in leaves(args)]
    return bool(found) and all(f in clean for f in found)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call a pinned plan allows: the tool's name, and per argument an exact value or a
    predicate (`lambda v: v <= 100`). An argument the plan does not name must be absent;
    `times` is how often the call may be made per invocation of the agent."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)
    times: int = 1

    def matches(self, tool: str, args: Mapping[str, Any]) -> bool:
        if tool != self.tool or set(args) != set(self.args):
            return False
        for name, want in self.args.items():
            got = args[name]
            if callable(want) and not isinstance(want, type):
                try:
                    if not want(got):
                        return False
                except Exception:  # a predicate that cannot judge the value: no match
                    return False
            elif got != want:
                return False
        return True

    def describe(self) -> str:
        shown = ", ".join(
            f"{k}=<rule>" if callable(v) else f"{k}={v!r}" for k, v in self.args.items()
        )
        return f"{self.tool}({shown})"


def planned(tool: str, /, *, times: int = 1, **args: Any) -> PlannedCall:
    """A planned call: `planned("send_money", to="alice", amount=lambda a: a <= 50)`."""
    if not isinstance(tool, str) or not tool:
        raise UsageError(f"planned(...) needs a tool's name first, got {tool!r}")
    if not isinstance(times, int) or times < 1:
        raise UsageError(f"planned({tool!r}): times must be a positive int, got {times!r}")
    return PlannedCall(tool, dict(args), times)


class PinnedPlan:
    """The side-effecting calls an agent may make after it read untrusted content, fixed
    before it read any (in code, or by a planner that saw only trusted input): the CaMeL
    and plan-then-execute idea. A call that matches goes, as often as `times` allows; any
    other effect call derived from untrusted content is escalated to a person.

    `at_run=True` marks a plan made while the run runs (by a planner agent, from its
    output): it counts only if whoever handed it on had read nothing untrusted, since a
    plan written after reading the attacker's text is the attacker's plan."""

    __slots__ = ("at_run", "calls")

    def __init__(
        self, calls: Iterable[PlannedCall | Mapping[str, Any]], *, at_run: bool = False
    ) -> None:
        self.calls: tuple[PlannedCall, ...] = tuple(_as_planned(c) for c in calls)
        self.at_run = at_run

    def match(self, tool: str, args: Mapping[str, Any], used: Sequence[int] = ()) -> int | None:
        """The index of the first planned call that `tool(args)` matches and that has uses
        left (`used[i]` is how often call `i` was made already), or None."""
        for i, call in enumerate(self.calls):
            done = used[i] if i < len(used) else 0
            if done < call.times and call.matches(tool, args):
                return i
        return None

    def describe(self) -> str:
        return "; ".join(c.describe() for c in self.calls) or "nothing"

    def __repr__(self) -> str:
        return f"PinnedPlan([{self.describe()}])"


def _as_planned(value: PlannedCall | Mapping[str, Any]) -> PlannedCall:
    if isinstance(value, PlannedCall):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("tool"), str):
        args = value.get("args") or {}
        if not isinstance(args, Mapping):
            raise UsageError(f"a planned call's args must be a mapping, got {args!r}")
        return planned(value["tool"], times=int(value.get("times", 1)), **dict(args))
    raise UsageError(
        f"a pinned plan holds planned(tool, **args) calls or {{'tool': ..., 'args': {{...}}}} "
        f"dicts, got {value!r}"
    )


def check_effect(
    tool: str,
    args: Any,
    sources: Label,
    *,
    plan_ok: bool = False,
    sanitised: bool = False,
) -> Verdict:
    """The taint rule for one side-effecting call whose arguments derive from `sources`:
    allowed when clean, when a pinned plan names it, or when a sanitiser passed every
    argument; else a person must approve it."""
    if not sources:
        return ALLOW
    if plan_ok:
        return Verdict(Action.ALLOW, f"{tool}: matches the pinned plan", "taint.plan")
    if sanitised:
        return Verdict(Action.ALLOW, f"{tool}: every argument was sanitised", "taint.sanitiser")
    return Verdict(Action.APPROVE, escalation_reason(tool, sources), "taint")


def escalation_reason(tool: str, sources: Label) -> str:
    shown = sorted(sources)[:MAX_SHOWN]
    more = len(sources) - len(shown)
    where = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return (
        f"arguments derive from untrusted content ({where}): the side effect of {tool!r} "
        "runs only once a person approves it (pin it in the agent's plan=, or pass its "
        "arguments through a sanitiser, to let it run on its own)"
    )
