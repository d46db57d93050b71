"""Classifiers as agents, shared by the patterns that pick (Router, Adaptive): a function or a
list of rules becomes a step of its own, so its answer is journaled and replayed on resume."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from podium.agents.base import AgentBase, is_agent
from podium.agents.function import FunctionAgent
from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.patterns.router import Rule
    from podium.runtime.context import RunContext

# (the rule that matched, or None; its index; what matched) -> the pattern's decision type
Decide = Callable[["Rule | None", int, str], Any]


class FunctionClassifier(AgentBase[Any, Any]):
    """A classifier function as an agent whose output is the pattern's decision type (its
    shorthand answers, a name or a pair, read by that type at the door)."""

    def __init__(self, name: str, fn: Callable[..., Any], output_type: Any, what: str) -> None:
        self._fn = FunctionAgent(fn, name=name)
        self._setup(name, output_type=output_type, description=what)
        self.input_type = self._fn.input_type
        self.check_input = self._fn.check_input

    async def run(self, input: Any, ctx: RunContext) -> Any:
        return await self._fn.run(input, ctx)


class RulesClassifier(AgentBase[Any, Any]):
    """Rules tried in order; the first match decides (`decide(rule, index, found)`), and no
    match is `decide(None, -1, "")`."""

    def __init__(
        self, name: str, rules: Sequence[Rule], output_type: Any, decide: Decide, what: str
    ) -> None:
        self.rules = tuple(rules)
        self._decide = decide
        self._setup(name, output_type=output_type, description=what)

    async def run(self, input: Any, ctx: RunContext) -> Any:
        text = text_of(input)
        for i, rule in enumerate(self.rules):
            found = await rule.matches(input, text)
            if found is not None:
                return self._decide(rule, i, found)
        return self._decide(None, -1, "")


def classifier_agent(
    kind: str,
    name: str,
    classifier: Any,
    targets: Mapping[str, Any],
    role: str,
    output_type: Any,
    decide: Decide,
) -> Any:
    """The step that classifies for a pattern: an agent as given, or a function or rules
    (checked against the pattern's `targets`) wrapped in one named `<name>.classify`."""
    from podium.patterns.router import Rule

    if is_agent(classifier):
        return classifier
    step = f"{name}.classify"
    if isinstance(classifier, Rule):
        classifier = [classifier]
    if isinstance(classifier, Sequence) and not isinstance(classifier, str):
        rules = list(classifier)
        if not rules or not all(isinstance(r, Rule) for r in rules):
            raise UsageError(f"{kind} {name!r}: a classifier list must hold at least one Rule")
        for i, rule in enumerate(rules):
            if rule.route not in targets:
                raise UsageError(
                    f"{kind} {name!r}: rule {i} names {role} {rule.route!r}, "
                    f"which is not one of {list(targets)}"
                )
        return RulesClassifier(step, rules, output_type, decide, "classifies by rules")
    if callable(classifier):
        return FunctionClassifier(step, classifier, output_type, "classifies")
    raise UsageError(
        f"{kind} {name!r}: classifier must be a function, a list of Rules or an agent, "
        f"got {classifier!r}"
    )


def text_of(value: Any) -> str:
    """The words in a value, for keyword rules: a string as is; for dicts, lists and models,
    every string and number inside (values, not keys), one per line."""
    from podium.core.serde import to_plain

    if isinstance(value, str):
        return value
    parts: list[str] = []
    stack = [to_plain(value)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif item is not None:
            parts.append(str(item))
    return "\n".join(parts)
