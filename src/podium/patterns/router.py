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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.human import HumanAgent
from podium.agents.kinds import (
    Builder,
    Canvas,
    Loc,
    NodeFields,
    PythonRef,
    Ref,
    Spec,
    failed,
    register,
)
from podium.core.bounds import FRACTION
from podium.core.serde import to_plain
from podium.core.tools import closed_schema as _closed_schema
from podium.errors import UsageError
from podium.models.base import ModelSettings
from podium.patterns._classify import classifier_agent
from podium.patterns._common import named_agents, shared_type

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
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
        FRACTION.check(f"Rule for route {self.route!r}", "confidence", self.confidence)
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
        budget: Budget | None = None,
    ) -> None:
        self.routes: dict[str, Any] = named_agents("Router", name, routes, "route")
        FRACTION.check(f"Router {name!r}", "threshold", threshold)
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
            budget=budget,
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
        budget: Budget | None = None,
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
            budget=budget,
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


# YAML: `kind: router`, and the rules an adaptive shares --------------------------------------
class RuleSpec(Spec):
    """Route when the input's text holds one of `keywords` and/or `when` (a Python predicate,
    `module:function`) says yes."""

    route: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    when: Ref | None = None
    confidence: float = FRACTION.field(1.0)

    @model_validator(mode="after")
    def _needs_a_test(self) -> RuleSpec:
        if not self.keywords and self.when is None:
            raise ValueError(f"rule for route {self.route!r} needs `keywords` or `when`")
        return self


class RouterSpec(NodeFields):
    """Exactly one way to classify: `classifier` (a Python function or agent), `rules`, or
    `model` (an LLM told the routes; `instructions` replace its opening paragraph)."""

    kind: Literal["router"]
    routes: dict[str, NodeSpec] = Field(min_length=1)
    classifier: PythonRef | None = None
    rules: list[RuleSpec] | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    threshold: float = FRACTION.field(0.0)
    fallback: NodeSpec | None = None

    @model_validator(mode="after")
    def _one_classifier(self) -> RouterSpec:
        given = [k for k in ("classifier", "rules", "model") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a router needs exactly one of `classifier`, `rules` or `model`"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


def build_rules(
    b: Builder, rules: Sequence[RuleSpec], names: Sequence[str], loc: Loc, what: str
) -> list[Rule] | None:
    """The `Rule`s of `rules` (at `loc`), each naming one of `names` (a `what`: route or
    strategy); None if any cannot be had."""
    built = [_rule(b, r, names, (*loc, i), what) for i, r in enumerate(rules)]
    return None if any(r is None for r in built) else [r for r in built if r is not None]


def _rule(b: Builder, r: RuleSpec, names: Sequence[str], loc: Loc, what: str) -> Rule | None:
    if r.route not in names:
        field = "routes" if what == "route" else "strategies"
        b.problem((*loc, "route"), f"no {what} {r.route!r} in `{field}`")
        return None
    when = None
    if r.when is not None:
        when = b.import_object(r.when, (*loc, "when"))
        if when is None:
            return None
        if not callable(when):
            b.problem((*loc, "when"), f"{r.when!r} is not a function")
            return None
    return b.construct(
        loc, lambda: Rule(r.route, when=when, keywords=r.keywords, confidence=r.confidence)
    )


def _build(b: Builder, spec: RouterSpec, loc: Loc) -> Router | None:
    routes = {k: b.node(v, (*loc, "routes", k)) for k, v in spec.routes.items()}
    fallback = b.maybe(spec.fallback, (*loc, "fallback"))
    classifier = _classifier(b, spec, loc)
    model = None if spec.model is None else b.model(spec.model, (*loc, "model"))
    if (
        any(r is None for r in routes.values())
        or failed(fallback)
        or (spec.model is None and classifier is None)
        or (spec.model is not None and model is None)
    ):
        return None
    if model is not None:
        return b.construct(
            loc,
            lambda: Router.llm(
                spec.name,
                routes,
                model=model,
                instructions=spec.instructions,
                threshold=spec.threshold,
                fallback=fallback,
                **b.common(spec),
            ),
        )
    return b.construct(
        loc,
        lambda: Router(
            spec.name,
            routes,
            classifier=classifier,
            threshold=spec.threshold,
            fallback=fallback,
            **b.common(spec),
        ),
    )


def _classifier(b: Builder, spec: RouterSpec, loc: Loc) -> Any:
    """A function or agent from `classifier`, or `Rule`s from `rules` (None if neither)."""
    if spec.classifier is not None:
        cloc = (*loc, "classifier", "python")
        found = b.import_object(spec.classifier.python, cloc)
        if found is not None and not callable(found) and not _is_agent(found):
            b.problem(cloc, f"{spec.classifier.python!r} is neither a function nor an agent")
            return None
        return found
    if spec.rules is None:
        return None
    return build_rules(b, spec.rules, list(spec.routes), (*loc, "rules"), "route")


def _draw(d: Canvas, agent: Router, me: str) -> None:
    choose = d.box(me, "classify", "classify", "{}")
    for route, target in agent.routes.items():
        d.edge(choose, d.draw(target, me), route)
    if agent.fallback is not None:
        d.edge(choose, d.draw(agent.fallback, me), "fallback", dotted=True)


register(RouterSpec, _build, draws=Router, draw=_draw)
