"""`Supervisor`: a planner splits a goal into subtasks for named workers, a reviewer judges
each result, a synthesis step writes the answer.

    desk = Supervisor(
        "research",
        workers=[sizing, competitors, survey],
        planner=planner,            # an agent answering with a `Plan`
        reviewer=reviewer,          # an agent answering with a `Review` (None: accept all)
        synthesizer=writer,         # gets a `SynthesisRequest` (None: output is the results)
    )

One turn is one wave: every pending subtask whose `depends_on` are all accepted runs at once
(the calls of one `Act` of the turn driver), then each result is reviewed, in plan order. The
reviewer accepts it, asks the same worker to `retry` with feedback, or `reassign`s it to
another worker; both come back in the next turn. The planner is asked again only when the
plan it gave is worked off and it said `final=False`; an empty plan means "done".

Every planner, worker, reviewer and synthesis call goes through the door, so each is a
journaled step (`/<name>/planner#0`, `/<name>/<worker>#n`, ...) and a resumed run replays
them; the decisions between them are a pure function of their outputs (`_decide`).

The loop ends with a status in the `SupervisorResult` (the shared vocabulary of `_turns`):

- `completed`: the planner's work is all settled (accepted, or a gap);
- `max_turns`: `max_turns` waves ran and work was left;
- `stalled`: the planner gave the same plan again, or a worker handed in a result that had
  already been rejected for that subtask, `max_stalls` turns in a row (default 1);
- `budget_exhausted`: the door refused a call (`budget=`, or the run's); nothing more is
  asked, no synthesis: the output is the accepted results, as without a synthesizer;
- `deadline`: `deadline` seconds passed.

A worker that times out (its own timeout, or `worker_timeout`), after the door's retries, is a
gap: the supervisor goes on with what it has and names the gap in `gaps` and a
`supervisor.gap` event. Any other worker failure fails the supervisor, unless
`worker_errors="gap"`. Subtasks that depend on a gap become gaps too; so does what is left
when the loop stops.

A plan that names an unknown worker (or repeats an id, depends on an unknown subtask, or has a
cycle) is a malformed planner answer: the planner is asked again, with the problem stated in
`PlanRequest.problems`, up to `max_reasks` times; then the run fails with `PlanError` naming
the subtask, the worker and the known workers. A reviewer reassigning to an unknown worker
fails at once with `PlanError`.

Events: `supervisor.plan`, `supervisor.review`, `supervisor.gap`, `supervisor.stop`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.kinds import (
    TOKENS_RENAMED,
    Builder,
    Canvas,
    Loc,
    NodeFields,
    failed,
    one_of,
    register,
)
from podium.core.bounds import REASKS, SECONDS, TURNS
from podium.core.choices import choice
from podium.core.serde import dumps
from podium.core.tools import closed_schema as _closed_schema
from podium.errors import PlanError, StepError, StepTimeoutError, UsageError
from podium.models.base import ModelSettings
from podium.patterns._common import named_agents
from podium.patterns._progress import fingerprint
from podium.patterns._turns import (
    Act,
    Ask,
    Halt,
    Limited,
    Limits,
    Outcomes,
    PatternResult,
    Status,
    Stop,
    TurnState,
    ask,
    drive,
    exhausted,
    renamed_field,
    renamed_options,
    renamed_status,
    with_max_tokens,
)
from podium.runtime.budget import Budget

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

_LEGACY: dict[str, str] = {"max_turns": "max_rounds", "stalled": "no_progress"}
_RENAMED = {
    "max_rounds": "max_turns",
    "max_plan_errors": "max_reasks",
    "max_tokens": "max_tokens",
}


_CLOSED = ConfigDict(json_schema_extra=_closed_schema)


class WorkerErrors(StrEnum):
    """What a worker's failure does to a supervisor's run: `worker_errors=`."""

    FAIL = "fail"  # the supervisor fails with it
    GAP = "gap"  # the subtask becomes a gap, and the rest goes on


class Subtask(BaseModel):
    """One piece of the goal for one named worker; it runs once every `depends_on` subtask
    has an accepted result, and receives those results."""

    model_config = _CLOSED

    id: str
    worker: str
    instruction: str
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """The planner's answer. No subtasks means the goal is done. With `final=False` the
    planner is asked again once these subtasks are settled."""

    model_config = _CLOSED

    subtasks: list[Subtask] = Field(default_factory=list)
    final: bool = True


class Review(BaseModel):
    """The reviewer's verdict on one result. `subtask_id` may be left empty: each review is
    asked about exactly one subtask."""

    model_config = _CLOSED

    subtask_id: str = ""
    verdict: Literal["accept", "retry", "reassign"]
    to_worker: str | None = None
    feedback: str = ""


class PlanRequest(BaseModel):
    """What the planner sees: the goal, who can work, and what is done so far."""

    goal: Any
    workers: dict[str, str]
    round: int
    results: dict[str, Any] = Field(default_factory=dict)
    gaps: dict[str, str] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)


class Assignment(BaseModel):
    """What a worker receives (a worker whose input type is `str` gets `text()` instead)."""

    goal: Any
    subtask_id: str
    instruction: str
    attempt: int = 1
    feedback: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        parts = [self.instruction]
        if self.feedback:
            parts.append(f"Feedback on your previous attempt: {self.feedback}")
        for sid, value in self.inputs.items():
            shown = value if isinstance(value, str) else dumps(value)
            parts.append(f"Result of {sid}: {shown}")
        return "\n\n".join(parts)


class ReviewRequest(BaseModel):
    goal: Any
    subtask: Subtask
    result: Any
    attempt: int


class SynthesisRequest(BaseModel):
    """What the synthesizer gets: the goal, why the loop ended, and what it has."""

    goal: Any
    status: Status
    reason: str = ""
    results: dict[str, Any]
    gaps: dict[str, str]

    @model_validator(mode="after")
    def _old_status(self) -> SynthesisRequest:
        object.__setattr__(self, "status", renamed_status(self.status, _LEGACY.get(self.status)))
        return self


class SupervisorResult(PatternResult):
    """Why the loop ended, the final output, every accepted result by subtask id, why any
    subtask has none (`gaps`), and how many waves ran (`turns`)."""

    results: dict[str, Any] = Field(default_factory=dict)

    renamed: ClassVar[Mapping[str, str]] = {"rounds": "turns"}
    rounds = renamed_field("rounds", "turns")

    def legacy_status(self) -> str | None:
        return _LEGACY.get(self.status)

    @property
    def complete(self) -> bool:
        return self.status == "completed" and not self.gaps


@dataclass(slots=True)
class _Task:
    subtask: Subtask
    attempt: int = 1
    feedback: str = ""


@dataclass(slots=True)
class _State(TurnState):
    """What one supervisor invocation knows; rebuilt identically on replay."""

    goal: Any
    pending: list[_Task] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    gaps: dict[str, str] = field(default_factory=dict)
    final: bool = False
    phase: Literal["plan", "work", "review", "finish", ""] = ""
    problems: list[str] = field(default_factory=list)  # with the planner's last answers
    wave: list[_Task] = field(default_factory=list)  # running: proposed to the driver
    reviewing: list[tuple[_Task, Any]] = field(default_factory=list)
    rejected: set[tuple[str, str]] = field(default_factory=set)
    status: Status = "completed"
    reason: str = ""


class Supervisor(Limited, AgentBase[Any, SupervisorResult]):
    """A manager with named workers. See the module docstring for the loop and its limits.

    Renamed options, still accepted for one release with a `DeprecationWarning`:
    `max_rounds` (now `max_turns`), `max_plan_errors` (now `max_reasks`) and `max_tokens`
    (now `budget=Budget(tokens=...)`, enforced by the door's budget slot)."""

    def __init__(
        self,
        name: str,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        planner: Any,
        reviewer: Any = None,
        synthesizer: Any = None,
        max_turns: int = 10,
        max_stalls: int = 1,
        deadline: float | None = None,
        max_reasks: int = 2,
        budget: Budget | None = None,
        worker_timeout: float | Mapping[str, float] | None = None,
        worker_errors: WorkerErrors | str = WorkerErrors.FAIL,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("Supervisor", renamed, _RENAMED)
        max_turns = old.get("max_turns", max_turns)
        max_reasks = old.get("max_reasks", max_reasks)
        where = f"Supervisor {name!r}"
        self.workers = named_agents("Supervisor", name, workers, "worker")
        for role, value in (
            ("planner", planner),
            ("reviewer", reviewer),
            ("synthesizer", synthesizer),
        ):
            if value is not None and not _is_agent(value):
                raise UsageError(f"{where}: {role} {value!r} is not an agent")
        if planner is None:
            raise UsageError(f"{where} needs a planner agent")
        self.limits = Limits.checked(
            where, max_turns=max_turns, max_stalls=max_stalls, deadline=deadline
        )
        REASKS.check(where, "max_reasks", max_reasks)
        worker_errors = choice(WorkerErrors, where, "worker_errors", worker_errors)
        self.planner = planner
        self.reviewer = reviewer
        self.synthesizer = synthesizer
        self.max_reasks = max_reasks
        self.worker_timeouts = _check_timeouts(name, worker_timeout, self.workers)
        self.worker_errors = worker_errors
        self._setup(
            name,
            output_type=SupervisorResult,
            retry=retry,
            timeout=timeout,
            description=description,
        )
        self.budget = with_max_tokens(where, budget, old.get("max_tokens"))

    max_rounds = renamed_field("max_rounds", "limits.max_turns")
    max_plan_errors = renamed_field("max_plan_errors", "max_reasks")

    @classmethod
    def llm(
        cls,
        name: str,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        model: Any = None,
        review: bool = True,
        instructions: str | None = None,
        settings: ModelSettings | None = None,
        **options: Any,
    ) -> Supervisor:
        """A supervisor whose planner, reviewer (with `review=True`) and synthesizer are
        `LLMAgent`s on `model`, named `<name>.planner`, `<name>.reviewer` and
        `<name>.synthesizer`. `instructions` prefix the planner's; `settings` go with all
        three's requests, as for `LLMAgent`; `options` go to the constructor (`max_turns`,
        `budget`, `worker_timeout`, ...)."""
        from podium.agents.llm import LLMAgent

        table = named_agents("Supervisor", name, workers, "worker")
        roster = "\n".join(
            f"- {n}: {' '.join((getattr(w, 'description', '') or '').split())}".rstrip(": ")
            for n, w in table.items()
        )
        planner = LLMAgent(
            f"{name}.planner",
            model=model,
            instructions="\n\n".join(
                p for p in (instructions, _PLANNER, f"Workers:\n{roster}") if p
            ),
            output_type=Plan,
            settings=settings,
        )
        reviewer = (
            LLMAgent(
                f"{name}.reviewer",
                model=model,
                instructions=_REVIEWER,
                output_type=Review,
                settings=settings,
            )
            if review
            else None
        )
        writer = LLMAgent(
            f"{name}.synthesizer", model=model, instructions=_SYNTHESIZER, settings=settings
        )
        return cls(name, table, planner=planner, reviewer=reviewer, synthesizer=writer, **options)

    async def run(self, input: Any, ctx: RunContext) -> SupervisorResult:
        st = _State(goal=input)
        stop = await drive(ctx, "supervisor", partial(self._decide, ctx), st, self.limits)
        return SupervisorResult(
            output=stop.output,
            status=stop.status,
            reason=stop.reason,
            gaps=st.gaps,
            turns=st.turns,
            results=st.results,
        )

    # the decision ----------------------------------------------------------------------------
    def _decide(self, ctx: RunContext, st: _State, last: Outcomes | Halt | None) -> Act | Stop:
        """What to do next, given what the last step brought back."""
        if isinstance(last, Halt):
            return self._halted(st, last, ctx)
        if last is not None:
            phase, st.phase = st.phase, ""
            if phase == "plan":
                return self._planned(st, last[0], ctx)
            if phase == "work":
                step = self._worked(st, last, ctx)
                if step is not None:
                    return step
            elif phase == "review":
                self._reviewed(st, last, ctx)
            elif phase == "finish":
                return self._stop(st, last[0])
        return self._next(st)

    def _next(self, st: _State) -> Act | Stop:
        """The start of a turn: done, a plan to ask for, or a wave to run."""
        if not st.pending and st.final:
            return self._finish(st, "completed", "the planner's work is all settled")
        if not st.pending:
            return self._ask_planner(st, opens=True)
        return self._wave(st, opens=True)

    # planning ------------------------------------------------------------------------------
    def _ask_planner(self, st: _State, opens: bool) -> Act:
        request = PlanRequest(
            goal=st.goal,
            workers={n: getattr(w, "description", "") or "" for n, w in self.workers.items()},
            round=st.turns + 1,
            results=st.results,
            gaps=st.gaps,
            problems=list(st.problems),
        )
        st.phase = "plan"
        return Act((Ask(self.planner, request, expect=Plan),), opens=opens)

    def _planned(self, st: _State, plan: Plan, ctx: RunContext) -> Act | Stop:
        """Adopt a plan, or ask again while it is malformed."""
        problem = self._check_plan(plan, st)
        ctx.emit(
            "supervisor.plan",
            round=st.turns + 1,
            subtasks=[s.model_dump() for s in plan.subtasks],
            final=plan.final,
            problem=problem,
        )
        if problem is not None:
            st.problems.append(problem)
            if len(st.problems) > self.max_reasks:
                raise PlanError(
                    f"Supervisor {self.name!r} at {ctx.key}: planner {self.planner.name!r} "
                    f"gave {len(st.problems)} malformed plan(s); last: {problem}"
                )
            return self._ask_planner(st, opens=False)
        st.problems.clear()
        if not plan.subtasks:
            return self._finish(st, "completed", "the planner has nothing more to do")
        shape = sorted((s.worker, s.instruction, sorted(s.depends_on)) for s in plan.subtasks)
        if st.stall.observe(fingerprint(shape)):
            st.final = plan.final
            st.pending = [_Task(s) for s in plan.subtasks]
        else:
            st.reason = "the planner gave the same plan again"
        return self._wave(st, opens=False)

    def _check_plan(self, plan: Plan, st: _State) -> str | None:
        """The first problem with a plan, in words a model can act on, or None."""
        ids: set[str] = set()
        for s in plan.subtasks:
            if s.worker not in self.workers:
                return (
                    f"subtask {s.id!r} names unknown worker {s.worker!r}; "
                    f"workers are {sorted(self.workers)}"
                )
            if s.id in ids or s.id in st.results:
                return f"subtask id {s.id!r} is used twice"
            ids.add(s.id)
        for s in plan.subtasks:
            for dep in s.depends_on:
                if dep not in ids and dep not in st.results and dep not in st.gaps:
                    return f"subtask {s.id!r} depends on unknown subtask {dep!r}"
        cycle = _find_cycle(plan.subtasks)
        return None if cycle is None else f"subtasks depend on each other in a cycle: {cycle}"

    # one wave ------------------------------------------------------------------------------
    def _wave(self, st: _State, opens: bool) -> Act:
        """Every pending subtask whose dependencies are accepted, at once (settled: a timeout
        comes back as an outcome, to become a gap). Nothing changes until it has run."""
        st.wave = [
            t
            for t in st.pending
            if all(d in st.results for d in t.subtask.depends_on)
            and not any(d in st.gaps for d in t.subtask.depends_on)
        ]
        st.phase = "work"
        calls = tuple(self._assignment(t, st) for t in st.wave)
        return Act(calls, opens=opens, counts=True, settle=True)

    def _assignment(self, task: _Task, st: _State) -> Ask:
        s = task.subtask
        worker = self.workers[s.worker]
        assignment = Assignment(
            goal=st.goal,
            subtask_id=s.id,
            instruction=s.instruction,
            attempt=task.attempt,
            feedback=task.feedback,
            inputs={d: st.results[d] for d in s.depends_on},
        )
        text_input = getattr(worker, "input_type", None) is str
        payload: Any = assignment.text() if text_input else assignment
        return Ask(worker, payload, timeout=self.worker_timeouts.get(s.worker))

    def _worked(self, st: _State, outcomes: Outcomes, ctx: RunContext) -> Act | None:
        """Apply a wave: gaps for lost dependencies and timed-out workers, then the
        reviews of what came back (an Act), or None when there is nothing to review."""
        running = {id(t) for t in st.wave}
        waiting: list[_Task] = []
        for task in st.pending:
            lost = [d for d in task.subtask.depends_on if d in st.gaps]
            if lost and id(task) not in running:
                self._gap(st, task.subtask, f"depends on {lost[0]!r}, which has no result", ctx)
            elif id(task) not in running:
                waiting.append(task)
        done: list[tuple[_Task, Any]] = []
        for task, outcome in zip(st.wave, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                done.append((task, outcome))
            elif exhausted(outcome, ctx.key) is not None:
                waiting.append(task)  # refused: the loop stops now, and this is a gap
            else:
                self._gap(st, task.subtask, self._worker_failure(outcome, ctx), ctx)
        st.pending, st.wave = waiting, []
        if self.reviewer is None or not done:
            reviews = [Review(subtask_id=t.subtask.id, verdict="accept") for t, _ in done]
            self._judged(st, done, reviews, ctx)
            return None
        st.reviewing, st.phase = done, "review"
        calls = tuple(
            Ask(
                self.reviewer,
                ReviewRequest(goal=st.goal, subtask=t.subtask, result=out, attempt=t.attempt),
                expect=Review,
            )
            for t, out in done
        )
        return Act(calls)

    def _worker_failure(self, error: BaseException, ctx: RunContext) -> str:
        """The gap's reason for a worker that timed out; any other failure is re-raised
        unless `worker_errors="gap"`."""
        cause = error.cause if isinstance(error, StepError) else error
        timed_out = isinstance(cause, StepTimeoutError) and cause.step.rsplit("/", 1)[0] == ctx.key
        if not timed_out and self.worker_errors == "fail":
            raise error
        return f"{type(cause).__name__}: {cause}"

    def _reviewed(self, st: _State, reviews: Outcomes, ctx: RunContext) -> None:
        done, st.reviewing = st.reviewing, []
        self._judged(st, done, list(reviews), ctx)

    def _judged(
        self, st: _State, done: list[tuple[_Task, Any]], reviews: list[Review], ctx: RunContext
    ) -> None:
        """Act on each verdict in plan order; a result rejected before is no progress (a
        wave with nothing to judge leaves the count as it is)."""
        repeated = False
        for (task, output), review in zip(done, reviews, strict=True):
            repeated = self._apply(st, task, output, review, ctx) or repeated
        if done:
            st.stall.mark(not repeated)

    def _apply(self, st: _State, task: _Task, output: Any, review: Review, ctx: RunContext) -> bool:
        """Act on one verdict; True when the result was already rejected once."""
        s = task.subtask
        if review.verdict == "reassign":
            self._check_reassign(review, s, ctx)
        ctx.emit(
            "supervisor.review",
            subtask=s.id,
            worker=s.worker,
            attempt=task.attempt,
            verdict=review.verdict,
            to_worker=review.to_worker,
            feedback=review.feedback,
        )
        if review.verdict == "accept":
            st.results[s.id] = output
            return False
        key = (s.id, fingerprint(output))
        repeated = key in st.rejected
        st.rejected.add(key)
        if repeated:
            st.reason = f"subtask {s.id!r} got a result that was already rejected"
        worker = review.to_worker if review.verdict == "reassign" else s.worker
        retried = s.model_copy(update={"worker": worker})
        st.pending.append(_Task(retried, task.attempt + 1, review.feedback))
        return repeated

    def _check_reassign(self, review: Review, s: Subtask, ctx: RunContext) -> None:
        if review.to_worker not in self.workers:
            raise PlanError(
                f"Supervisor {self.name!r} at {ctx.key}: reviewer {self.reviewer.name!r} "
                f"reassigned subtask {s.id!r} to unknown worker {review.to_worker!r}; "
                f"workers are {sorted(self.workers)}"
            )

    # stopping ------------------------------------------------------------------------------
    def _halted(self, st: _State, halt: Halt, ctx: RunContext) -> Act | Stop:
        """A limit ended the loop: what was running or waiting is a gap."""
        for task, _ in st.reviewing:
            st.pending.insert(0, task)
        st.reviewing, st.wave = [], []
        reason = st.reason if halt.status == "stalled" and st.reason else halt.reason
        for task in st.pending:
            self._gap(st, task.subtask, f"not finished ({halt.status})", ctx)
        st.pending.clear()
        return self._finish(st, halt.status, reason)

    def _finish(self, st: _State, status: Status, reason: str) -> Act | Stop:
        """The synthesis, if there is a synthesizer and a budget left; else the stop."""
        st.status, st.reason = status, reason
        if self.synthesizer is None or status == "budget_exhausted":
            return self._stop(st, dict(st.results))
        st.phase = "finish"
        request = SynthesisRequest(
            goal=st.goal, status=status, reason=reason, results=st.results, gaps=st.gaps
        )
        return ask(self.synthesizer, request)

    def _stop(self, st: _State, output: Any) -> Stop:
        data = {"accepted": sorted(st.results), "gaps": dict(st.gaps)}
        return Stop(st.status, output, st.reason, data)

    def _gap(self, st: _State, s: Subtask, reason: str, ctx: RunContext) -> None:
        st.gaps[s.id] = reason
        ctx.emit("supervisor.gap", subtask=s.id, worker=s.worker, reason=reason)


def _check_timeouts(
    name: str, value: float | Mapping[str, float] | None, workers: Mapping[str, Any]
) -> dict[str, float]:
    if value is None:
        return {}
    table = dict(value) if isinstance(value, Mapping) else dict.fromkeys(workers, value)
    for worker, seconds in table.items():
        if worker not in workers:
            raise UsageError(f"Supervisor {name!r}: worker_timeout names unknown worker {worker!r}")
        if not SECONDS.ok(seconds):
            raise UsageError(f"Supervisor {name!r}: worker_timeout for {worker!r} must be positive")
    return table


def _find_cycle(subtasks: Sequence[Subtask]) -> str | None:
    """A dependency cycle among the plan's own subtasks, as `a -> b -> a`, or None."""
    deps = {s.id: [d for d in s.depends_on] for s in subtasks}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> str | None:
        if state.get(node) == 2 or node not in deps:
            return None
        if state.get(node) == 1:
            return " -> ".join([*path[path.index(node) :], node])
        state[node] = 1
        for nxt in deps[node]:
            found = visit(nxt, [*path, node])
            if found:
                return found
        state[node] = 2
        return None

    for sid in deps:
        found = visit(sid, [])
        if found:
            return found
    return None


_PLANNER = (
    "You are the planner of a team. Split the goal into subtasks, each for one worker named "
    "below, with a short id, a precise instruction and the ids of the subtasks whose results "
    "it needs (depends_on). Subtasks without dependencies run at the same time. You see the "
    "accepted results and the gaps so far; give an empty list of subtasks when the goal is "
    "done. Set final to false only if you need to see these results before planning more. "
    "If problems are listed, your previous plan was malformed: fix them."
)
_REVIEWER = (
    "You review one worker's result against its instruction and the goal. Answer accept if it "
    "is good enough, retry with concrete feedback if the same worker should try again, or "
    "reassign with to_worker set if another worker should do it."
)
_SYNTHESIZER = (
    "Write the final answer to the goal from the accepted results. Name any gaps plainly "
    "instead of guessing what they would have said."
)


# YAML: `kind: supervisor` ---------------------------------------------------------------------
class SupervisorSpec(NodeFields):
    """Named workers, and either `planner` (with optional `reviewer` and `synthesizer`)
    agents, or a `model` that plays all three (`review` says whether it reviews)."""

    kind: Literal["supervisor"]
    workers: list[NodeSpec] = Field(min_length=1)
    planner: NodeSpec | None = None
    reviewer: NodeSpec | None = None
    synthesizer: NodeSpec | None = None
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    review: bool = True
    max_turns: int = TURNS.field(10, description="waves of work")
    max_stalls: int = TURNS.field(1, description="turns in a row without progress")
    max_reasks: int = REASKS.field(2, description="times a malformed plan is sent back")
    deadline: float | None = SECONDS.field(None, description="seconds for the whole loop")
    worker_timeout: float | None = SECONDS.field(None, description="seconds, for every worker")
    worker_timeouts: dict[str, Annotated[float, SECONDS]] = Field(
        default_factory=dict, description="seconds per worker name (overrides worker_timeout)"
    )
    worker_errors: WorkerErrors = WorkerErrors.FAIL

    @model_validator(mode="after")
    def _one_manager(self) -> SupervisorSpec:
        one_of(self, ("planner", "model"), "a supervisor", ("reviewer", "synthesizer"))
        return self


def _build(b: Builder, spec: SupervisorSpec, loc: Loc) -> Supervisor | None:
    workers = b.nodes(spec.workers, (*loc, "workers"))
    planner = b.maybe(spec.planner, (*loc, "planner"))
    reviewer = b.maybe(spec.reviewer, (*loc, "reviewer"))
    synthesizer = b.maybe(spec.synthesizer, (*loc, "synthesizer"))
    model = None if spec.model is None else b.model(spec.model, (*loc, "model"))
    if workers is None or failed(planner, reviewer, synthesizer):
        return None
    names = [str(w.name) for w in workers]
    where = (*loc, "worker_timeouts")
    known = [b.known(w, names, (*where, w), "worker") for w in spec.worker_timeouts]
    if not all(known) or (spec.model is not None and model is None):
        return None
    timeout: Any = spec.worker_timeout
    if spec.worker_timeouts:
        every = {n: spec.worker_timeout for n in names if spec.worker_timeout is not None}
        timeout = {**every, **spec.worker_timeouts}

    def make() -> Supervisor:
        # checked even when every worker has a timeout of its own, as the constructor would
        SECONDS.check_optional(f"Supervisor {spec.name!r}", "worker_timeout", spec.worker_timeout)
        options: dict[str, Any] = {
            "max_turns": spec.max_turns,
            "max_stalls": spec.max_stalls,
            "max_reasks": spec.max_reasks,
            "deadline": spec.deadline,
            "worker_timeout": timeout,
            "worker_errors": spec.worker_errors,
            **b.common(spec),
        }
        if model is None:
            roles = {"planner": planner, "reviewer": reviewer, "synthesizer": synthesizer}
            return Supervisor(spec.name, workers, **roles, **options)
        return Supervisor.llm(
            spec.name,
            workers,
            model=model,
            review=spec.review,
            instructions=spec.instructions,
            **options,
        )

    return b.construct(loc, make)


def _draw(d: Canvas, agent: Supervisor, me: str) -> None:
    planner = d.draw(agent.planner, me)
    reviewer = None if agent.reviewer is None else d.draw(agent.reviewer, me)
    synthesizer = None if agent.synthesizer is None else d.draw(agent.synthesizer, me)
    for worker_name, worker in agent.workers.items():
        node = d.draw(worker, me)
        d.edge(planner, node, f"assigns {worker_name}")
        if reviewer is not None:
            d.edge(node, reviewer, "result")
    if reviewer is not None:
        d.edge(reviewer, planner, "retry / reassign", dotted=True)
    if synthesizer is not None:
        d.edge(reviewer or planner, synthesizer, "accepted")


register(
    SupervisorSpec,
    _build,
    draws=Supervisor,
    draw=_draw,
    renamed={
        "max_rounds": "max_turns",
        "max_plan_errors": "max_reasks",
        "max_tokens": TOKENS_RENAMED,
    },
)
