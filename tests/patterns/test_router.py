"""Router: function, rules and model classifiers; thresholds, fallback and triage; replay of
the decision on resume; nesting with other patterns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Decision,
    Event,
    Parallel,
    ParallelResult,
    Retry,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    StepRecord,
    StepStatus,
    Suspended,
    UsageError,
    agent,
)
from podium.core.serde import dumps, loads
from podium.models.scripted import ScriptedModel
from podium.patterns.router import RouteDecision, Router, Rule
from podium.stores import MemoryStore


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def echo(name: str) -> Any:
    """An agent that says who handled the input."""

    def fn(x: str) -> str:
        return f"{name}:{x}"

    return agent(name=name, description=f"handles {name} questions")(fn)


BILLING, TECH, HUMAN = echo("billing"), echo("tech"), echo("human")


async def decisions(rt: Runtime, run_id: str) -> list[dict[str, Any]]:
    events: list[Event] = await rt.events(run_id)
    return [e.data or {} for e in events if e.kind == "route.decision"]


# classifiers -------------------------------------------------------------------------------


async def test_function_classifier_routes_to_the_named_agent(rt: Runtime) -> None:
    router = Router(
        "support",
        [BILLING, TECH],
        classifier=lambda text: "billing" if "invoice" in text else "tech",
    )
    assert (await rt.run(router, "my invoice")).output == "billing:my invoice"
    result = await rt.run(router, "it crashes")
    assert result.output == "tech:it crashes"
    [event] = await decisions(rt, result.run_id)
    assert event["route"] == "tech" and event["confidence"] == 1.0
    assert event["outcome"] == "routed" and event["target"] == "tech"
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/support", "/support/support.classify#0", "/support/tech#0"]


async def test_async_classifier_with_ctx_and_confidence_pair(rt: Runtime) -> None:
    seen: list[str] = []

    async def classify(text: str, ctx: RunContext) -> tuple[str, float]:
        seen.append(ctx.key)
        return ("tech", 0.8)

    result = await rt.run(Router("r", [BILLING, TECH], classifier=classify, threshold=0.5), "x")
    assert result.output == "tech:x"
    assert seen == ["/r/r.classify#0"]
    [event] = await decisions(rt, result.run_id)
    assert event["confidence"] == 0.8 and event["threshold"] == 0.5


async def test_classifier_may_return_a_route_decision(rt: Runtime) -> None:
    def classify(text: str) -> RouteDecision:
        return RouteDecision(route="billing", confidence=0.9, reason="mentions money")

    result = await rt.run(Router("r", {"billing": BILLING}, classifier=classify), "x")
    assert result.output == "billing:x"
    [event] = await decisions(rt, result.run_id)
    assert event["reason"] == "mentions money" and event["confidence"] == 0.9


async def test_any_agent_may_classify_and_keeps_its_own_step(rt: Runtime) -> None:
    @agent
    def triager(text: str) -> dict[str, Any]:
        return {"route": "tech", "confidence": 0.75, "reason": "sounds broken"}

    result = await rt.run(Router("r", [BILLING, TECH], classifier=triager, threshold=0.7), "x")
    assert result.output == "tech:x"
    assert [s.key for s in await rt.steps(result.run_id)][1] == "/r/triager#0"
    [event] = await decisions(rt, result.run_id)
    assert event["reason"] == "sounds broken" and event["confidence"] == 0.75


async def test_rules_first_match_wins_keywords_ignore_case(rt: Runtime) -> None:
    rules = [
        Rule("billing", keywords=["invoice", "refund"]),
        Rule("tech", when=lambda text: text.endswith("?"), confidence=0.7),
        Rule("tech", keywords=["Crash"]),
    ]
    router = Router("r", [BILLING, TECH], classifier=rules, fallback=HUMAN)
    assert (await rt.run(router, "REFUND please?")).output == "billing:REFUND please?"
    assert (await rt.run(router, "why?")).output == "tech:why?"
    assert (await rt.run(router, "it CRASHED")).output == "human:it CRASHED"  # whole words
    result = await rt.run(router, "my app crash")
    assert result.output == "tech:my app crash"
    [event] = await decisions(rt, result.run_id)
    assert event["reason"] == "rule 2: keyword 'crash'"


async def test_rules_read_the_text_of_structured_input(rt: Runtime) -> None:
    class Ticket(BaseModel):
        subject: str
        body: str

    @agent
    def billing_desk(t: Ticket) -> str:
        return f"billing got {t.subject}"

    rules = [Rule("billing", keywords=["invoice"])]
    router = Router("r", {"billing": billing_desk}, classifier=rules, fallback=HUMAN)
    result = await rt.run(router, Ticket(subject="hello", body="about my Invoice #4"))
    assert result.output == "billing got hello"


async def test_rule_that_matches_nothing_goes_to_fallback(rt: Runtime) -> None:
    router = Router(
        "r", [BILLING], classifier=[Rule("billing", keywords="invoice")], fallback=HUMAN
    )
    result = await rt.run(router, "hello")
    assert result.output == "human:hello"
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "fallback" and event["note"] == "no route chosen"
    assert event["reason"] == "no rule matched"


# thresholds, fallback, triage --------------------------------------------------------------


async def test_below_threshold_goes_to_fallback(rt: Runtime) -> None:
    router = Router(
        "r", [BILLING, TECH], classifier=lambda x: ("tech", 0.4), threshold=0.6, fallback=HUMAN
    )
    result = await rt.run(router, "hmm")
    assert result.output == "human:hmm"
    [event] = await decisions(rt, result.run_id)
    assert event == {
        "route": "tech",
        "confidence": 0.4,
        "threshold": 0.6,
        "outcome": "fallback",
        "target": "human",
        "reason": "",
        "note": "confidence 0.4 below threshold 0.6",
    }


async def test_at_threshold_is_routed(rt: Runtime) -> None:
    router = Router(
        "r", [BILLING, TECH], classifier=lambda x: ("tech", 0.6), threshold=0.6, fallback=HUMAN
    )
    assert (await rt.run(router, "x")).output == "tech:x"


async def test_below_threshold_without_fallback_waits_in_triage(rt: Runtime) -> None:
    router = Router("desk", [BILLING, TECH], classifier=lambda x: ("tech", 0.2), threshold=0.5)
    result = await rt.run(router, "unclear")
    assert result.status == RunStatus.WAITING
    assert (await rt.get_run(result.run_id)).status == RunStatus.WAITING
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "triage" and event["confidence"] == 0.2
    assert event["target"] is None
    s = result.exception
    assert isinstance(s, Suspended)
    assert s.step == "/desk/desk.triage#0/desk.triage.decision#0"  # a HumanAgent asks
    assert s.reason == "waiting for a person: triage: confidence 0.2 below threshold 0.5"
    assert s.payload == {
        "kind": "question",
        "prompt": "triage: confidence 0.2 below threshold 0.5",
        "context": {
            "input": "unclear",
            "candidates": ["billing", "tech"],
            "decision": {"route": "tech", "confidence": 0.2, "reason": ""},
            "note": "confidence 0.2 below threshold 0.5",
        },
        "assignee": None,
    }
    steps = {s.key: s.status for s in await rt.steps(result.run_id)}
    assert steps["/desk/desk.triage#0/desk.triage.decision#0"] == StepStatus.SUSPENDED
    assert "/desk/tech#0" not in steps


async def test_a_persons_pick_in_the_triage_step_routes_on_resume(rt: Runtime) -> None:
    calls = 0

    def classify(x: str) -> tuple[str, float]:
        nonlocal calls
        calls += 1
        return ("tech", 0.1)

    router = Router("desk", [BILLING, TECH], classifier=classify, threshold=0.5)
    first = await rt.run(router, "refund?")
    assert first.status == RunStatus.WAITING
    again = await rt.resume(first.run_id, router)  # nobody decided yet: still waiting
    assert again.status == RunStatus.WAITING
    pick = Decision.answer({"route": "billing", "reason": "it is about money"})
    done = await rt.resume(first.run_id, router, decision=pick)
    assert done.status == RunStatus.COMPLETED and done.output == "billing:refund?"
    assert calls == 1
    last = (await decisions(rt, first.run_id))[-2:]
    assert [e["outcome"] for e in last] == ["triage", "routed"]
    assert last[1]["route"] == "billing" and last[1]["note"] == "chosen in triage"


async def test_unknown_route_goes_to_fallback_or_triage(rt: Runtime) -> None:
    with_fallback = Router("r", [BILLING], classifier=lambda x: ("shipping", 0.99), fallback=HUMAN)
    result = await rt.run(with_fallback, "x")
    assert result.output == "human:x"
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "fallback" and event["note"] == "unknown route 'shipping'"

    without = Router("r", [BILLING], classifier=lambda x: "shipping")
    result = await rt.run(without, "x")
    assert result.status == RunStatus.WAITING
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "triage" and event["note"] == "unknown route 'shipping'"
    assert isinstance(result.exception, Suspended)
    assert result.exception.reason == "waiting for a person: triage: unknown route 'shipping'"


async def test_fallback_may_also_be_a_route(rt: Runtime) -> None:
    router = Router(
        "r", [BILLING, HUMAN], classifier=lambda x: ("billing", 0.1), threshold=0.5, fallback=HUMAN
    )
    assert (await rt.run(router, "x")).output == "human:x"


async def test_a_bad_classifier_answer_fails_naming_the_classifier(rt: Runtime) -> None:
    result = await rt.run(Router("r", [BILLING], classifier=lambda x: 42), "x")
    assert result.status == RunStatus.FAILED
    assert "r.classify" in (result.error or "") and "got 42" in (result.error or "")
    result = await rt.run(Router("r", [BILLING], classifier=lambda x: ("billing", 7)), "x")
    assert result.status == RunStatus.FAILED and "confidence" in (result.error or "")


# durability --------------------------------------------------------------------------------


async def test_resume_replays_the_decision_instead_of_classifying_again(rt: Runtime) -> None:
    classified = 0
    attempts = 0

    def classify(x: str) -> tuple[str, float]:
        nonlocal classified
        classified += 1
        return ("tech", 0.9)

    @agent
    def tech(x: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ValueError("disk full")
        return f"fixed {x}"

    router = Router("r", [BILLING, tech], classifier=classify, threshold=0.5)
    first = await rt.run(router, "bug")
    assert first.status == RunStatus.FAILED and "disk full" in (first.error or "")
    second = await rt.resume(first.run_id, router)
    assert second.status == RunStatus.COMPLETED and second.output == "fixed bug"
    assert classified == 1 and attempts == 2
    kinds = [e.kind for e in await rt.events(first.run_id) if e.key == "/r/r.classify#0"]
    assert kinds == ["step.started", "step.completed", "step.replayed"]


class JsonStore(MemoryStore):
    """Keeps outputs as JSON, the way persistent stores do, so replay sees plain dicts."""

    async def record_finished(self, step: StepRecord) -> None:
        await super().record_finished(replace(step, output=loads(dumps(step.output))))


async def test_replayed_decisions_from_json_become_route_decisions_again() -> None:
    classified = 0
    failures = iter([ValueError("once")])

    async def classify(x: str) -> RouteDecision:
        nonlocal classified
        classified += 1
        return RouteDecision(route="tech", confidence=0.9, reason="json")

    @agent
    def tech(x: str) -> str:
        for error in failures:
            raise error
        return "ok"

    rt = Runtime(JsonStore(), retry=NO_RETRY)
    router = Router("r", [BILLING, tech], classifier=classify, threshold=0.5)
    first = await rt.run(router, "x")
    assert first.status == RunStatus.FAILED
    steps = {s.key: s for s in await rt.steps(first.run_id)}
    assert steps["/r/r.classify#0"].output == {"route": "tech", "confidence": 0.9, "reason": "json"}
    second = await rt.resume(first.run_id, router)
    assert second.output == "ok" and classified == 1
    assert (await decisions(rt, first.run_id))[-1]["reason"] == "json"


async def test_decision_and_triage_survive_a_real_sqlite_file(tmp_path: Path) -> None:
    pytest.importorskip("podium.stores.sqlite")
    classified = 0
    failures = iter([ValueError("once")])

    def classify(x: str) -> tuple[str, float]:
        nonlocal classified
        classified += 1
        return ("tech", 0.9 if x == "sure" else 0.1)

    @agent
    def tech(x: str) -> str:
        for error in failures:
            raise error
        return "ok"

    router = Router("r", [BILLING, tech], classifier=classify, threshold=0.5)
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", retry=NO_RETRY) as rt:
        first = await rt.run(router, "sure")
        assert first.status == RunStatus.FAILED
        unsure = await rt.run(router, "unsure")
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, router)
        assert second.status == RunStatus.COMPLETED and second.output == "ok"
        assert classified == 2  # once per run, not again on resume
        assert (await rt.get_run(unsure.run_id)).status == RunStatus.WAITING
        steps = {s.key: s.status for s in await rt.steps(unsure.run_id)}
        assert steps["/r/r.triage#0/r.triage.decision#0"] == StepStatus.SUSPENDED


# types and construction --------------------------------------------------------------------


class A(BaseModel):
    a: int


def test_output_type_is_shared_or_any() -> None:
    @agent
    def one(x: str) -> A:
        return A(a=1)

    @agent
    def two(x: str) -> A:
        return A(a=2)

    @agent
    def other(x: str) -> int:
        return 3

    assert Router("r", [one, two], classifier=lambda x: "one").output_type is A
    assert Router("r", [one, two], classifier=lambda x: "one", fallback=other).output_type is Any
    assert Router("r", [BILLING, TECH], classifier=lambda x: "tech").output_type is str


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"routes": []}, "needs at least one route"),
        ({"routes": {}}, "needs at least one route"),
        ({"routes": [BILLING, echo("billing")]}, "route 'billing' is named twice"),
        ({"routes": {"": BILLING}}, "must be a non-empty string"),
        ({"routes": {"b": "not an agent"}}, "route 'b'"),
        ({"threshold": 1.5}, "threshold must be in [0, 1]"),
        ({"threshold": -0.1}, "threshold must be in [0, 1]"),
        ({"classifier": [Rule("sales", keywords=["buy"])]}, "rule 0 names route 'sales'"),
        ({"classifier": []}, "at least one Rule"),
        ({"classifier": 3}, "classifier must be"),
        ({"fallback": "nobody"}, "fallback 'nobody' is not an agent"),
    ],
)
def test_construction_errors_name_the_router(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"routes": [BILLING, TECH], "classifier": lambda x: "tech"}
    args.update(kwargs)
    with pytest.raises(UsageError) as err:
        Router("support", **args)
    assert "'support'" in str(err.value) and message in str(err.value)


def test_rule_needs_a_condition_and_a_sane_confidence() -> None:
    with pytest.raises(UsageError, match="needs `when=` or `keywords=`"):
        Rule("billing")
    with pytest.raises(UsageError, match="confidence must be in"):
        Rule("billing", keywords=["x"], confidence=2)


# nesting -----------------------------------------------------------------------------------


async def test_routes_may_be_other_patterns(rt: Runtime) -> None:
    @agent
    def upper(x: str) -> str:
        return x.upper()

    @agent
    def exclaim(x: str) -> str:
        return x + "!"

    pipeline = Sequential("pipeline", [upper, exclaim])
    fan = Parallel("fan", [upper, exclaim])
    router = Router(
        "r", {"shout": pipeline, "both": fan}, classifier=lambda x: "both" if "?" in x else "shout"
    )
    assert (await rt.run(router, "hi")).output == "HI!"
    result = await rt.run(router, "hi?")
    assert isinstance(result.output, ParallelResult)
    assert result.output.value == {"upper": "HI?", "exclaim": "hi?!"}
    keys = {s.key for s in await rt.steps(result.run_id)}
    assert {"/r/fan#0/upper#0", "/r/fan#0/exclaim#0"} <= keys


async def test_a_router_inside_a_sequential(rt: Runtime) -> None:
    @agent
    def clean(x: str) -> str:
        return x.strip().lower()

    @agent
    def sign(x: str) -> str:
        return x + " -- support"

    router = Router(
        "route", [BILLING, TECH], classifier=[Rule("billing", keywords=["invoice"])], fallback=TECH
    )
    flow = Sequential("flow", [clean, router, sign])
    result = await rt.run(flow, "  INVOICE missing ")
    assert result.output == "billing:invoice missing -- support"
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert "/flow/route#0/route.classify#0" in keys and "/flow/route#0/billing#0" in keys
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "routed"


# a model as classifier ---------------------------------------------------------------------


async def test_llm_router_tells_the_model_the_routes_and_follows_its_decision(rt: Runtime) -> None:
    model = ScriptedModel([{"route": "tech", "confidence": 0.9, "reason": "an error message"}])
    router = Router.llm("support", [BILLING, TECH], model=model, threshold=0.5, fallback=HUMAN)
    assert router.classifier.name == "support.classify"
    result = await rt.run(router, "it crashes")
    assert result.output == "tech:it crashes"
    model.assert_consumed()
    request = model.calls[0]
    system = request.messages[0].content
    assert "- billing: handles billing questions" in system
    assert "- tech: handles tech questions" in system
    assert request.output_schema is not None and request.output_schema.strict
    assert request.messages[-1].content == "it crashes"
    [event] = await decisions(rt, result.run_id)
    assert event["confidence"] == 0.9 and event["reason"] == "an error message"
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert "/support/support.classify#0/model#0" in keys


async def test_llm_router_custom_instructions_keep_the_route_list(rt: Runtime) -> None:
    model = ScriptedModel([{"route": "money", "confidence": 1.0, "reason": ""}])
    router = Router.llm("r", {"money": BILLING}, model=model, instructions="Be careful.")
    assert (await rt.run(router, "x")).output == "billing:x"
    system = model.calls[0].messages[0].content
    assert system.startswith("Be careful.") and "- money: handles billing questions" in system


async def test_llm_hallucinated_route_goes_to_fallback(rt: Runtime) -> None:
    model = ScriptedModel([{"route": "shipping", "confidence": 0.97, "reason": "parcel"}])
    router = Router.llm("r", [BILLING, TECH], model=model, threshold=0.5, fallback=HUMAN)
    result = await rt.run(router, "where is my parcel")
    assert result.output == "human:where is my parcel"
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "fallback" and event["note"] == "unknown route 'shipping'"
    assert event["confidence"] == 0.97


async def test_llm_unsure_without_fallback_waits_in_triage(rt: Runtime) -> None:
    model = ScriptedModel([{"route": "billing", "confidence": 0.3, "reason": "maybe"}])
    router = Router.llm("r", [BILLING, TECH], model=model, threshold=0.8)
    result = await rt.run(router, "hm")
    assert result.status == RunStatus.WAITING
    [event] = await decisions(rt, result.run_id)
    assert event["outcome"] == "triage" and event["confidence"] == 0.3
    assert isinstance(result.exception, Suspended)
    payload = result.exception.payload
    assert isinstance(payload, dict) and payload["context"]["decision"]["reason"] == "maybe"


async def test_llm_decision_is_replayed_not_asked_again(rt: Runtime) -> None:
    failures = iter([ValueError("flaky")])

    @agent
    def tech(x: str) -> str:
        for error in failures:
            raise error
        return "fixed"

    model = ScriptedModel([{"route": "tech", "confidence": 0.9, "reason": ""}])
    router = Router.llm("r", [BILLING, tech], model=model, threshold=0.5)
    first = await rt.run(router, "bug")
    assert first.status == RunStatus.FAILED
    second = await rt.resume(first.run_id, router)
    assert second.status == RunStatus.COMPLETED and second.output == "fixed"
    assert len(model.calls) == 1  # a second ask would also raise ScriptExhaustedError


async def test_llm_out_of_range_confidence_is_asked_again(rt: Runtime) -> None:
    model = ScriptedModel(
        [
            {"route": "tech", "confidence": 7, "reason": "very sure"},
            {"route": "tech", "confidence": 0.7, "reason": "sure"},
        ]
    )
    router = Router.llm("r", [BILLING, TECH], model=model)
    result = await Runtime("memory://", retry=Retry(attempts=2, initial_delay=0)).run(router, "x")
    assert result.output == "tech:x"
    model.assert_consumed()
