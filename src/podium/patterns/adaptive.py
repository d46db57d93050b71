"""`Adaptive`: pick a strategy per task, and with learning on, shift to the one that works.

    adaptive = Adaptive(
        "solve",
        {"direct": solo, "pipeline": pipeline, "team": team, "review": consensus},
        classifier=classify,      # rules, a function, or an agent (see Adaptive.llm)
        learning=True,
    )

The candidates are agents (any pattern: a single agent, a `Sequential`, a `Parallel` team, a
supervisor, a consensus review), keyed by a strategy name. Each task goes through three steps:

1. **Classify** (optional): the classifier names a strategy and a task kind (a
   `StrategyChoice`). It is a list of router `Rule`s whose `route` is a strategy name (the task
   kind is then that name), a function `(input[, ctx]) -> str | (strategy, kind) |
   StrategyChoice | dict`, or any agent answering a `StrategyChoice` (a model: `Adaptive.llm`).
   A function or rules run as the step `/<name>/<name>.classify#0`, so the decision is
   journaled like an agent's.
2. **Choose**: without learning, the classifier's strategy (or `default` when it names none or
   an unknown one). With `learning=True`, Thompson sampling over the strategies' recorded
   outcomes for this task kind, in the step `/<name>/<name>.choose#0`: the random draw happens
   inside that step, so a resumed run replays the choice instead of drawing again.
3. **Run** the chosen strategy; with learning on, record its outcome (success, cost in tokens,
   latency in seconds) for the task kind, as the step `/<name>/<name>.record#0` (or
   `<name>.record_failure#0` when the strategy failed: the failure is recorded, then raised).

The utility sampled for strategy `s` in task kind `k` is

    U(s) = theta(s) - cost_weight * mean_tokens(s) / 1000 - latency_weight * mean_seconds(s)
    theta(s) ~ Beta(1 + successes(s) + prior * [s is the classifier's pick], 1 + failures(s))

and the strategy with the highest `U` runs (ties: the one listed first). Successes and
failures count the outcomes recorded for `(k, s)`; a strategy never tried has a uniform
`Beta(1, 1)` and no cost, so it gets explored. `prior` gives the classifier's pick a head start
that the data overrides. A task succeeds when the strategy completes and `success(output)` (a
function, or an agent whose verdict is a bool or has a bool `done` / `approved` / `stop` /
`passed` field) holds; without `success`, completing is success.

Cost is the tokens the run spent while the strategy ran (inside a `Parallel`, other branches'
tokens in that time count too); latency is wall time. Both are measured between child steps
and handed to the record step, which journals them, so nothing decided depends on them.

Outcomes live in an `OutcomeStore`: by default the run's key-value service (`ctx.kv`, kept in
the run's store, through `StoreOutcomes`: each outcome one atomic update, so processes sharing
a store lose none), or memory held by this `Adaptive` object for a store without one.
Events: `adaptive.choice` (strategy, task kind, mode, the classifier's pick, the sampled
utilities) and `adaptive.outcome` (success, cost, latency).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.kinds import (
    FAILED,
    REF,
    Builder,
    Canvas,
    Loc,
    NodeFields,
    PythonRef,
    Ref,
    failed,
    register,
)
from podium.core.bounds import NON_NEGATIVE
from podium.core.serde import answer_as
from podium.core.tools import closed_schema as _closed_schema
from podium.errors import RunError, Suspended, UsageError
from podium.models.base import ModelSettings
from podium.patterns._classify import classifier_agent
from podium.patterns._common import Verdict, named_agents, shared_type
from podium.patterns.router import Rule, RuleSpec, build_rules
from podium.runtime.kv import KeyValue, has_kv

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.door import Call
    from podium.runtime.policies import Retry

DEFAULT_KIND = "default"


class StrategyChoice(BaseModel):
    """A classifier's answer: which strategy suits the task, what kind of task it is, why."""

    model_config = ConfigDict(json_schema_extra=_closed_schema)

    strategy: str = ""
    task_kind: str = DEFAULT_KIND
    reason: str = ""


class AdaptiveChoice(BaseModel):
    """The decision, as journaled: the strategy, the task kind, how it was chosen, the
    classifier's pick, and the utility sampled for each candidate (learning only)."""

    strategy: str
    task_kind: str
    mode: Literal["classifier", "learned"]
    suggested: str | None = None
    utilities: dict[str, float] = {}
    reason: str = ""


# outcomes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class OutcomeStats:
    """What is known about one strategy on one kind of task: sums, so that adding is cheap."""

    trials: int = 0
    successes: int = 0
    cost: float = 0.0
    latency: float = 0.0

    @property
    def failures(self) -> int:
        return self.trials - self.successes

    @property
    def mean_cost(self) -> float:
        return self.cost / self.trials if self.trials else 0.0

    @property
    def mean_latency(self) -> float:
        return self.latency / self.trials if self.trials else 0.0

    def add(self, success: bool, cost: float, latency: float) -> None:
        self.trials += 1
        self.successes += int(success)
        self.cost += cost
        self.latency += latency

    def to_dict(self) -> dict[str, float]:
        return {
            "trials": self.trials,
            "successes": self.successes,
            "cost": self.cost,
            "latency": self.latency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeStats:
        return cls(
            int(data.get("trials", 0)),
            int(data.get("successes", 0)),
            float(data.get("cost", 0.0)),
            float(data.get("latency", 0.0)),
        )


Outcomes = dict[str, dict[str, OutcomeStats]]  # task kind -> strategy -> stats


@runtime_checkable
class OutcomeStore(Protocol):
    """Where `Adaptive` keeps what it learned, per namespace (by default the Adaptive's name)."""

    async def load(self, namespace: str) -> Outcomes:
        """Every task kind's stats per strategy; an empty dict when nothing is recorded."""

    async def record(
        self,
        namespace: str,
        task_kind: str,
        strategy: str,
        success: bool,
        cost: float,
        latency: float,
    ) -> None:
        """Add one outcome."""


class MemoryOutcomes:
    """Outcomes in this process's memory (tests, and runs on a store without key-value)."""

    def __init__(self) -> None:
        self._data: dict[str, Outcomes] = {}

    async def load(self, namespace: str) -> Outcomes:
        return self._data.get(namespace, {})

    async def record(
        self,
        namespace: str,
        task_kind: str,
        strategy: str,
        success: bool,
        cost: float,
        latency: float,
    ) -> None:
        kinds = self._data.setdefault(namespace, {})
        kinds.setdefault(task_kind, {}).setdefault(strategy, OutcomeStats()).add(
            success, cost, latency
        )


class StoreOutcomes:
    """Outcomes kept through the runtime's key-value service (`ctx.kv`, on the run's store):
    the kv namespace `adaptive:<namespace>` holds one key per task kind, whose value maps each
    strategy to its sums.

    A record is one atomic update of its task kind's key (`KeyValue.update`): two processes
    recording outcomes of the same task kind at the same instant both count. Give it the
    service, or a store with a key-value API."""

    PREFIX = "adaptive:"

    def __init__(self, kv: KeyValue | Any) -> None:
        if not isinstance(kv, KeyValue):
            if not has_kv(kv):
                raise UsageError(f"store {kv!r} has no key-value API (kv_get, kv_put, kv_list)")
            kv = KeyValue(kv)
        self.kv = kv

    @property
    def store(self) -> Any:
        """The store the values live in."""
        return self.kv.store

    async def load(self, namespace: str) -> Outcomes:
        raw = await self.kv.list(self.PREFIX + namespace)
        return {
            kind: {s: OutcomeStats.from_dict(v) for s, v in per.items()}
            for kind, per in raw.items()
        }

    async def record(
        self,
        namespace: str,
        task_kind: str,
        strategy: str,
        success: bool,
        cost: float,
        latency: float,
    ) -> None:
        def add(current: dict[str, Any] | None) -> dict[str, Any]:
            per = dict(current or {})
            stats = OutcomeStats.from_dict(per.get(strategy, {}))
            stats.add(success, cost, latency)
            per[strategy] = stats.to_dict()
            return per

        await self.kv.update(self.PREFIX + namespace, task_kind, add)


# the bandit ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Weights:
    """How much cost and latency count against the sampled success probability."""

    cost_weight: float = 0.01  # per 1,000 tokens on average
    latency_weight: float = 0.01  # per second on average
    prior: float = 1.0  # pseudo-successes for the classifier's pick


def thompson_choice(
    stats: Mapping[str, OutcomeStats],
    candidates: Sequence[str],
    rng: random.Random,
    weights: Weights = Weights(),
    suggested: str | None = None,
) -> tuple[str, dict[str, float]]:
    """One Thompson-sampling draw: the candidate with the highest sampled utility (see the
    module docstring for the formula), and every candidate's sampled utility."""
    utilities: dict[str, float] = {}
    for s in candidates:
        st = stats.get(s) or OutcomeStats()
        head = weights.prior if s == suggested else 0.0
        theta = rng.betavariate(1.0 + st.successes + head, 1.0 + st.failures)
        penalty = (
            weights.cost_weight * st.mean_cost / 1000.0 + weights.latency_weight * st.mean_latency
        )
        utilities[s] = round(theta - penalty, 6)
    best = max(candidates, key=lambda s: utilities[s])  # max keeps the first of equals
    return best, utilities


# the pattern ---------------------------------------------------------------------------------


class Adaptive(AgentBase[Any, Any]):
    """Runs the strategy that suits the task: by classifier, or learned; see the module
    docstring. The output is the chosen strategy's output."""

    def __init__(
        self,
        name: str,
        strategies: Mapping[str, Any] | Sequence[Any],
        *,
        classifier: Any = None,
        learning: bool = False,
        default: str | None = None,
        success: Any = None,
        outcomes: OutcomeStore | None = None,
        namespace: str | None = None,
        cost_weight: float = 0.01,
        latency_weight: float = 0.01,
        prior: float = 1.0,
        seed: int | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        budget: Budget | None = None,
    ) -> None:
        self.strategies = named_agents("Adaptive", name, strategies, "strategy")
        if classifier is None and not learning:
            raise UsageError(f"Adaptive {name!r} needs a classifier, learning=True, or both")
        if default is not None and default not in self.strategies:
            raise UsageError(
                f"Adaptive {name!r}: default {default!r} is not one of {list(self.strategies)}"
            )
        if success is not None and not callable(success) and not _is_agent(success):
            raise UsageError(f"Adaptive {name!r}: success must be a function or an agent")
        if outcomes is not None and not isinstance(outcomes, OutcomeStore):
            raise UsageError(f"Adaptive {name!r}: outcomes must be an OutcomeStore")
        if not all(NON_NEGATIVE.ok(w) for w in (cost_weight, latency_weight, prior)):
            raise UsageError(f"Adaptive {name!r}: weights and prior must not be negative")
        self.classifier = (
            None
            if classifier is None
            else classifier_agent(
                "Adaptive",
                name,
                classifier,
                self.strategies,
                "strategy",
                ChoiceAnswer,
                _strategy_by_rule,
            )
        )
        self.learning = learning
        self.default = default
        self.success = success
        self.namespace = namespace or name
        self.weights = Weights(cost_weight, latency_weight, prior)
        self._outcomes = outcomes
        self._memory = MemoryOutcomes()
        self._store_outcomes: StoreOutcomes | None = None
        self._chooser = _Choose(f"{name}.choose", self, random.Random(seed))
        self._recorder = _Record(f"{name}.record", self)
        self._failure_recorder = _Record(f"{name}.record_failure", self)
        strategies = list(self.strategies.values())
        self._setup(
            name,
            input_type=shared_type(strategies, "input_type"),
            output_type=shared_type(strategies, "output_type"),
            retry=retry,
            timeout=timeout,
            description=description,
            budget=budget,
        )
        self.check_input = None  # the classifier and the chosen strategy check it when called

    @classmethod
    def llm(
        cls,
        name: str,
        strategies: Mapping[str, Any] | Sequence[Any],
        *,
        model: Any,
        kinds: Sequence[str] = (),
        instructions: str | None = None,
        settings: ModelSettings | None = None,
        **options: Any,
    ) -> Adaptive:
        """An Adaptive whose classifier is a model (`<name>.classify`, an `LLMAgent`) told the
        strategies, their descriptions and the known task kinds, answering a
        `StrategyChoice`. `settings` go with its requests, as for `LLMAgent`. Other options
        are as for `Adaptive(...)`."""
        from podium.agents.llm import LLMAgent

        table = named_agents("Adaptive", name, strategies, "strategy")
        classifier = LLMAgent(
            f"{name}.classify",
            model=model,
            instructions=_llm_instructions(table, kinds, instructions),
            output_type=StrategyChoice,
            settings=settings,
        )
        return cls(name, table, classifier=classifier, **options)

    def outcomes_for(self, kv: KeyValue | Any) -> OutcomeStore:
        """Where outcomes go for a run whose key-value service (`ctx.kv`) is `kv`: the
        explicit store, else that service (a store with a key-value API will do too), else
        this object's memory when there is none."""
        if self._outcomes is not None:
            return self._outcomes
        store = kv.store if isinstance(kv, KeyValue) else kv
        if kv is not None and has_kv(store):
            if self._store_outcomes is None or self._store_outcomes.store is not store:
                self._store_outcomes = StoreOutcomes(kv)
            return self._store_outcomes
        return self._memory

    async def run(self, input: Any, ctx: RunContext) -> Any:
        plan = StrategyChoice()
        if self.classifier is not None:
            plan = await ctx.call(self.classifier, input, expect=ChoiceAnswer)
        choice = await self._decide(plan, ctx)
        ctx.emit("adaptive.choice", **choice.model_dump())
        target = self.strategies[choice.strategy]
        if not self.learning:
            return await ctx.call(target, input)
        return await self._run_and_record(target, input, choice, ctx)

    async def _decide(self, plan: StrategyChoice, ctx: RunContext) -> AdaptiveChoice:
        known = plan.strategy in self.strategies
        if self.learning:
            request = {"task_kind": plan.task_kind, "suggested": plan.strategy if known else None}
            choice: AdaptiveChoice = await ctx.invoke(self._chooser, "tool", request)
            return choice
        strategy, reason = plan.strategy, plan.reason
        if not known:
            if self.default is None:
                raise RunError(
                    f"Adaptive {self.name!r} at {ctx.key}: the classifier picked "
                    f"{plan.strategy!r}, which is not one of {list(self.strategies)}, and "
                    "there is no default"
                )
            strategy, reason = self.default, f"default: classifier picked {plan.strategy!r}"
        return AdaptiveChoice(
            strategy=strategy,
            task_kind=plan.task_kind,
            mode="classifier",
            suggested=plan.strategy or None,
            reason=reason,
        )

    async def _run_and_record(
        self, target: Any, input: Any, choice: AdaptiveChoice, ctx: RunContext
    ) -> Any:
        tokens, t0 = ctx.usage.total_tokens, time.perf_counter()
        try:
            output = await ctx.call(target, input)
        except (Suspended, asyncio.CancelledError):
            raise
        except Exception:
            await self._record(self._failure_recorder, choice, False, tokens, t0, ctx)
            raise
        ok = True if self.success is None else await self._judge(output, ctx)
        await self._record(self._recorder, choice, ok, tokens, t0, ctx)
        return output

    async def _judge(self, output: Any, ctx: RunContext) -> bool:
        judge = self.success
        if _is_agent(judge):
            return bool(await ctx.call(judge, output, expect=Verdict))
        verdict = judge(output)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(answer_as(Verdict, verdict, f"{self.name}.success", ctx.key))

    async def _record(
        self,
        step: _Record,
        choice: AdaptiveChoice,
        ok: bool,
        tokens: int,
        t0: float,
        ctx: RunContext,
    ) -> None:
        outcome = {
            "task_kind": choice.task_kind,
            "strategy": choice.strategy,
            "success": ok,
            "cost": float(ctx.usage.total_tokens - tokens),
            "latency": round(time.perf_counter() - t0, 6),
        }
        recorded = await ctx.invoke(step, "tool", outcome)
        ctx.emit("adaptive.outcome", **recorded)


class _Choose:
    """The step that draws: loads the outcomes and samples, so a resume replays the draw."""

    __slots__ = ("adaptive", "check_output", "name", "retry", "rng", "timeout")

    def __init__(self, name: str, adaptive: Adaptive, rng: random.Random) -> None:
        self.name = name
        self.adaptive = adaptive  # a step belongs to its pattern; no cycle back from a run
        self.rng = rng
        self.retry: Retry | None = None
        self.timeout: float | None = None
        self.check_output = _check_choice

    async def invoke(self, call: Call) -> AdaptiveChoice:
        ad = self.adaptive
        kind, suggested = call.input["task_kind"], call.input["suggested"]
        table = await ad.outcomes_for(call.run.kv).load(ad.namespace)
        strategy, utilities = thompson_choice(
            table.get(kind, {}), list(ad.strategies), self.rng, ad.weights, suggested
        )
        return AdaptiveChoice(
            strategy=strategy,
            task_kind=kind,
            mode="learned",
            suggested=suggested,
            utilities=utilities,
            reason="highest sampled utility",
        )


class _Record:
    """The step that records an outcome, so a resume does not count it twice."""

    __slots__ = ("adaptive", "check_output", "name", "retry", "timeout")

    def __init__(self, name: str, adaptive: Adaptive) -> None:
        self.name = name
        self.adaptive = adaptive
        self.retry: Retry | None = None
        self.timeout: float | None = None
        self.check_output = None

    async def invoke(self, call: Call) -> dict[str, Any]:
        ad, o = self.adaptive, call.input
        outcomes = ad.outcomes_for(call.run.kv)
        await outcomes.record(
            ad.namespace, o["task_kind"], o["strategy"], o["success"], o["cost"], o["latency"]
        )
        return dict(o)


def _check_choice(value: Any) -> AdaptiveChoice:
    if isinstance(value, AdaptiveChoice):
        return value
    return AdaptiveChoice.model_validate(value)


# classifiers ---------------------------------------------------------------------------------


def _strategy_by_rule(rule: Rule | None, index: int, found: str) -> StrategyChoice:
    """A matching rule names the strategy, and so the task kind."""
    if rule is None:
        return StrategyChoice(reason="no rule matched")
    return StrategyChoice(
        strategy=rule.route, task_kind=rule.route, reason=f"rule {index}: {found}"
    )


def _choice_shorthand(value: Any) -> Any:
    """What a strategy classifier may answer besides a `StrategyChoice`: a strategy name
    (which is also the task kind), a `(strategy, task_kind)` pair, or None (no idea)."""
    if value is None:
        return {"reason": "the classifier gave no strategy"}
    if isinstance(value, str):
        return {"strategy": value, "task_kind": value or DEFAULT_KIND}
    if isinstance(value, tuple | list) and len(value) == 2:
        return {"strategy": value[0], "task_kind": value[1]}
    if isinstance(value, BaseModel) and not isinstance(value, StrategyChoice):
        return value.model_dump()
    if isinstance(value, Mapping | StrategyChoice):
        return value
    raise ValueError(
        "a strategy classifier must return a strategy name, (strategy, task_kind) or a "
        "StrategyChoice"
    )


ChoiceAnswer = Annotated[StrategyChoice, BeforeValidator(_choice_shorthand)]
"""The answer an Adaptive expects from its classifier, shorthand included."""


_DEFAULT_INSTRUCTIONS = (
    "You decide how a task should be handled. Read the task, say what kind of task it is, and "
    "pick the one strategy below that suits it best, with a one-sentence reason."
)


def _llm_instructions(
    strategies: Mapping[str, Any], kinds: Sequence[str], instructions: str | None
) -> str:
    lines = [instructions or _DEFAULT_INSTRUCTIONS, "", "Strategies:"]
    for key, target in strategies.items():
        about = " ".join((getattr(target, "description", "") or "").split("\n\n")[0].split())
        lines.append(f"- {key}: {about}" if about else f"- {key}")
    if kinds:
        lines += ["", "Task kinds (answer one of these as task_kind):"]
        lines += [f"- {k}" for k in kinds]
    return "\n".join(lines)


# YAML: `kind: adaptive` -----------------------------------------------------------------------
class AdaptiveSpec(NodeFields):
    """Strategies by name, picked per task by `classifier` (python), `rules` (whose `route`
    is a strategy), or `model`, and/or learnt from outcomes (`learning`)."""

    kind: Literal["adaptive"]
    strategies: dict[str, NodeSpec] = Field(min_length=1)
    classifier: PythonRef | None = None
    rules: list[RuleSpec] | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    kinds: list[str] = Field(default_factory=list, description="task kinds told to the model")
    instructions: str | None = None
    learning: bool = False
    default: str | None = Field(None, min_length=1)
    success: Ref | None = Field(None, description=REF + ": output -> bool, or agent")
    outcomes: Ref | None = Field(None, description=REF + ": an OutcomeStore")
    namespace: str | None = Field(None, min_length=1)
    cost_weight: float = NON_NEGATIVE.field(0.01)
    latency_weight: float = NON_NEGATIVE.field(0.01)
    prior: float = NON_NEGATIVE.field(1.0)
    seed: int | None = None

    @model_validator(mode="after")
    def _classified(self) -> AdaptiveSpec:
        given = [k for k in ("classifier", "rules", "model") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"an adaptive takes at most one of `classifier`, `rules` or `model` (got "
                f"{', '.join(given)})"
            )
        if not given and not self.learning:
            raise ValueError("an adaptive needs `classifier`, `rules`, `model`, or `learning`")
        return self


def _build(b: Builder, spec: AdaptiveSpec, loc: Loc) -> Adaptive | None:
    strategies = {k: b.node(v, (*loc, "strategies", k)) for k, v in spec.strategies.items()}
    names = list(spec.strategies)
    classifier: Any = None
    if spec.classifier is not None:
        cloc = (*loc, "classifier", "python")
        classifier = b.function(spec.classifier.python, cloc, agents=True)
    elif spec.rules is not None:
        rules = build_rules(b, spec.rules, names, (*loc, "rules"), "strategy")
        classifier = FAILED if rules is None else rules
    model = None if spec.model is None else b.model(spec.model, (*loc, "model"))
    success = b.function(spec.success, (*loc, "success"), agents=True)
    outcomes = None
    if spec.outcomes is not None:
        outcomes = b.import_object(spec.outcomes, (*loc, "outcomes"))
    ok = spec.default is None or b.known(spec.default, names, (*loc, "default"), "strategy")
    if (
        not ok
        or any(s is None for s in strategies.values())
        or failed(classifier, success)
        or (spec.model is not None and model is None)
        or (spec.outcomes is not None and outcomes is None)
    ):
        return None

    def make() -> Adaptive:
        options: dict[str, Any] = {
            "learning": spec.learning,
            "default": spec.default,
            "success": success,
            "outcomes": outcomes,
            "namespace": spec.namespace,
            "cost_weight": spec.cost_weight,
            "latency_weight": spec.latency_weight,
            "prior": spec.prior,
            "seed": spec.seed,
            **b.common(spec),
        }
        if model is None:
            return Adaptive(spec.name, strategies, classifier=classifier, **options)
        return Adaptive.llm(
            spec.name,
            strategies,
            model=model,
            kinds=spec.kinds,
            instructions=spec.instructions,
            **options,
        )

    return b.construct(loc, make)


def _draw(d: Canvas, agent: Adaptive, me: str) -> None:
    how = ["classifier"] if agent.classifier is not None else []
    how += ["learned"] if agent.learning else []
    choose = d.box(me, "choose", f"choose strategy ({' + '.join(how)})", "{}")
    for key, strategy in agent.strategies.items():
        d.edge(choose, d.draw(strategy, me), key)


register(AdaptiveSpec, _build, draws=Adaptive, draw=_draw)
