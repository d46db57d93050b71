"""`Supervisor`: a planner splits a goal into subtasks for named workers, a reviewer judges
each result, a synthesis step writes the answer.

    desk = Supervisor(
        "research",
        workers=[sizing, competitors, survey],
        planner=planner,            # an agent answering with a `Plan`
        reviewer=reviewer,          # an agent answering with a `Review` (None: accept all)
        synthesizer=writer,         # gets a `SynthesisRequest` (None: output is the results)
    )

One round is one wave: every pending subtask whose `depends_on` are all accepted runs at
once (`asyncio.gather` of `ctx.call`), then each result is reviewed, in plan order. The
reviewer accepts it, asks the same worker to `retry` with feedback, or `reassign`s it to
another worker; both come back in the next round. The planner is asked again only when the
plan it gave is worked off and it said `final=False`; an empty plan means "done".

Every planner, worker, reviewer and synthesis call goes through the door, so each is a
journaled step (`/<name>/planner#0`, `/<name>/<worker>#n`, ...) and a resumed run replays
them; the loop between them is deterministic given their outputs.

The loop ends with a status in the `SupervisorResult`:

- `completed`: the planner's work is all settled (accepted, or a gap);
- `max_rounds`: `max_rounds` waves ran and work was left;
- `budget_exhausted`: the run spent more than `max_tokens` since the supervisor started
  (checked before every round; the synthesis step is then skipped and the output is the
  accepted results, as without a synthesizer);
- `no_progress`: the planner gave the same plan twice, or a worker handed in a result that
  had already been rejected for that subtask.

A worker that times out (its own timeout, or `worker_timeout`), after the door's retries, is a
gap: the supervisor goes on with what it has and names the gap in `gaps` and a
`supervisor.gap` event. Any other worker failure fails the supervisor, unless
`worker_errors="gap"`. Subtasks that depend on a gap become gaps too.

A plan that names an unknown worker (or repeats an id, depends on an unknown subtask, or has a
cycle) is a malformed planner answer: the planner is asked again, with the problem stated in
`PlanRequest.problems`, up to `max_plan_errors` times; then the run fails with `PlanError`
naming the subtask, the worker and the known workers. A reviewer reassigning to an unknown
worker fails at once with `PlanError`.

Events: `supervisor.plan`, `supervisor.review`, `supervisor.gap`, `supervisor.stop`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.errors import (
    RunError,
    StepFailed,
    StepTimeout,
    Suspended,
    UsageError,
)
from podium.models.base import ModelSettings
from podium.models.base import closed_schema as _closed_schema
from podium.patterns._common import named_agents
from podium.patterns._progress import StallDetector, fingerprint
from podium.runtime.serde import dumps

if TYPE_CHECKING:
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

Status = Literal["completed", "no_progress", "max_rounds", "budget_exhausted"]


_CLOSED = ConfigDict(json_schema_extra=_closed_schema)


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
    goal: Any
    status: Status
    results: dict[str, Any]
    gaps: dict[str, str]


class SupervisorResult(BaseModel):
    """Why the loop ended, the final output, every accepted result by subtask id, and why
    any subtask has none (`gaps`)."""

    status: Status
    output: Any = None
    results: dict[str, Any] = Field(default_factory=dict)
    gaps: dict[str, str] = Field(default_factory=dict)
    rounds: int = 0

    @property
    def complete(self) -> bool:
        return self.status == "completed" and not self.gaps


class PlanError(RunError):
    """The planner (or reviewer) named a worker or subtask that does not exist."""


@dataclass(slots=True)
class _Task:
    subtask: Subtask
    attempt: int = 1
    feedback: str = ""


@dataclass(slots=True)
class _State:
    """What one supervisor invocation knows; rebuilt identically on replay."""

    goal: Any
    start_tokens: int
    pending: list[_Task] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    gaps: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    plans: int = 0
    final: bool = False
    seen_plans: StallDetector = field(default_factory=lambda: StallDetector(1))
    seen_rejects: StallDetector = field(default_factory=lambda: StallDetector(1))


class Supervisor(AgentBase[Any, SupervisorResult]):
    """A manager with named workers. See the module docstring for the loop and its limits."""

    def __init__(
        self,
        name: str,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        planner: Any,
        reviewer: Any = None,
        synthesizer: Any = None,
        max_rounds: int = 10,
        max_tokens: int | None = None,
        worker_timeout: float | Mapping[str, float] | None = None,
        worker_errors: Literal["fail", "gap"] = "fail",
        max_plan_errors: int = 2,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        self.workers = named_agents("Supervisor", name, workers, "worker")
        for role, value in (
            ("planner", planner),
            ("reviewer", reviewer),
            ("synthesizer", synthesizer),
        ):
            if value is not None and not _is_agent(value):
                raise UsageError(f"Supervisor {name!r}: {role} {value!r} is not an agent")
        if planner is None:
            raise UsageError(f"Supervisor {name!r} needs a planner agent")
        if max_rounds < 1:
            raise UsageError(f"Supervisor {name!r}: max_rounds must be at least 1")
        if max_tokens is not None and max_tokens < 1:
            raise UsageError(f"Supervisor {name!r}: max_tokens must be positive")
        if max_plan_errors < 0:
            raise UsageError(f"Supervisor {name!r}: max_plan_errors must not be negative")
        if worker_errors not in ("fail", "gap"):
            raise UsageError(f"Supervisor {name!r}: worker_errors must be 'fail' or 'gap'")
        self.planner = planner
        self.reviewer = reviewer
        self.synthesizer = synthesizer
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens
        self.worker_timeouts = _check_timeouts(name, worker_timeout, self.workers)
        self.worker_errors = worker_errors
        self.max_plan_errors = max_plan_errors
        self._setup(
            name,
            output_type=SupervisorResult,
            retry=retry,
            timeout=timeout,
            description=description,
        )

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
        three's requests, as for `LLMAgent`; `options` go to the constructor (`max_rounds`,
        `max_tokens`, `worker_timeout`, ...)."""
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
        st = _State(input, ctx.usage.total_tokens)
        status = await self._loop(st, ctx)
        for task in st.pending:
            self._gap(st, task.subtask, f"not finished ({status})", ctx)
        st.pending.clear()
        ctx.emit(
            "supervisor.stop",
            status=status,
            rounds=st.rounds,
            accepted=sorted(st.results),
            gaps=dict(st.gaps),
        )
        output: Any = dict(st.results)
        if self.synthesizer is not None and status != "budget_exhausted":
            request = SynthesisRequest(goal=input, status=status, results=st.results, gaps=st.gaps)
            output = await ctx.call(self.synthesizer, request)
        return SupervisorResult(
            status=status, output=output, results=st.results, gaps=st.gaps, rounds=st.rounds
        )

    async def _loop(self, st: _State, ctx: RunContext) -> Status:
        while True:
            if not st.pending and st.final:
                return "completed"
            spent = ctx.usage.total_tokens - st.start_tokens
            if self.max_tokens is not None and spent > self.max_tokens:
                return "budget_exhausted"
            if st.rounds >= self.max_rounds:
                return "max_rounds"
            if not st.pending:
                stop = await self._plan(st, ctx)
                if stop is not None:
                    return stop
            st.rounds += 1
            if await self._wave(st, ctx):
                return "no_progress"

    # planning ------------------------------------------------------------------------------
    async def _plan(self, st: _State, ctx: RunContext) -> Status | None:
        """Ask the planner (again while its plan is malformed); None means work to do."""
        problems: list[str] = []
        for _ in range(self.max_plan_errors + 1):
            request = PlanRequest(
                goal=st.goal,
                workers={n: getattr(w, "description", "") or "" for n, w in self.workers.items()},
                round=st.rounds + 1,
                results=st.results,
                gaps=st.gaps,
                problems=problems,
            )
            plan = await ctx.call(self.planner, request, expect=Plan)
            st.plans += 1
            problem = self._check_plan(plan, st)
            ctx.emit(
                "supervisor.plan",
                round=st.rounds + 1,
                subtasks=[s.model_dump() for s in plan.subtasks],
                final=plan.final,
                problem=problem,
            )
            if problem is None:
                return self._adopt(plan, st)
            problems.append(problem)
        raise PlanError(
            f"Supervisor {self.name!r} at {ctx.key}: planner {self.planner.name!r} gave "
            f"{len(problems)} malformed plan(s); last: {problems[-1]}"
        )

    def _adopt(self, plan: Plan, st: _State) -> Status | None:
        if not plan.subtasks:
            return "completed"
        shape = sorted((s.worker, s.instruction, sorted(s.depends_on)) for s in plan.subtasks)
        if not st.seen_plans.observe(fingerprint(shape)):
            return "no_progress"
        st.final = plan.final
        st.pending = [_Task(s) for s in plan.subtasks]
        return None

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

    # one wave --------------------------------------------------------------------------------
    async def _wave(self, st: _State, ctx: RunContext) -> bool:
        """Run every ready subtask at once, review the results; True means no progress."""
        ready: list[_Task] = []
        waiting: list[_Task] = []
        for task in st.pending:
            deps = task.subtask.depends_on
            lost = [d for d in deps if d in st.gaps]
            if lost:
                self._gap(st, task.subtask, f"depends on {lost[0]!r}, which has no result", ctx)
            elif all(d in st.results for d in deps):
                ready.append(task)
            else:
                waiting.append(task)
        outcomes = await asyncio.gather(
            *(self._work(t, st, ctx) for t in ready), return_exceptions=True
        )
        done: list[tuple[_Task, Any]] = []
        for task, outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._gap(st, task.subtask, self._worker_failure(outcome, ctx), ctx)
            else:
                done.append((task, outcome))
        st.pending = waiting
        reviews = await _gather_all(self._review(t, out, st, ctx) for t, out in done)
        stuck = False
        for (task, out), review in zip(done, reviews, strict=True):
            stuck = self._apply(st, task, out, review, ctx) or stuck
        return stuck

    async def _work(self, task: _Task, st: _State, ctx: RunContext) -> Any:
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
        seconds = self.worker_timeouts.get(s.worker)
        if seconds is None:
            return await ctx.call(worker, payload)
        return await ctx.call(worker, payload, timeout=seconds)

    def _worker_failure(self, error: BaseException, ctx: RunContext) -> str:
        """The gap's reason for a worker that timed out; any other failure is re-raised
        unless `worker_errors="gap"`."""
        if isinstance(error, Suspended | asyncio.CancelledError):
            raise error
        cause = error.cause if isinstance(error, StepFailed) else error
        timed_out = isinstance(cause, StepTimeout) and cause.step.rsplit("/", 1)[0] == ctx.key
        if not timed_out and self.worker_errors == "fail":
            raise error
        return f"{type(cause).__name__}: {cause}"

    async def _review(self, task: _Task, output: Any, st: _State, ctx: RunContext) -> Review:
        if self.reviewer is None:
            return Review(subtask_id=task.subtask.id, verdict="accept")
        request = ReviewRequest(
            goal=st.goal, subtask=task.subtask, result=output, attempt=task.attempt
        )
        review: Review = await ctx.call(self.reviewer, request, expect=Review)
        return review

    def _apply(self, st: _State, task: _Task, output: Any, review: Review, ctx: RunContext) -> bool:
        """Act on one verdict; True when the result was already rejected once (no progress)."""
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
        repeated = not st.seen_rejects.observe((s.id, fingerprint(output)))
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

    def _gap(self, st: _State, s: Subtask, reason: str, ctx: RunContext) -> None:
        st.gaps[s.id] = reason
        ctx.emit("supervisor.gap", subtask=s.id, worker=s.worker, reason=reason)


async def _gather_all(coros: Any) -> list[Any]:
    """Gather in order; after every one has finished, re-raise the first failure (so no
    sibling is left running when the supervisor fails)."""
    outcomes = await asyncio.gather(*coros, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)


def _check_timeouts(
    name: str, value: float | Mapping[str, float] | None, workers: Mapping[str, Any]
) -> dict[str, float]:
    if value is None:
        return {}
    table = dict(value) if isinstance(value, Mapping) else dict.fromkeys(workers, value)
    for worker, seconds in table.items():
        if worker not in workers:
            raise UsageError(f"Supervisor {name!r}: worker_timeout names unknown worker {worker!r}")
        if seconds <= 0:
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
