"""The names the patterns had before their limits, statuses and results were unified still
work for one release, each with a `DeprecationWarning` (the suite turns warnings into
errors, so each case also proves the old name warns rather than silently passing)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from podium import agent
from podium.patterns.graph import Graph
from podium.patterns.groupchat import ChatResult, ChatTurn, GroupChat
from podium.patterns.handoff import Handoff, HandoffTo
from podium.patterns.loop import Loop, LoopResult
from podium.patterns.magentic import AnswerRequest, Magentic, MagenticResult, TaskLedger
from podium.patterns.supervisor import Plan, Supervisor, SupervisorResult, SynthesisRequest
from podium.runtime.budget import Budget


def stable_id(value: object) -> str:
    """A test id without memory addresses, so every xdist worker collects the same ids."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(value))


@agent
def talk(turn: ChatTurn) -> str:
    return "hello"


@agent
def inc(x: int) -> int:
    return x + 1


@agent
def plan_nothing(request: Any) -> Plan:
    return Plan()


@agent
def pass_on(x: Any) -> HandoffTo:
    return HandoffTo("inc")


def supervisor(**kw: Any) -> Supervisor:
    return Supervisor("s", [inc], planner=plan_nothing, **kw)


def magentic(**kw: Any) -> Magentic:
    return Magentic("m", [inc], ledger=plan_nothing, progress=plan_nothing, **kw)


OPTIONS: list[tuple[Any, dict[str, Any], str, Any]] = [
    # (make, old keyword, where the value lands now, the value read there)
    (supervisor, {"max_rounds": 4}, "limits.max_turns", 4),
    (supervisor, {"max_plan_errors": 0}, "max_reasks", 0),
    (supervisor, {"max_tokens": 500}, "budget", Budget(tokens=500)),
    (magentic, {"max_rounds": 4}, "limits.max_turns", 4),
    (magentic, {"max_tokens": 500}, "budget", Budget(tokens=500)),
    (lambda **kw: GroupChat("g", [talk], **kw), {"deadlock_turns": 4}, "limits.max_stalls", 4),
    (lambda **kw: GroupChat("g", [talk], **kw), {"manager_retries": 0}, "max_reasks", 0),
    (lambda **kw: Handoff("h", [pass_on, inc], **kw), {"max_handoffs": 3}, "limits.max_turns", 4),
    (lambda **kw: Loop("l", inc, **kw), {"max_iterations": 4}, "limits.max_turns", 4),
    (lambda **kw: Loop("l", inc, **kw), {"no_progress": None}, "limits.max_stalls", None),
    (lambda **kw: Graph("g", **kw), {"max_steps": 4}, "limits.max_turns", 4),
]


@pytest.mark.parametrize(("make", "old", "where", "value"), OPTIONS, ids=stable_id)
def test_an_old_keyword_still_sets_its_new_option_and_warns(
    make: Any, old: dict[str, Any], where: str, value: Any
) -> None:
    (name,) = old
    with pytest.warns(DeprecationWarning, match=rf"\({name}=\.\.\.\) is deprecated"):
        pattern = make(**old)
    found: Any = pattern
    for part in where.split("."):
        found = getattr(found, part)
    assert found == value


def test_max_tokens_keeps_the_other_limits_of_a_budget() -> None:
    with pytest.warns(DeprecationWarning, match="max_tokens"):
        sup = supervisor(budget=Budget(usd=1.0), max_tokens=500)
    assert sup.budget == Budget(tokens=500, usd=1.0)


ATTRIBUTES: list[tuple[Any, str, Any]] = [
    (supervisor(max_turns=4), "max_rounds", 4),
    (supervisor(max_reasks=1), "max_plan_errors", 1),
    (magentic(max_turns=4), "max_rounds", 4),
    (GroupChat("g", [talk], max_stalls=4), "deadlock_turns", 4),
    (GroupChat("g", [talk], max_reasks=1), "manager_retries", 1),
    (Handoff("h", [pass_on, inc], max_turns=4), "max_handoffs", 3),
    (Loop("l", inc, max_turns=4), "max_iterations", 4),
    (Loop("l", inc, max_stalls=None), "no_progress", None),
    (Graph("g", max_turns=4), "max_steps", 4),
]


@pytest.mark.parametrize(("pattern", "old", "value"), ATTRIBUTES, ids=stable_id)
def test_an_old_attribute_still_reads_and_warns(pattern: Any, old: str, value: Any) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{type(pattern).__name__}\.{old} is deprec"):
        assert getattr(pattern, old) == value


STATUSES: list[tuple[Any, str]] = [
    # (a result as it ends now, the status it had before)
    (SupervisorResult(status="max_turns"), "max_rounds"),
    (SupervisorResult(status="stalled"), "no_progress"),
    (MagenticResult(status="completed"), "satisfied"),
    (MagenticResult(status="max_turns"), "max_rounds"),
    (ChatResult(status="completed", reason="consensus on 'buy'"), "consensus"),
    (ChatResult(status="completed", reason="approved by 'critic'"), "approved"),
    (ChatResult(status="completed", reason="until() held"), "terminated"),
    (ChatResult(status="stalled", reason="deadlock: no progress"), "deadlock"),
    (ChatResult(status="escalated", reason="deadlock decided by a person"), "decided"),
    (LoopResult(output=1, status="completed"), "condition"),
    (LoopResult(output=1, status="max_turns"), "max_iterations"),
    (LoopResult(output=1, status="stalled"), "no_progress"),
    (SynthesisRequest(goal="g", status="stalled", results={}, gaps={}), "no_progress"),
    (AnswerRequest(task="t", status="completed", ledger=TaskLedger()), "satisfied"),
]


@pytest.mark.parametrize(("result", "old"), STATUSES, ids=lambda v: str(v)[:40])
def test_an_old_status_still_compares_equal_and_warns(result: Any, old: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"status '{old}' is now '{result.status}'"):
        assert result.status == old
    assert result.status != "something else"
    assert result.model_dump(mode="json")["status"] == str(result.status) != old
    again = type(result).model_validate(result.model_dump())  # read back from the journal
    with pytest.warns(DeprecationWarning, match=f"status '{old}' is now"):
        assert again.status == old


def test_an_escalation_to_a_fallback_kept_its_name() -> None:
    out = ChatResult(status="escalated", reason="deadlock decided by 'chair'")
    assert out.status == "escalated" and out.status != "decided"


FIELDS: list[tuple[Any, str, str, Any]] = [
    # (a result class, an old field name, its new name, a value)
    (SupervisorResult, "rounds", "turns", 3),
    (MagenticResult, "rounds", "turns", 3),
    (MagenticResult, "answer", "output", "42"),
    (ChatResult, "answer", "output", "42"),
    (LoopResult, "iterations", "turns", 3),
]


@pytest.mark.parametrize(("cls", "old", "new", "value"), FIELDS, ids=stable_id)
def test_an_old_result_field_still_reads_and_builds_and_warns(
    cls: Any, old: str, new: str, value: Any
) -> None:
    base: dict[str, Any] = {"status": "completed"}
    if old != "answer":
        base["output"] = None
    with pytest.warns(DeprecationWarning, match=rf"{cls.__name__}\({old}=\.\.\.\) is deprec"):
        built = cls(**{**base, old: value})
    assert getattr(built, new) == value
    with pytest.warns(DeprecationWarning, match=rf"{cls.__name__}\.{old} is deprecated"):
        assert getattr(built, old) == value
