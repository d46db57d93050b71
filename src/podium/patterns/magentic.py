"""`Magentic`: a manager that keeps ledgers and picks, each turn, who speaks next.

    team = Magentic.llm("analysis", [researcher, coder, critic], model="openai:gpt-4o")

The manager keeps a task ledger (`TaskLedger`: the facts it knows and its plan) and, every
turn, writes a progress ledger (`ProgressLedger`: is the request satisfied, are we in a loop,
is progress being made, who speaks next, with what instruction). The chosen participant runs
with that instruction and its answer joins the transcript.

A turn counts as stalled when the manager says no progress is being made, or that we are
looping, or names a speaker who is not a participant, or when the previous turn repeated an
earlier one exactly (same speaker, instruction and answer: a loop the manager missed). After
`max_stalls` stalled turns in a row the manager re-plans (writes a new task ledger from what
it has learnt). The loop stops (the statuses of `_turns`) when the request is satisfied
(`completed`), at `max_turns`, after `max_replans` re-plans that did not help (`stalled`),
at `deadline`, or when the door refuses a call for budget (`budget_exhausted`). The answer
step then writes the final answer from the ledger and the transcript, whatever the status,
except when the budget is spent: then nothing more is asked and the output is the last
participant's output.

The three manager roles are agents, so each ledger is a journaled step and a resumed run
replays it instead of asking the model again:

- `ledger`: `LedgerRequest -> TaskLedger` (also used to re-plan: the request then carries the
  previous ledger and the transcript);
- `progress`: `ProgressRequest -> ProgressLedger`;
- `answer`: `AnswerRequest -> anything` (optional: without it the output is the last
  participant's output).

A participant receives an `Instruction` (a participant whose input type is `str` receives the
instruction text alone).

Events: `magentic.ledger`, `magentic.progress`, `magentic.replan`, `magentic.stop`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
from podium.core.tools import closed_schema as _closed_schema
from podium.errors import UsageError
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
    renamed_field,
    renamed_options,
    renamed_status,
    turn,
    with_max_tokens,
)
from podium.runtime.budget import Budget

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

_LEGACY: dict[str, str] = {"completed": "satisfied", "max_turns": "max_rounds"}
_RENAMED = {"max_rounds": "max_turns", "max_tokens": "max_tokens"}


_CLOSED = ConfigDict(json_schema_extra=_closed_schema)


class TaskLedger(BaseModel):
    """What the manager knows (`facts`: given, looked up, derived, guessed) and its plan."""

    model_config = _CLOSED

    facts: list[str] = Field(default_factory=list)
    plan: list[str] = Field(default_factory=list)


class ProgressLedger(BaseModel):
    """The manager's reading of one round and its choice of the next speaker."""

    model_config = _CLOSED

    is_request_satisfied: bool
    is_in_loop: bool = False
    is_progress_being_made: bool = True
    next_speaker: str = ""
    instruction_or_question: str = ""
    reason: str = ""


class Turn(BaseModel):
    """One participant's turn: who, asked what, answered what."""

    round: int
    speaker: str
    instruction: str
    output: Any = None


class LedgerRequest(BaseModel):
    task: Any
    participants: dict[str, str]
    previous: TaskLedger | None = None
    transcript: list[Turn] = Field(default_factory=list)
    replan: int = 0


class ProgressRequest(BaseModel):
    task: Any
    participants: dict[str, str]
    ledger: TaskLedger
    transcript: list[Turn] = Field(default_factory=list)
    round: int
    problems: list[str] = Field(default_factory=list)


class Instruction(BaseModel):
    """What a participant receives: the task, the manager's instruction, the turns so far."""

    task: Any
    instruction: str
    transcript: list[Turn] = Field(default_factory=list)


class AnswerRequest(BaseModel):
    """What the answer step gets: the task, why the loop ended, the ledger and the turns."""

    task: Any
    status: Status
    reason: str = ""
    ledger: TaskLedger
    transcript: list[Turn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _old_status(self) -> AnswerRequest:
        object.__setattr__(self, "status", renamed_status(self.status, _LEGACY.get(self.status)))
        return self


class MagenticResult(PatternResult):
    """Why the loop stopped, the final answer (`output`), and everything that led to it."""

    ledger: TaskLedger = Field(default_factory=TaskLedger)
    transcript: list[Turn] = Field(default_factory=list)
    replans: int = 0

    renamed: ClassVar[Mapping[str, str]] = {"answer": "output", "rounds": "turns"}
    answer = renamed_field("answer", "output")
    rounds = renamed_field("rounds", "turns")

    def legacy_status(self) -> str | None:
        return _LEGACY.get(self.status)


@dataclass(slots=True)
class _State(TurnState):
    task: Any
    ledger: TaskLedger = field(default_factory=TaskLedger)
    transcript: list[Turn] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    replans: int = 0
    repeated: bool = False
    seen_turns: set[tuple[str, str, str]] = field(default_factory=set)
    phase: Literal["ledger", "progress", "speak", "answer"] = "ledger"
    progress: ProgressLedger | None = None  # the ledger the speaker was chosen by
    status: Status = "completed"
    reason: str = ""


class Magentic(Limited, AgentBase[Any, MagenticResult]):
    """A ledger-keeping manager directing participants turn by turn; see the module doc.

    Renamed options, still accepted for one release with a `DeprecationWarning`:
    `max_rounds` (now `max_turns`) and `max_tokens` (now `budget=Budget(tokens=...)`)."""

    def __init__(
        self,
        name: str,
        participants: Mapping[str, Any] | Sequence[Any],
        *,
        ledger: Any,
        progress: Any,
        answer: Any = None,
        max_turns: int = 20,
        max_stalls: int = 3,
        deadline: float | None = None,
        max_replans: int = 3,
        budget: Budget | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("Magentic", renamed, _RENAMED)
        where = f"Magentic {name!r}"
        self.participants = named_agents("Magentic", name, participants, "participant")
        for role, value in (("ledger", ledger), ("progress", progress), ("answer", answer)):
            if (value is not None or role != "answer") and not _is_agent(value):
                raise UsageError(f"{where}: {role} {value!r} is not an agent")
        self.limits = Limits.checked(
            where,
            max_turns=old.get("max_turns", max_turns),
            max_stalls=max_stalls,
            deadline=deadline,
        )
        REASKS.check(where, "max_replans", max_replans)
        self.ledger = ledger
        self.progress = progress
        self.answer = answer
        self.max_replans = max_replans
        self._roster = {
            n: " ".join((getattr(p, "description", "") or "").split())
            for n, p in self.participants.items()
        }
        self._setup(
            name, output_type=MagenticResult, retry=retry, timeout=timeout, description=description
        )
        self.budget = with_max_tokens(where, budget, old.get("max_tokens"))

    max_rounds = renamed_field("max_rounds", "limits.max_turns")

    @classmethod
    def llm(
        cls,
        name: str,
        participants: Mapping[str, Any] | Sequence[Any],
        *,
        model: Any = None,
        instructions: str | None = None,
        settings: ModelSettings | None = None,
        **options: Any,
    ) -> Magentic:
        """A team whose manager is one model playing three `LLMAgent`s: `<name>.ledger`,
        `<name>.progress` and `<name>.answer`. `instructions` prefix each of them; `settings`
        go with their requests, as for `LLMAgent`; `options` go to the constructor
        (`max_turns`, `max_stalls`, `budget`, ...)."""
        from podium.agents.llm import LLMAgent

        def role(suffix: str, text: str, output_type: Any = None) -> LLMAgent:
            joined = "\n\n".join(p for p in (instructions, text) if p)
            return LLMAgent(
                f"{name}.{suffix}",
                model=model,
                instructions=joined,
                output_type=output_type,
                settings=settings,
            )

        return cls(
            name,
            participants,
            ledger=role("ledger", _LEDGER, TaskLedger),
            progress=role("progress", _PROGRESS, ProgressLedger),
            answer=role("answer", _ANSWER),
            **options,
        )

    async def run(self, input: Any, ctx: RunContext) -> MagenticResult:
        st = _State(task=input)
        stop = await drive(ctx, "magentic", partial(self._decide, ctx), st, self.limits)
        return MagenticResult(
            output=stop.output,
            status=stop.status,
            reason=stop.reason,
            turns=st.turns,
            ledger=st.ledger,
            transcript=st.transcript,
            replans=st.replans,
        )

    # the decision ----------------------------------------------------------------------------
    def _decide(self, ctx: RunContext, st: _State, last: Outcomes | Halt | None) -> Act | Stop:
        if isinstance(last, Halt):
            return self._halted(st, last, ctx)
        if last is None:
            return self._write_ledger(st)
        if st.phase == "ledger":
            self._ledger_written(st, last[0], ctx)
        elif st.phase == "progress":
            return self._progress_read(st, last[0], ctx)
        elif st.phase == "speak":
            self._spoken(st, last[0])
        else:  # the answer
            return Stop(st.status, last[0], st.reason, {"replans": st.replans})
        return self._read_progress(st)

    def _write_ledger(self, st: _State) -> Act:
        request = LedgerRequest(
            task=st.task,
            participants=self._roster,
            previous=st.ledger if st.replans else None,
            transcript=st.transcript,
            replan=st.replans,
        )
        st.phase = "ledger"
        return ask(self.ledger, request, expect=TaskLedger)

    def _ledger_written(self, st: _State, ledger: TaskLedger, ctx: RunContext) -> None:
        st.ledger = ledger
        ctx.emit(
            "magentic.ledger", facts=list(ledger.facts), plan=list(ledger.plan), replan=st.replans
        )

    def _read_progress(self, st: _State) -> Act:
        request = ProgressRequest(
            task=st.task,
            participants=self._roster,
            ledger=st.ledger,
            transcript=st.transcript,
            round=st.turns + 1,
            problems=st.problems,
        )
        st.problems, st.phase = [], "progress"
        return turn(Ask(self.progress, request, expect=ProgressLedger))

    def _progress_read(self, st: _State, p: ProgressLedger, ctx: RunContext) -> Act | Stop:
        """Done, or the chosen participant's turn (the driver re-plans instead after
        `max_stalls` stalled turns in a row)."""
        speaker = None if p.is_request_satisfied else self._judge(p, st)
        ctx.emit("magentic.progress", round=st.turns, stalls=st.stall.streak, **p.model_dump())
        if p.is_request_satisfied:
            return self._finish(st, "completed", p.reason or "the manager says it is satisfied")
        if speaker is None:
            return self._read_progress(st)
        text_input = getattr(speaker, "input_type", None) is str
        payload: Any = (
            p.instruction_or_question
            if text_input
            else Instruction(
                task=st.task, instruction=p.instruction_or_question, transcript=st.transcript
            )
        )
        st.progress, st.phase = p, "speak"
        return ask(speaker, payload)

    def _judge(self, p: ProgressLedger, st: _State) -> Any:
        """Count the turn as stalled or not; the participant to run, if the name is one."""
        speaker = self.participants.get(p.next_speaker)
        if speaker is None:
            st.problems = [
                f"next_speaker {p.next_speaker!r} is not a participant; "
                f"participants are {sorted(self.participants)}"
            ]
        stalled = speaker is None or p.is_in_loop or not p.is_progress_being_made or st.repeated
        st.stall.mark(not stalled)
        return speaker

    def _spoken(self, st: _State, output: Any) -> None:
        p = st.progress
        assert p is not None
        key = (p.next_speaker, fingerprint(p.instruction_or_question), fingerprint(output))
        st.repeated = key in st.seen_turns
        st.seen_turns.add(key)
        if st.repeated:
            st.problems = [f"{p.next_speaker!r} gave the same answer to the same instruction again"]
        said = Turn(
            round=st.turns,
            speaker=p.next_speaker,
            instruction=p.instruction_or_question,
            output=output,
        )
        st.transcript = [*st.transcript, said]

    # stopping ------------------------------------------------------------------------------
    def _halted(self, st: _State, halt: Halt, ctx: RunContext) -> Act | Stop:
        """Stalled: re-plan while re-plans are left. Any other limit: the answer."""
        if halt.status != "stalled":
            return self._finish(st, halt.status, halt.reason)
        if st.replans >= self.max_replans:
            why = f"{halt.reason}, after {st.replans} re-plan(s)"
            return self._finish(st, "stalled", why)
        st.replans += 1
        ctx.emit("magentic.replan", round=st.turns, stalls=st.stall.streak, replan=st.replans)
        st.repeated = False
        return self._write_ledger(st)

    def _finish(self, st: _State, status: Status, reason: str) -> Act | Stop:
        st.status, st.reason = status, reason
        if self.answer is None or status == "budget_exhausted":
            last = st.transcript[-1].output if st.transcript else None
            return Stop(status, last, reason, {"replans": st.replans})
        request = AnswerRequest(
            task=st.task, status=status, reason=reason, ledger=st.ledger, transcript=st.transcript
        )
        st.phase = "answer"
        return ask(self.answer, request)


_LEDGER = (
    "You lead a team working on a task. Write the task ledger: the facts (given in the task, "
    "to look up, to derive, educated guesses) and a short plan, step by step, naming which "
    "participant does what. If a previous ledger and transcript are given, the team was "
    "stuck: learn from them and write a better plan."
)
_PROGRESS = (
    "You lead a team. From the task ledger and the transcript so far, judge: is the request "
    "fully satisfied, are we in a loop (repeating the same requests or answers), is progress "
    "being made; then name the participant who speaks next (exactly one of the names listed) "
    "and the instruction or question for them. Problems, if listed, are about your previous "
    "answer."
)
_ANSWER = (
    "Write the final answer to the task from the transcript. If the team stopped before the "
    "request was satisfied, say what is missing."
)


# YAML: `kind: magentic` -----------------------------------------------------------------------
class MagenticSpec(NodeFields):
    """Participants, and either the three manager agents (`ledger`, `progress`, optional
    `answer`) or a `model` that plays them."""

    kind: Literal["magentic"]
    participants: list[NodeSpec] = Field(min_length=1)
    ledger: NodeSpec | None = None
    progress: NodeSpec | None = None
    answer: NodeSpec | None = None
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    max_turns: int = TURNS.field(20)
    max_stalls: int = TURNS.field(3, description="stalled turns in a row before a re-plan")
    max_replans: int = REASKS.field(3)
    deadline: float | None = SECONDS.field(None, description="seconds for the whole loop")

    @model_validator(mode="after")
    def _one_manager(self) -> MagenticSpec:
        one_of(self, ("ledger", "model"), "a magentic team", ("progress", "answer"))
        if self.ledger is not None and self.progress is None:
            raise ValueError("`ledger` needs `progress` too (or give `model` instead)")
        return self


def _build(b: Builder, spec: MagenticSpec, loc: Loc) -> Magentic | None:
    participants = b.nodes(spec.participants, (*loc, "participants"))
    ledger = b.maybe(spec.ledger, (*loc, "ledger"))
    progress = b.maybe(spec.progress, (*loc, "progress"))
    answer = b.maybe(spec.answer, (*loc, "answer"))
    model = None if spec.model is None else b.model(spec.model, (*loc, "model"))
    if participants is None or failed(ledger, progress, answer):
        return None
    if spec.model is not None and model is None:
        return None

    def make() -> Magentic:
        options: dict[str, Any] = {
            "max_turns": spec.max_turns,
            "max_stalls": spec.max_stalls,
            "max_replans": spec.max_replans,
            "deadline": spec.deadline,
            **b.common(spec),
        }
        if model is None:
            roles = {"ledger": ledger, "progress": progress, "answer": answer}
            return Magentic(spec.name, participants, **roles, **options)
        return Magentic.llm(
            spec.name, participants, model=model, instructions=spec.instructions, **options
        )

    return b.construct(loc, make)


def _draw(d: Canvas, agent: Magentic, me: str) -> None:
    ledger = d.draw(agent.ledger, me)
    progress = d.draw(agent.progress, me)
    d.edge(ledger, progress, "task ledger")
    d.edge(progress, ledger, "re-plan", dotted=True)
    for name, participant in agent.participants.items():
        node = d.draw(participant, me)
        d.edge(progress, node, f"next: {name}")
        d.edge(node, progress, dotted=True)
    if agent.answer is not None:
        d.edge(progress, d.draw(agent.answer, me), "satisfied")


register(
    MagenticSpec,
    _build,
    draws=Magentic,
    draw=_draw,
    renamed={"max_rounds": "max_turns", "max_tokens": TOKENS_RENAMED},
)
