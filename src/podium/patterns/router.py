"""`Router`: one classification step picks which agent handles the input.

    router = Router(
        "support",
        {"billing": billing, "tech": tech},
        classifier=[Rule("billing", keywords=["invoice", "refund"]), Rule("tech", when=is_bug)],
        threshold=0.6,
        fallback=generalist,
    )

The classifier is one of three things:

- a Python function `(input[, ctx]) -> str | (str, confidence) | RouteDecision | None`,
  sync or async (`None` means "no idea": it goes the low-confidence way);
- a list of `Rule`s, tried in order, the first match wins;
- an agent whose output is a `RouteDecision`: usually a model, see `Router.llm`.

Classifying is its own step through the door (`/<router>/<router>.classify#0` for a function
or rules), so its decision is journaled: a resumed run replays the decision instead of asking
the classifier (or the model) again. Every decision is recorded as a `route.decision` event
with the route, confidence, threshold and outcome (`routed`, `fallback` or `triage`).

A decision below `threshold`, or naming a route that does not exist (a model may invent
one), goes to `fallback` if there is one. Without a fallback it goes to triage: a
`HumanAgent` (`<router>.triage`) asks a person to pick a route, with the input, the candidate
routes and the decision as context, and the run waits (status `waiting`). The person answers
(`podium answer RUN billing`, or `Decision.answer({"route": ..., "reason": ...})`); a pick of
no route is refused before anything is recorded, and a rejection fails the run. Resuming
replays the pick and the input goes to that route.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.human import HumanAgent
from podium.errors import UsageError
from podium.models.base import ModelSettings
from podium.models.base import closed_schema as _closed_schema
from podium.patterns._classify import classifier_agent
from podium.patterns._common import named_agents, shared_type
from podium.runtime.serde import to_plain

if TYPE_CHECKING:
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

Outcome = Literal["routed", "fallback", "triage"]


class RouteDecision(BaseModel):
    """Which route to take, how sure the classifier is (0 to 1), and why."""

    model_config = ConfigDict(json_schema_extra=_closed_schema)

    route: str
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """Route to `route` when `when(input)` is true and/or the input's text holds one of
    `keywords` (case-insensitive, whole words or phrases: `refund` does not match `refunds`).
    With both given, both must hold. The decision carries `confidence`."""

    route: str
    when: Callable[[Any], bool | Awaitable[bool]] | None = None
    keywords: Sequence[str] = ()
    confidence: float = 1.0
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.keywords, str):
            object.__setattr__(self, "keywords", (self.keywords,))
        words = tuple(k.strip().lower() for k in self.keywords if k.strip())
        object.__setattr__(self, "keywords", words)
        if self.when is None and not words:
            raise UsageError(f"Rule for route {self.route!r} needs `when=` or `keywords=`")
        if self.when is not None and not callable(self.when):
            raise UsageError(f"Rule for route {self.route!r}: `when` must be callable")
        if not 0.0 <= self.confidence <= 1.0:
            raise UsageError(
                f"Rule for route {self.route!r}: confidence must be in [0, 1], "
                f"got {self.confidence}"
            )
        if words:
            alternatives = "|".join(re.escape(w) for w in words)
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
            object.__setattr__(self, "_pattern", pattern)

    async def matches(self, input: Any, text: str) -> str | None:
        """What matched (for the decision's reason), or None."""
        found = ""
        if self._pattern is not None:
            m = self._pattern.search(text)
            if m is None:
                return None
            found = f"keyword {m.group(0).lower()!r}"
        if self.when is not None:
            ok = self.when(input)
            if inspect.isawaitable(ok):
                ok = await ok
            if not ok:
                return None
            found = f"{found} and condition" if found else "condition"
        return found


Classifier = Callable[..., Any] | Sequence[Rule] | Any


def _route_shorthand(value: Any) -> Any:
    """What a classifier may answer besides a `RouteDecision`: a route name (certain), a
    `(route, confidence)` pair, or None (no idea)."""
    if value is None:
        return {"route": "", "confidence": 0.0, "reason": "classifier gave no route"}
    if isinstance(value, str):
        return {"route": value, "confidence": 1.0}
    if isinstance(value, tuple | list) and len(value) == 2:
        return {"route": value[0], "confidence": value[1]}
    if isinstance(value, BaseModel) and not isinstance(value, RouteDecision):
        return value.model_dump()
    if isinstance(value, Mapping | RouteDecision):
        return value
    raise ValueError(
        "a classifier must return a route name, (route, confidence) or a RouteDecision"
    )


RouteAnswer = Annotated[RouteDecision, BeforeValidator(_route_shorthand)]
"""The answer a Router expects from its classifier, shorthand included."""


class Router(AgentBase[Any, Any]):
    """Sends the input to exactly one of several agents, chosen by a classifier.

    `routes` is a dict of route name to agent, or a list of agents routed by their names.
    The output is the chosen agent's output; `input_type` and `output_type` are the types
    the routes (fallback included) all share, or `Any` when they differ.
    """

    def __init__(
        self,
        name: str,
        routes: Mapping[str, Any] | Sequence[Any],
        *,
        classifier: Classifier,
        threshold: float = 0.0,
        fallback: Any = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        self.routes: dict[str, Any] = named_agents("Router", name, routes, "route")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise UsageError(f"Router {name!r}: threshold must be a number, got {threshold!r}")
        if not 0.0 <= threshold <= 1.0:
            raise UsageError(f"Router {name!r}: threshold must be in [0, 1], got {threshold}")
        if fallback is not None and not _is_agent(fallback):
            raise UsageError(f"Router {name!r}: fallback {fallback!r} is not an agent")
        self.threshold = float(threshold)
        self.fallback = fallback
        self.classifier = classifier_agent(
            "Router",
            name,
            classifier,
            self.routes,
            "route",
            RouteAnswer,
            _route_by_rule,
        )
        self._triage = HumanAgent(
            f"{name}.triage",
            question=_triage_question,
            answer_type=_pick_type(list(self.routes)),
            description="a person picks the route",
        )
        agents = [*self.routes.values(), *([fallback] if fallback is not None else [])]
        self._setup(
            name,
            input_type=shared_type(agents, "input_type"),
            output_type=shared_type(agents, "output_type"),
            retry=retry,
            timeout=timeout,
            description=description,
        )
        self.check_input = None  # the classifier and the chosen route check it when called

    @classmethod
    def llm(
        cls,
        name: str,
        routes: Mapping[str, Any] | Sequence[Any],
        *,
        model: Any,
        instructions: str | None = None,
        settings: ModelSettings | None = None,
        threshold: float = 0.0,
        fallback: Any = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> Router:
        """A router whose classifier is a model: an `LLMAgent` named `<name>.classify` told
        the routes and their descriptions, answering with a `RouteDecision`. `instructions`
        replace the opening paragraph; the list of routes is always appended. `settings` go
        with the classifier's requests, as for `LLMAgent`."""
        from podium.agents.llm import LLMAgent

        table = named_agents("Router", name, routes, "route")
        classifier = LLMAgent(
            f"{name}.classify",
            model=model,
            instructions=_llm_instructions(table, instructions),
            output_type=RouteDecision,
            settings=settings,
        )
        return cls(
            name,
            table,
            classifier=classifier,
            threshold=threshold,
            fallback=fallback,
            retry=retry,
            timeout=timeout,
            description=description,
        )

    async def run(self, input: Any, ctx: RunContext) -> Any:
        decision: RouteDecision = await ctx.call(self.classifier, input, expect=RouteAnswer)
        outcome, note = self._judge(decision)
        target = self.routes.get(decision.route) if outcome == "routed" else self.fallback
        self._record(ctx, decision, outcome, note, target)
        if outcome == "triage":
            decision = await self._ask_person(input, decision, note, ctx)
            target = self.routes[decision.route]
            self._record(ctx, decision, "routed", "chosen in triage", target)
        return await ctx.call(target, input)

    def _judge(self, decision: RouteDecision) -> tuple[Outcome, str]:
        """Routed, or where a doubtful decision goes, and why it was doubtful."""
        if decision.route not in self.routes:
            note = f"unknown route {decision.route!r}" if decision.route else "no route chosen"
        elif decision.confidence < self.threshold:
            note = f"confidence {decision.confidence:g} below threshold {self.threshold:g}"
        else:
            return "routed", ""
        return ("fallback" if self.fallback is not None else "triage"), note

    def _record(
        self, ctx: RunContext, d: RouteDecision, outcome: Outcome, note: str, target: Any
    ) -> None:
        ctx.emit(
            "route.decision",
            route=d.route,
            confidence=d.confidence,
            threshold=self.threshold,
            outcome=outcome,
            target=None if target is None else target.name,
            reason=d.reason,
            note=note,
        )

    async def _ask_person(
        self, input: Any, decision: RouteDecision, note: str, ctx: RunContext
    ) -> RouteDecision:
        """Triage: a person picks the route (a `HumanAgent`: the run waits for
        `podium answer RUN <route>`); a pick of no route is refused before it is recorded."""
        payload = {
            "input": to_plain(input),
            "candidates": list(self.routes),
            "decision": decision.model_dump(),
            "note": note,
        }
        picked: RouteDecision = await ctx.call(self._triage, payload)
        return picked


def _triage_question(payload: dict[str, Any]) -> str:
    return f"triage: {payload['note']}"


def _person_pick(value: Any) -> Any:
    """A person's pick is certain unless they say otherwise: a route name, or a dict with
    `route` (and `reason`)."""
    if isinstance(value, str):
        return {"route": value, "confidence": 1.0, "reason": "chosen in triage"}
    if isinstance(value, Mapping):
        return {"confidence": 1.0, **value}
    return value


def _pick_type(routes: list[str]) -> Any:
    """What a triage answer must be: a pick of one of `routes`."""

    def known(pick: RouteDecision) -> RouteDecision:
        if pick.route not in routes:
            raise ValueError(f"unknown route {pick.route!r}; routes are {routes}")
        return pick

    return Annotated[RouteDecision, BeforeValidator(_person_pick), AfterValidator(known)]


def _route_by_rule(rule: Rule | None, index: int, found: str) -> RouteDecision:
    if rule is None:
        return RouteDecision(route="", confidence=0.0, reason="no rule matched")
    return RouteDecision(
        route=rule.route, confidence=rule.confidence, reason=f"rule {index}: {found}"
    )


_DEFAULT_INSTRUCTIONS = (
    "You are a router. Read the request and pick the one route below that should handle it. "
    "Answer with the route's exact name, your confidence from 0 to 1 that it is the right "
    "route, and a one-sentence reason. If no route fits, pick the closest one and give a low "
    "confidence."
)


def _llm_instructions(routes: Mapping[str, Any], instructions: str | None) -> str:
    lines = [instructions or _DEFAULT_INSTRUCTIONS, "", "Routes:"]
    for route, target in routes.items():
        about = " ".join((getattr(target, "description", "") or "").split("\n\n")[0].split())
        lines.append(f"- {route}: {about}" if about else f"- {route}")
    return "\n".join(lines)
