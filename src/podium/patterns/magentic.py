"""`Magentic`: a manager that keeps ledgers and picks, each round, who speaks next.

    team = Magentic.llm("analysis", [researcher, coder, critic], model="openai:gpt-4o")

The manager keeps a task ledger (`TaskLedger`: the facts it knows and its plan) and, every
round, writes a progress ledger (`ProgressLedger`: is the request satisfied, are we in a loop,
is progress being made, who speaks next, with what instruction). The chosen participant runs
with that instruction and its answer joins the transcript.

A round counts as stalled when the manager says no progress is being made, or that we are
looping, or names a speaker who is not a participant, or when the previous turn repeated an
earlier one exactly (same speaker, instruction and answer: a loop the manager missed). After
`max_stalls` stalled rounds in a row the manager re-plans (writes a new task ledger from what
it has learnt). The loop stops when the request is satisfied, at `max_rounds`, after
`max_replans` re-plans that did not help, or when the run has spent more than `max_tokens`
since the team started. The answer step then writes the final answer from the ledger and the
transcript, whatever the status, except when the budget is spent: then nothing more is asked
and the answer is the last participant's output.

The three manager roles are agents, so each ledger is a journaled step and a resumed run
replays it instead of asking the model again:

- `ledger`: `LedgerRequest -> TaskLedger` (also used to re-plan: the request then carries the
  previous ledger and the transcript);
- `progress`: `ProgressRequest -> ProgressLedger`;
- `answer`: `AnswerRequest -> anything` (optional: without it the output's `answer` is the
  last participant's output).

A participant receives an `Instruction` (a participant whose input type is `str` receives the
instruction text alone).

Events: `magentic.ledger`, `magentic.progress`, `magentic.replan`, `magentic.stop`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.errors import UsageError
from podium.models.base import ModelSettings
from podium.models.base import closed_schema as _closed_schema
from podium.patterns._common import named_agents
from podium.patterns._progress import StallDetector, fingerprint

if TYPE_CHECKING:
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

Status = Literal["satisfied", "max_rounds", "stalled", "budget_exhausted"]


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
    task: Any
    status: Status
    ledger: TaskLedger
    transcript: list[Turn] = Field(default_factory=list)


class MagenticResult(BaseModel):
    """Why the loop stopped, the final answer, and everything that led to it."""

    status: Status
    answer: Any = None
    ledger: TaskLedger = Field(default_factory=TaskLedger)
    transcript: list[Turn] = Field(default_factory=list)
    rounds: int = 0
    replans: int = 0


@dataclass(slots=True)
class _State:
    task: Any
    start_tokens: int
    ledger: TaskLedger = field(default_factory=TaskLedger)
    transcript: list[Turn] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rounds: int = 0
    stalls: int = 0
    replans: int = 0
    repeated: bool = False
    seen_turns: StallDetector = field(default_factory=lambda: StallDetector(1))


class Magentic(AgentBase[Any, MagenticResult]):
    """A ledger-keeping manager directing participants round by round; see the module doc."""

    def __init__(
        self,
        name: str,
        participants: Mapping[str, Any] | Sequence[Any],
        *,
        ledger: Any,
        progress: Any,
        answer: Any = None,
        max_rounds: int = 20,
        max_stalls: int = 3,
        max_replans: int = 3,
        max_tokens: int | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        self.participants = named_agents("Magentic", name, participants, "participant")
        for role, value in (("ledger", ledger), ("progress", progress), ("answer", answer)):
            if (value is not None or role != "answer") and not _is_agent(value):
                raise UsageError(f"Magentic {name!r}: {role} {value!r} is not an agent")
        for what, number, least in (
            ("max_rounds", max_rounds, 1),
            ("max_stalls", max_stalls, 1),
            ("max_replans", max_replans, 0),
        ):
            if number < least:
                raise UsageError(f"Magentic {name!r}: {what} must be at least {least}")
        if max_tokens is not None and max_tokens < 1:
            raise UsageError(f"Magentic {name!r}: max_tokens must be positive")
        self.ledger = ledger
        self.progress = progress
        self.answer = answer
        self.max_rounds = max_rounds
        self.max_stalls = max_stalls
        self.max_replans = max_replans
        self.max_tokens = max_tokens
        self._roster = {
            n: " ".join((getattr(p, "description", "") or "").split())
            for n, p in self.participants.items()
        }
        self._setup(
            name, output_type=MagenticResult, retry=retry, timeout=timeout, description=description
        )

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
        (`max_rounds`, `max_stalls`, ...)."""
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
        st = _State(input, ctx.usage.total_tokens)
        await self._write_ledger(st, ctx)
        status = await self._loop(st, ctx)
        ctx.emit("magentic.stop", status=status, rounds=st.rounds, replans=st.replans)
        if self.answer is not None and status != "budget_exhausted":
            request = AnswerRequest(
                task=input, status=status, ledger=st.ledger, transcript=st.transcript
            )
            answer = await ctx.call(self.answer, request)
        else:
            answer = st.transcript[-1].output if st.transcript else None
        return MagenticResult(
            status=status,
            answer=answer,
            ledger=st.ledger,
            transcript=st.transcript,
            rounds=st.rounds,
            replans=st.replans,
        )

    async def _loop(self, st: _State, ctx: RunContext) -> Status:
        while True:
            spent = ctx.usage.total_tokens - st.start_tokens
            if self.max_tokens is not None and spent > self.max_tokens:
                return "budget_exhausted"
            if st.rounds >= self.max_rounds:
                return "max_rounds"
            st.rounds += 1
            p = await self._read_progress(st, ctx)
            speaker = None if p.is_request_satisfied else self._judge(p, st)
            ctx.emit("magentic.progress", round=st.rounds, stalls=st.stalls, **p.model_dump())
            if p.is_request_satisfied:
                return "satisfied"
            if st.stalls >= self.max_stalls:
                if st.replans >= self.max_replans:
                    return "stalled"
                st.replans += 1
                ctx.emit("magentic.replan", round=st.rounds, stalls=st.stalls, replan=st.replans)
                st.stalls, st.repeated = 0, False
                await self._write_ledger(st, ctx)
            elif speaker is not None:
                await self._speak(speaker, p, st, ctx)

    def _judge(self, p: ProgressLedger, st: _State) -> Any:
        """Count the round as stalled or not; the participant to run, if the name is one."""
        speaker = self.participants.get(p.next_speaker)
        if speaker is None:
            st.problems = [
                f"next_speaker {p.next_speaker!r} is not a participant; "
                f"participants are {sorted(self.participants)}"
            ]
        stalled = speaker is None or p.is_in_loop or not p.is_progress_being_made or st.repeated
        st.stalls = st.stalls + 1 if stalled else 0
        return speaker

    async def _write_ledger(self, st: _State, ctx: RunContext) -> None:
        request = LedgerRequest(
            task=st.task,
            participants=self._roster,
            previous=st.ledger if st.replans else None,
            transcript=st.transcript,
            replan=st.replans,
        )
        st.ledger = await ctx.call(self.ledger, request, expect=TaskLedger)
        ctx.emit(
            "magentic.ledger",
            facts=list(st.ledger.facts),
            plan=list(st.ledger.plan),
            replan=st.replans,
        )

    async def _read_progress(self, st: _State, ctx: RunContext) -> ProgressLedger:
        request = ProgressRequest(
            task=st.task,
            participants=self._roster,
            ledger=st.ledger,
            transcript=st.transcript,
            round=st.rounds,
            problems=st.problems,
        )
        st.problems = []
        progress: ProgressLedger = await ctx.call(self.progress, request, expect=ProgressLedger)
        return progress

    async def _speak(self, speaker: Any, p: ProgressLedger, st: _State, ctx: RunContext) -> None:
        text_input = getattr(speaker, "input_type", None) is str
        payload: Any = (
            p.instruction_or_question
            if text_input
            else Instruction(
                task=st.task, instruction=p.instruction_or_question, transcript=st.transcript
            )
        )
        output = await ctx.call(speaker, payload)
        turn = (p.next_speaker, fingerprint(p.instruction_or_question), fingerprint(output))
        st.repeated = not st.seen_turns.observe(turn)
        if st.repeated:
            st.problems = [f"{p.next_speaker!r} gave the same answer to the same instruction again"]
        st.transcript = [
            *st.transcript,
            Turn(
                round=st.rounds,
                speaker=p.next_speaker,
                instruction=p.instruction_or_question,
                output=output,
            ),
        ]


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
