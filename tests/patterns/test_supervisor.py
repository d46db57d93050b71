"""Supervisor: plans over named workers, parallel waves, review verdicts, synthesis, limits
(rounds, tokens, no progress), timeouts as gaps, malformed plans, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from podium import (
    NO_RETRY,
    RunContext,
    RunStatus,
    Runtime,
    StepError,
    StepStatus,
    UsageError,
    agent,
)
from podium.core.tools import ToolSpec
from podium.errors import BudgetExceededError, OutputTypeError
from podium.models.base import Message, OutputSchema
from podium.models.scripted import ScriptedModel
from podium.patterns.supervisor import (
    Assignment,
    Plan,
    PlanError,
    PlanRequest,
    Review,
    ReviewRequest,
    Subtask,
    Supervisor,
    SupervisorResult,
    SynthesisRequest,
)
from podium.runtime.budget import Budget


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def planner_of(*plans: Plan) -> Any:
    """A planner agent that answers with the given plans in turn and keeps what it saw."""
    seen: list[PlanRequest] = []

    @agent(name="planner")
    def planner(request: PlanRequest) -> Plan:
        seen.append(request)
        return plans[min(len(seen), len(plans)) - 1]

    planner.seen = seen  # type: ignore[attr-defined]
    return planner


def plan(*subtasks: tuple[Any, ...], final: bool = True) -> Plan:
    """`plan(("id", "worker", "instruction"[, ["dep", ...]]), ...)`"""
    return Plan(
        subtasks=[
            Subtask(id=s[0], worker=s[1], instruction=s[2], depends_on=s[3] if len(s) > 3 else [])
            for s in subtasks
        ],
        final=final,
    )


def echo_worker(name: str, calls: list[str] | None = None) -> Any:
    @agent(name=name, description=f"the {name} desk")
    def work(task: Assignment) -> str:
        if calls is not None:
            calls.append(task.subtask_id)
        return f"{name} did {task.instruction}"

    return work


def reviewer_of(verdicts: dict[str, list[Review]]) -> Any:
    """A reviewer that gives each subtask its planned verdicts in turn, then accepts."""

    @agent(name="reviewer")
    def review(request: ReviewRequest) -> Review:
        queue = verdicts.get(request.subtask.id, [])
        return queue.pop(0) if queue else Review(verdict="accept")

    return review


async def events(rt: Runtime, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data or {} for e in await rt.events(run_id) if e.kind == kind]


# the loop --------------------------------------------------------------------------------


async def test_independent_subtasks_run_at_once_and_dependents_get_their_results(
    rt: Runtime,
) -> None:
    started = {"sizing": asyncio.Event(), "rivals": asyncio.Event()}

    def meeting(name: str, other: str) -> Any:
        @agent(name=name)
        async def work(task: Assignment) -> str:
            started[name].set()
            # Finishes only if the other worker runs at the same time.
            await asyncio.wait_for(started[other].wait(), 2)
            return f"{name}: {task.instruction}"

        return work

    seen_inputs: list[dict[str, Any]] = []

    @agent(name="writer")
    def writer(task: Assignment) -> str:
        seen_inputs.append(task.inputs)
        return "report"

    @agent(name="synth")
    def synth(request: SynthesisRequest) -> str:
        return f"{request.status}: {sorted(request.results)}"

    planner = planner_of(
        plan(
            ("w", "writer", "write it up", ["s", "r"]),
            ("s", "sizing", "size the market"),
            ("r", "rivals", "list rivals"),
        )
    )
    sup = Supervisor(
        "research",
        [meeting("sizing", "rivals"), meeting("rivals", "sizing"), writer],
        planner=planner,
        synthesizer=synth,
    )
    result = await rt.run(sup, "EV chargers")
    assert result.status == RunStatus.COMPLETED, result.error
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.turns == 2 and out.gaps == {}
    assert out.output == "completed: ['r', 's', 'w']"
    assert seen_inputs == [{"s": "sizing: size the market", "r": "rivals: list rivals"}]
    assert planner.seen[0].goal == "EV chargers"
    assert planner.seen[0].workers == {"sizing": "", "rivals": "", "writer": ""}
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == [
        "/research",
        "/research/planner#0",
        "/research/sizing#0",
        "/research/rivals#0",
        "/research/writer#0",
        "/research/synth#0",
    ]
    [stop] = await events(rt, result.run_id, "supervisor.stop")
    assert stop["status"] == "completed" and stop["accepted"] == ["r", "s", "w"]


async def test_reviewer_retries_with_feedback_and_reassigns(rt: Runtime) -> None:
    feedback_seen: list[tuple[str, str, int]] = []

    def worker(name: str) -> Any:
        @agent(name=name)
        def work(task: Assignment) -> str:
            feedback_seen.append((name, task.feedback, task.attempt))
            return f"{name} v{task.attempt}"

        return work

    reviewer = reviewer_of(
        {
            "a": [Review(verdict="retry", feedback="cite sources")],
            "b": [Review(verdict="reassign", to_worker="senior", feedback="too hard")],
        }
    )
    sup = Supervisor(
        "desk",
        [worker("junior"), worker("senior")],
        planner=planner_of(plan(("a", "junior", "task a"), ("b", "junior", "task b"))),
        reviewer=reviewer,
    )
    result = await rt.run(sup, "goal")
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.turns == 2
    assert out.results == {"a": "junior v2", "b": "senior v2"}
    assert out.output == out.results  # no synthesizer: the results themselves
    assert feedback_seen == [
        ("junior", "", 1),
        ("junior", "", 1),
        ("junior", "cite sources", 2),
        ("senior", "too hard", 2),
    ]
    reviews = await events(rt, result.run_id, "supervisor.review")
    assert [(r["subtask"], r["verdict"], r["to_worker"]) for r in reviews] == [
        ("a", "retry", None),
        ("b", "reassign", "senior"),
        ("a", "accept", None),
        ("b", "accept", None),
    ]
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert "/desk/junior#2" in keys and "/desk/senior#0" in keys and "/desk/reviewer#3" in keys


async def test_text_workers_get_the_instruction_with_feedback_and_inputs(rt: Runtime) -> None:
    got: list[str] = []

    @agent
    def scribe(text: str) -> str:
        got.append(text)
        return "draft"

    sup = Supervisor(
        "s",
        [scribe],
        planner=planner_of(plan(("one", "scribe", "outline"))),
    )
    sup2 = Supervisor(
        "s2",
        [scribe],
        planner=planner_of(plan(("x", "scribe", "outline"), ("y", "scribe", "expand", ["x"]))),
        reviewer=reviewer_of({"y": [Review(verdict="retry", feedback="shorter")]}),
    )
    assert (await rt.run(sup, "g")).output.results == {"one": "draft"}
    assert (await rt.run(sup2, "g")).output.status == "completed"
    assert got[0] == "outline"
    assert got[2] == "expand\n\nResult of x: draft"
    assert got[3] == "expand\n\nFeedback on your previous attempt: shorter\n\nResult of x: draft"


async def test_planner_is_asked_again_when_its_plan_is_not_final(rt: Runtime) -> None:
    planner = planner_of(
        plan(("a", "w", "first"), final=False),
        plan(("b", "w", "second", ["a"]), final=False),
        Plan(subtasks=[]),
    )
    result = await rt.run(Supervisor("s", [echo_worker("w")], planner=planner), "g")
    out: SupervisorResult = result.output
    assert out.status == "completed" and list(out.results) == ["a", "b"] and out.turns == 2
    assert [r.results for r in planner.seen] == [{}, {"a": "w did first"}, out.results]
    assert [r.round for r in planner.seen] == [1, 2, 3]


# limits ----------------------------------------------------------------------------------


async def test_same_plan_twice_ends_as_stalled(rt: Runtime) -> None:
    planner = planner_of(
        plan(("a", "w", "look"), final=False), plan(("a2", "w", "look"), final=False)
    )
    result = await rt.run(Supervisor("s", [echo_worker("w")], planner=planner), "g")
    out: SupervisorResult = result.output
    assert result.ok and out.status == "stalled"
    assert out.results == {"a": "w did look"} and out.turns == 1
    [stop] = await events(rt, result.run_id, "supervisor.stop")
    assert stop["status"] == "stalled"


async def test_same_rejected_result_twice_ends_as_stalled(rt: Runtime) -> None:
    reviewer = reviewer_of(
        {"a": [Review(verdict="retry", feedback="more"), Review(verdict="retry", feedback="more")]}
    )

    @agent
    def stubborn(task: Assignment) -> str:
        return "the same answer"

    sup = Supervisor(
        "s", [stubborn], planner=planner_of(plan(("a", "stubborn", "x"))), reviewer=reviewer
    )
    out: SupervisorResult = (await rt.run(sup, "g")).output
    assert out.status == "stalled" and out.turns == 2
    assert out.results == {} and out.gaps == {"a": "not finished (stalled)"}


async def test_max_turns_stops_a_reviewer_that_never_accepts(rt: Runtime) -> None:
    @agent(name="never")
    def never(request: ReviewRequest) -> Review:
        return Review(verdict="retry", feedback="again")

    @agent
    def w(task: Assignment) -> str:
        return f"try {task.attempt}"

    sup = Supervisor(
        "s", [w], planner=planner_of(plan(("a", "w", "x"))), reviewer=never, max_turns=3
    )
    result = await rt.run(sup, "g")
    out: SupervisorResult = result.output
    assert out.status == "max_turns" and out.turns == 3 and out.reason == "max_turns=3 reached"
    assert out.gaps == {"a": "not finished (max_turns)"}
    assert len([s for s in await rt.steps(result.run_id) if s.agent == "w"]) == 3


async def test_a_refused_call_ends_the_loop_with_what_was_accepted() -> None:
    model = ScriptedModel(
        [
            {
                "subtasks": [{"id": "a", "worker": "w", "instruction": "x", "depends_on": []}],
                "final": False,
            },
            "never asked",
        ]
    )
    budgeted = Runtime("memory://", retry=NO_RETRY)
    sup = Supervisor.llm(
        "s",
        [echo_worker("w"), echo_worker("v")],
        model=model,
        review=False,
        budget=Budget(model_calls=1),
    )
    result = await budgeted.run(sup, "g")
    out: SupervisorResult = result.output
    assert result.ok and out.status == "budget_exhausted" and out.output == {"a": "w did x"}
    assert out.results == {"a": "w did x"} and out.turns == 1 and out.gaps == {}
    assert out.reason.startswith("agent 's' at /s budget exhausted: model_calls 1 of 1 spent")
    assert len(model.calls) == 1  # neither a second plan nor a synthesis was asked for
    [stop] = await events(budgeted, result.run_id, "supervisor.stop")
    assert stop["status"] == "budget_exhausted" and stop["accepted"] == ["a"]


async def test_work_cut_off_by_the_budget_is_named_in_the_gaps() -> None:
    @agent
    async def thinker(task: Assignment, ctx: RunContext) -> str:
        first = await ctx.call(writer_model, task.instruction)
        return await ctx.call(writer_model, first)  # the second model call is refused

    from podium import LLMAgent

    writer_model = LLMAgent("pen", model=ScriptedModel(["drafted"] * 3), instructions="Write.")
    planner = planner_of(plan(("a", "w", "x"), ("b", "thinker", "y"), ("c", "w", "z", ["b"])))
    rt = Runtime("memory://", retry=NO_RETRY)
    sup = Supervisor(
        "s",
        [echo_worker("w"), thinker],
        planner=planner,
        synthesizer=writer_model,
        budget=Budget(model_calls=1),
    )
    out: SupervisorResult = (await rt.run(sup, "g")).output
    assert out.status == "budget_exhausted" and out.output == {"a": "w did x"}
    # What the wave finished is kept; what the door refused, and what waits on it, are gaps.
    assert out.gaps == {k: "not finished (budget_exhausted)" for k in ("b", "c")}


async def test_a_budget_above_the_supervisor_fails_the_run_instead_of_a_partial_result() -> None:
    """Only the pattern's own budget ends its loop with what it had; the run's budget is
    not the pattern's to settle, so the run fails with it (completed steps stay journaled)."""
    model = ScriptedModel(
        [
            {
                "subtasks": [{"id": "a", "worker": "w", "instruction": "x", "depends_on": []}],
                "final": False,
            },
            "never asked",
        ]
    )
    rt = Runtime("memory://", retry=NO_RETRY)
    sup = Supervisor.llm("s", [echo_worker("w")], model=model, review=False)
    result = await rt.run(sup, "g", budget=Budget(model_calls=1))
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, BudgetExceededError) and result.exception.key == ""
    done = {s.agent for s in await rt.steps(result.run_id) if s.status == "completed"}
    assert {"w", "model"} <= done  # the plan and the work it led to stay journaled


def test_renamed_options_still_work_and_warn() -> None:
    w, p = echo_worker("w"), planner_of(Plan())
    with pytest.warns(DeprecationWarning, match=r"Supervisor\(max_rounds=...\) is deprecated"):
        sup = Supervisor("s", [w], planner=p, max_rounds=4)
    assert sup.limits.max_turns == 4
    with pytest.warns(
        DeprecationWarning, match=r"max_plan_errors=...\) is deprecated: use max_reasks"
    ):
        assert Supervisor("s", [w], planner=p, max_plan_errors=0).max_reasks == 0
    with pytest.warns(DeprecationWarning, match=r"max_tokens=...\) is deprecated"):
        sup = Supervisor("s", [w], planner=p, max_tokens=500)
    assert sup.budget == Budget(tokens=500)  # the door's budget slot counts, not the pattern
    with pytest.warns(DeprecationWarning, match="Supervisor.max_rounds is deprecated"):
        assert sup.max_rounds == 10
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_round'"):
        Supervisor("s", [w], planner=p, max_round=4)


async def test_renamed_result_fields_and_statuses_still_match_and_warn(rt: Runtime) -> None:
    planner = planner_of(
        plan(("a", "w", "look"), final=False), plan(("b", "w", "look"), final=False)
    )
    out: SupervisorResult = (
        await rt.run(Supervisor("s", [echo_worker("w")], planner=planner), "g")
    ).output
    assert out.status == "stalled" and out.reason == "the planner gave the same plan again"
    with pytest.warns(DeprecationWarning, match="status 'no_progress' is now 'stalled'"):
        assert out.status == "no_progress"
    with pytest.warns(DeprecationWarning, match="SupervisorResult.rounds is deprecated"):
        assert out.rounds == 1
    assert out.status != "completed" and out.model_dump()["status"] == "stalled"


# gaps --------------------------------------------------------------------------------------


async def test_a_worker_that_times_out_is_a_gap_and_the_rest_goes_on(rt: Runtime) -> None:
    @agent
    async def slow(task: Assignment) -> str:
        await asyncio.sleep(5)
        return "late"

    @agent(name="synth")
    def synth(request: SynthesisRequest) -> str:
        return f"from {sorted(request.results)}, missing {sorted(request.gaps)}"

    sup = Supervisor(
        "s",
        [slow, echo_worker("fast")],
        planner=planner_of(
            plan(("a", "slow", "dig"), ("b", "fast", "skim"), ("c", "fast", "sum", ["a"]))
        ),
        synthesizer=synth,
        worker_timeout={"slow": 0.05},
    )
    result = await rt.run(sup, "g")
    out: SupervisorResult = result.output
    assert out.status == "completed"
    assert out.results == {"b": "fast did skim"}
    assert out.gaps["a"].startswith("StepTimeoutError: agent 'slow' at /s/slow#0 timed out")
    assert out.gaps["c"] == "depends on 'a', which has no result"
    assert out.output == "from ['b'], missing ['a', 'c']"
    gaps = await events(rt, result.run_id, "supervisor.gap")
    assert [(g["subtask"], g["worker"]) for g in gaps] == [("a", "slow"), ("c", "fast")]


async def test_a_failing_worker_fails_the_run_unless_errors_are_gaps(rt: Runtime) -> None:
    @agent
    def broken(task: Assignment) -> str:
        raise ValueError("no data")

    planner = planner_of(plan(("a", "broken", "x"), ("b", "ok", "y")))
    failing = Supervisor("s", [broken, echo_worker("ok")], planner=planner)
    result = await rt.run(failing, "g")
    assert result.status == RunStatus.FAILED
    assert "agent 'broken' at /s/broken#0 failed: ValueError: no data" in (result.error or "")

    lenient = Supervisor("s", [broken, echo_worker("ok")], planner=planner, worker_errors="gap")
    out: SupervisorResult = (await rt.run(lenient, "g")).output
    assert out.results == {"b": "ok did y"} and out.gaps == {"a": "ValueError: no data"}


# malformed plans -----------------------------------------------------------------------


async def test_unknown_worker_makes_the_planner_answer_again_with_the_problem(
    rt: Runtime,
) -> None:
    planner = planner_of(plan(("a", "ghost", "x")), plan(("a", "w", "x")))
    result = await rt.run(Supervisor("s", [echo_worker("w")], planner=planner), "g")
    assert result.output.results == {"a": "w did x"}
    assert planner.seen[1].problems == [
        "subtask 'a' names unknown worker 'ghost'; workers are ['w']"
    ]
    plans = await events(rt, result.run_id, "supervisor.plan")
    assert [p["problem"] is None for p in plans] == [False, True]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (plan(("a", "ghost", "x")), "names unknown worker 'ghost'; workers are ['w']"),
        (plan(("a", "w", "x"), ("a", "w", "y")), "subtask id 'a' is used twice"),
        (plan(("a", "w", "x", ["zz"])), "subtask 'a' depends on unknown subtask 'zz'"),
        (plan(("a", "w", "x", ["b"]), ("b", "w", "y", ["a"])), "in a cycle: a -> b -> a"),
    ],
)
async def test_a_plan_that_stays_malformed_fails_with_a_clear_error(
    rt: Runtime, bad: Plan, problem: str
) -> None:
    sup = Supervisor("s", [echo_worker("w")], planner=planner_of(bad), max_reasks=1)
    result = await rt.run(sup, "g")
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, PlanError)
    assert "Supervisor 's' at /s: planner 'planner' gave 2 malformed plan(s)" in str(result.error)
    assert problem in str(result.error)


async def test_a_planner_answer_that_is_not_a_plan_names_the_planner_and_its_step(
    rt: Runtime,
) -> None:
    @agent(name="planner")
    def sloppy(request: PlanRequest) -> dict[str, Any]:
        return {"subtasks": [{"id": "a", "instruction": "x"}]}

    result = await rt.run(Supervisor("s", [echo_worker("w")], planner=sloppy), "g")
    assert result.status == RunStatus.FAILED
    error = result.exception
    assert isinstance(error, StepError) and isinstance(error.cause, OutputTypeError)
    assert (error.cause.agent, error.cause.step) == ("planner", "/s/planner#0")
    assert "is not a Plan: field 'subtasks.0.worker': Field required" in str(error.cause)


async def test_llm_planner_with_scripted_structured_outputs(rt: Runtime) -> None:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> Any:
        if schema is None:
            return "Final: " + messages[-1].content[:20]
        if schema.name == "Plan":
            if 'problems":[]' in messages[-1].content:
                return {
                    "subtasks": [
                        {"id": "1", "worker": "nobody", "instruction": "x", "depends_on": []}
                    ],
                    "final": True,
                }
            return {
                "subtasks": [{"id": "1", "worker": "w", "instruction": "x", "depends_on": []}],
                "final": True,
            }
        return {"subtask_id": "1", "verdict": "accept", "to_worker": None, "feedback": ""}

    model = ScriptedModel(answer)
    sup = Supervisor.llm("s", [echo_worker("w")], model=model)
    result = await rt.run(sup, "goal")
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.results == {"1": "w did x"}
    assert out.output.startswith("Final: ")
    assert model.calls[0].output_schema is not None
    assert "- w: the w desk" in model.calls[0].messages[0].content
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys[:4] == ["/s", "/s/s.planner#0", "/s/s.planner#0/model#0", "/s/s.planner#1"]
    assert "/s/s.reviewer#0/model#0" in keys and "/s/s.synthesizer#0/model#0" in keys


async def test_reassigning_to_an_unknown_worker_fails_clearly(rt: Runtime) -> None:
    reviewer = reviewer_of({"a": [Review(verdict="reassign", to_worker="ghost")]})
    sup = Supervisor(
        "s", [echo_worker("w")], planner=planner_of(plan(("a", "w", "x"))), reviewer=reviewer
    )
    result = await rt.run(sup, "g")
    assert result.status == RunStatus.FAILED
    assert "reassigned subtask 'a' to unknown worker 'ghost'; workers are ['w']" in str(
        result.error
    )


async def test_an_empty_first_plan_completes_at_once(rt: Runtime) -> None:
    result = await rt.run(Supervisor("s", [echo_worker("w")], planner=planner_of(Plan())), "g")
    out: SupervisorResult = result.output
    assert out.status == "completed" and out.turns == 0 and out.output == {}


def test_construction_errors_name_the_supervisor() -> None:
    w = echo_worker("w")
    p = planner_of(Plan())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"workers": []}, "needs at least one worker"),
        ({"workers": [w, w]}, "worker 'w' is named twice"),
        ({"workers": [object()]}, "is not an agent"),
        ({"planner": None}, "needs a planner agent"),
        ({"reviewer": "nope"}, "reviewer 'nope' is not an agent"),
        ({"max_turns": 0}, "max_turns must be a positive integer"),
        ({"max_stalls": 0}, "max_stalls must be a positive integer"),
        ({"deadline": 0}, "deadline must be a positive number of seconds"),
        ({"max_reasks": -1}, "max_reasks must be an integer from 0 to 100"),
        ({"worker_timeout": {"x": 1.0}}, "worker_timeout names unknown worker 'x'"),
        ({"worker_timeout": -1.0}, "worker_timeout for 'w' must be positive"),
        ({"worker_errors": "ignore"}, "worker_errors must be one of 'fail', 'gap'; got 'ignore'"),
    ]
    for overrides, message in cases:
        kwargs: dict[str, Any] = {"workers": [w], "planner": p, **overrides}
        with pytest.raises(UsageError, match="Supervisor 'sup'") as info:
            Supervisor("sup", **kwargs)
        assert message in str(info.value)


# durability ------------------------------------------------------------------------------


async def test_resume_replays_plan_and_finished_workers_on_sqlite(tmp_path: Path) -> None:
    calls: list[str] = []
    broken = {"on": True}

    @agent(name="planner")
    def planner(request: PlanRequest) -> Plan:
        calls.append("planner")
        return plan(("a", "w", "one"), ("b", "flaky", "two"), ("c", "w", "three", ["a", "b"]))

    @agent
    def flaky(task: Assignment) -> str:
        calls.append("flaky")
        if broken["on"]:
            raise ValueError("feed down")
        return "flaky ok"

    @agent(name="reviewer")
    def reviewer(request: ReviewRequest, ctx: RunContext) -> Review:
        calls.append(f"review {request.subtask.id}")
        return Review(verdict="accept")

    sup = Supervisor("s", [echo_worker("w", calls), flaky], planner=planner, reviewer=reviewer)
    url = f"sqlite:///{tmp_path / 'sup.db'}"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(sup, "g")
        assert first.status == RunStatus.FAILED and "feed down" in (first.error or "")
        assert calls == ["planner", "a", "flaky"]
    broken["on"] = False
    calls.clear()
    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, sup)
        assert second.status == RunStatus.COMPLETED, second.error
        out: SupervisorResult = second.output
        assert isinstance(out, SupervisorResult)
        assert out.results == {"a": "w did one", "b": "flaky ok", "c": "w did three"}
        # The plan and worker a were journaled: only the failed worker and what follows ran.
        assert calls == ["flaky", "review a", "review b", "c", "review c"]
        steps = await rt.steps(first.run_id)
        assert all(s.status == StepStatus.COMPLETED for s in steps)
        replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
        assert replayed == ["/s/planner#0", "/s/w#0"]


async def test_with_more_patience_a_repeated_plan_is_asked_for_again(rt: Runtime) -> None:
    planner = planner_of(
        plan(("a", "w", "look"), final=False),
        plan(("b", "w", "look"), final=False),
        plan(("c", "w", "look"), final=False),
    )
    sup = Supervisor("s", [echo_worker("w")], planner=planner, max_stalls=2)
    out: SupervisorResult = (await rt.run(sup, "g")).output
    assert out.status == "stalled" and len(planner.seen) == 3
    assert out.results == {"a": "w did look"}  # a repeated plan is not adopted
