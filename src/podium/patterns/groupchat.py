"""`GroupChat`: participants take turns in one shared transcript until they agree, a critic
approves, a condition holds, or the turns run out.

    committee = GroupChat(
        "committee",
        [growth, value, risk],
        consensus="weighted",
        weights={"growth": 2, "value": 1, "risk": 1},
        options=["buy", "hold", "sell"],
    )
    debate = GroupChat.debate("essay", proposers=[writer], critic=editor, rounds=3)

Each turn one participant receives a `ChatTurn` (the topic, the transcript so far, the round,
who it is and the current votes) and answers with text, or with something that has `content`
and an optional `vote` (a `ChatMessage`, a `ChatReply`, a dict). Who speaks next is decided
by `speaker=`:

- `"round_robin"` (default): in the order given;
- a function `(transcript, names) -> name`, which must be deterministic: on resume it is
  asked again with the same (replayed) transcript;
- an agent (a "manager", usually a model) that receives a `SpeakerRequest` and answers with a
  name (or a `SpeakerChoice`). Its answers are journaled steps; a name that is not a
  participant is sent back with a note, at most `max_reasks` times, then the run fails
  naming the manager and the name.

The chat stops (the statuses of `_turns`), checked after every turn in this order, when the
critic approves (debate), when the votes reach consensus (`"majority"`, `"weighted"` or
`"unanimous"`), when `until` (a deterministic function of the transcript) says so (all three
`completed`, with `reason` `approved`, `consensus` or `until`), when it deadlocks, at
`deadline`, after `max_turns`, or when the door refuses a call for budget.

Deadlock: a turn makes progress when it changes the votes into a state never seen before (in
a chat with consensus) or says something never said before (without). After `max_stalls`
turns in a row without progress (default: one full round) the chat is deadlocked: with
`on_deadlock="escalate"` (default) a `fallback` agent decides from a `DeadlockReport`, or,
without one, a person does: a `HumanAgent` (`<chat>.escalation`) asks with the report as
context, the run waits, and the answer (`podium answer RUN hold`: a string, or a dict with
`decision`/`answer`) ends the chat on resume (status `escalated`); a rejection fails the
run. With `on_deadlock="stop"` the chat ends with status `stalled`.

Every turn, vote, deadlock and the stop are events: `groupchat.turn`, `groupchat.vote`,
`groupchat.deadlock`, `groupchat.stop`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from podium.agents.base import AgentBase
from podium.agents.base import is_agent as _is_agent
from podium.agents.human import HumanAgent
from podium.agents.kinds import (
    REF,
    Builder,
    Canvas,
    Loc,
    NodeFields,
    Ref,
    failed,
    label_of,
    register,
)
from podium.core.bounds import MAJORITY, NON_NEGATIVE, REASKS, SECONDS, TURNS
from podium.core.choices import choice
from podium.core.serde import answer_as, to_plain
from podium.errors import OutputTypeError, RunError, UsageError
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
)
from podium.runtime.budget import Budget

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry


class Speaker(StrEnum):
    """Who speaks next, when no function or manager agent picks: `speaker=`."""

    ROUND_ROBIN = "round_robin"  # in the order given


class Consensus(StrEnum):
    """When the votes agree: `consensus=`."""

    MAJORITY = "majority"  # more than `threshold` (default half) of the voters
    WEIGHTED = "weighted"  # ... of the voters' weights
    UNANIMOUS = "unanimous"  # every voter


class OnDeadlock(StrEnum):
    """What a chat that stops making progress does: `on_deadlock=`."""

    ESCALATE = "escalate"  # a fallback agent (or a person) decides
    STOP = "stop"  # the chat ends `stalled`


SpeakerFunction = Callable[[list["ChatMessage"], list[str]], Any]
Until = Callable[[list["ChatMessage"]], bool]
Role = Literal["participant", "proposer", "critic"]
_RENAMED = {"deadlock_turns": "max_stalls", "manager_retries": "max_reasks"}


class ChatMessage(BaseModel):
    """One message of the transcript; `vote` is the speaker's current choice, if any."""

    speaker: str = ""
    content: str
    vote: str | None = None

    @field_validator("vote")
    @classmethod
    def _no_blank_vote(cls, vote: str | None) -> str | None:
        return (vote.strip() or None) if vote is not None else None


def _message_shorthand(value: Any) -> Any:
    """What a participant may answer: text, or anything with `content` and an optional
    `vote` (a `ChatReply`, a `ChatMessage`, a dict, an object)."""
    if isinstance(value, str):
        return {"content": value}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return value
    if hasattr(value, "content"):
        return {"content": value.content, "vote": getattr(value, "vote", None)}
    raise ValueError("a participant must answer with text or something with `content` (and `vote`)")


MessageAnswer = Annotated[ChatMessage, BeforeValidator(_message_shorthand)]
"""What GroupChat expects from a participant or a fallback; the speaker is set by the chat."""


class ChatReply(BaseModel):
    """What a participant (a model, say) answers with when it also votes."""

    content: str
    vote: str | None = None


class ChatTurn(BaseModel):
    """What a participant receives on its turn."""

    topic: Any = None
    transcript: list[ChatMessage] = Field(default_factory=list)
    round: int = 1
    turn: int = 1
    speaker: str = ""
    role: Literal["participant", "proposer", "critic"] = "participant"
    votes: dict[str, str] = Field(default_factory=dict)
    options: list[str] | None = None


class SpeakerRequest(BaseModel):
    """What a manager receives: pick the next speaker among `candidates`."""

    topic: Any = None
    transcript: list[ChatMessage] = Field(default_factory=list)
    round: int = 1
    turn: int = 1
    candidates: list[str] = Field(default_factory=list)
    note: str = ""


class SpeakerChoice(BaseModel):
    """A manager's pick (a model can answer with this as structured output)."""

    speaker: str
    reason: str = ""


def _speaker_shorthand(value: Any) -> Any:
    """A manager (or a speaker function) may answer a bare name."""
    if isinstance(value, str):
        return {"speaker": value.strip()}
    if isinstance(value, BaseModel) and not isinstance(value, SpeakerChoice):
        return value.model_dump()
    return value


SpeakerAnswer = Annotated[SpeakerChoice, BeforeValidator(_speaker_shorthand)]
"""What GroupChat expects from a manager or a speaker function: a pick, or a bare name."""


class DeadlockReport(BaseModel):
    """What a fallback agent or a person receives when the chat makes no progress."""

    chat: str
    topic: Any = None
    reason: str
    turns: int
    votes: dict[str, str] = Field(default_factory=dict)
    tally: dict[str, float] = Field(default_factory=dict)
    transcript: list[ChatMessage] = Field(default_factory=list)


class ChatResult(PatternResult):
    """How the chat ended (`status`, `reason`), its answer (`output`), the agreed `decision`
    (if any), everyone's last vote, the weight behind each option, the transcript and the
    number of turns."""

    decision: str | None = None
    votes: dict[str, str] = Field(default_factory=dict)
    tally: dict[str, float] = Field(default_factory=dict)
    transcript: list[ChatMessage] = Field(default_factory=list)

    renamed: ClassVar[Mapping[str, str]] = {"answer": "output"}
    answer = renamed_field("answer", "output")

    def legacy_status(self) -> str | None:
        """`consensus`, `approved`, `terminated`, `deadlock`, `escalated`, `decided`."""
        if self.status == "completed":
            word = self.reason.split(" ", 1)[0]
            return {"until()": "terminated"}.get(word, word)
        if self.status == "escalated":
            return "decided" if self.reason.endswith("by a person") else "escalated"
        return {"stalled": "deadlock"}.get(self.status)


@dataclass(slots=True)
class _Chat(TurnState):
    """One chat's moving parts; lives for one `run` call."""

    topic: Any
    transcript: list[ChatMessage] = field(default_factory=list)
    votes: dict[str, str] = field(default_factory=dict)
    phase: Literal["pick", "manager", "turn", "fallback", "person"] = "turn"
    speaker: str = ""
    notes: int = 0  # times the manager was sent back in this turn
    reason: str = ""


class GroupChat(Limited, AgentBase[Any, ChatResult]):
    """A shared conversation among agents; see the module docstring for every option.

    Renamed options, still accepted for one release with a `DeprecationWarning`:
    `deadlock_turns` (now `max_stalls`) and `manager_retries` (now `max_reasks`)."""

    def __init__(
        self,
        name: str,
        participants: Sequence[Any],
        *,
        speaker: Speaker | str | SpeakerFunction | Any = Speaker.ROUND_ROBIN,
        max_turns: int = 12,
        max_stalls: int | None = None,
        deadline: float | None = None,
        until: Until | None = None,
        consensus: Consensus | str | None = None,
        weights: Mapping[str, float] | None = None,
        threshold: float | None = None,
        options: Sequence[str] | None = None,
        critic: str | Any | None = None,
        approve: Sequence[str] = ("approve", "approved"),
        on_deadlock: OnDeadlock | str = OnDeadlock.ESCALATE,
        fallback: Any = None,
        max_reasks: int = 2,
        budget: Budget | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("GroupChat", renamed, _RENAMED)
        where = f"GroupChat {name!r}"
        self.participants = _check_participants(name, participants)
        self.names = list(self.participants)
        self.speaker, self.selection = _check_speaker(name, speaker)
        max_stalls = old.get("max_stalls", max_stalls)
        self.limits = Limits.checked(
            where,
            max_turns=max_turns,
            max_stalls=max(2, len(self.names)) if max_stalls is None else max_stalls,
            deadline=deadline,
        )
        if until is not None and not callable(until):
            raise UsageError(f"{where}: until must be a function of the transcript")
        self.until = until
        self.critic = _check_critic(name, critic, self.participants)
        self.approve = frozenset(a.strip().lower() for a in approve)
        self.voters = [n for n in self.names if n != self.critic]
        if consensus is not None:
            consensus = choice(Consensus, where, "consensus", consensus)
        self.consensus = consensus
        self.weights = _check_weights(name, consensus, weights, self.voters)
        self.threshold = _check_threshold(name, consensus, threshold)
        self.options = None if options is None else [str(o) for o in options]
        on_deadlock = choice(OnDeadlock, where, "on_deadlock", on_deadlock)
        if fallback is not None and not _is_agent(fallback):
            raise UsageError(f"{where}: fallback {fallback!r} is not an agent")
        self.on_deadlock = on_deadlock
        self.fallback = fallback
        max_reasks = old.get("max_reasks", max_reasks)
        self.max_reasks = REASKS.check(where, "max_reasks", max_reasks)
        self._escalation = HumanAgent(
            f"{name}.escalation",
            question=_deadlock_question,
            answer_type=DeadlockAnswer,
            description="a person breaks a deadlock",
        )
        self._setup(
            name,
            output_type=ChatResult,
            retry=retry,
            timeout=timeout,
            description=description,
        )
        self.budget = budget

    deadlock_turns = renamed_field("deadlock_turns", "limits.max_stalls")
    manager_retries = renamed_field("manager_retries", "max_reasks")

    @classmethod
    def debate(
        cls,
        name: str,
        *,
        proposers: Sequence[Any],
        critic: Any,
        rounds: int = 3,
        **options: Any,
    ) -> GroupChat:
        """Critic-reviewer rounds: every proposer answers (or revises), then the critic
        critiques; the chat ends when the critic votes `approve`, or after `rounds` rounds."""
        proposers = list(proposers)
        if not proposers:
            raise UsageError(f"GroupChat {name!r}: a debate needs at least one proposer")
        rounds = TURNS.check(f"GroupChat {name!r}", "rounds", rounds)
        return cls(
            name,
            [*proposers, critic],
            critic=critic,
            max_turns=rounds * (len(proposers) + 1),
            **options,
        )

    async def run(self, input: Any, ctx: RunContext) -> ChatResult:
        chat = _Chat(topic=input)
        stop = await drive(ctx, "groupchat", partial(self._decide, ctx), chat, self.limits)
        return ChatResult(
            output=stop.output,
            status=stop.status,
            reason=stop.reason,
            turns=chat.turns,
            decision=stop.data.get("decision"),
            votes=dict(chat.votes),
            tally=self._tally(chat),
            transcript=chat.transcript,
        )

    # the decision ----------------------------------------------------------------------------
    def _decide(
        self, ctx: RunContext, chat: _Chat, last: Outcomes | Halt | None
    ) -> Act | Stop | Awaitable[Act]:
        if isinstance(last, Halt):
            return self._halted(chat, last, ctx)
        if last is None:
            return self._next(chat)
        phase = chat.phase
        if phase == "pick":
            return self._pick(chat, ctx)
        if phase == "manager":
            return self._picked(chat, last[0], ctx)
        if phase == "turn":
            return self._spoken(chat, last[0], ctx) or self._next(chat)
        said = last[0]
        if phase == "fallback":
            assert self.fallback is not None
            message = said.model_copy(update={"speaker": self.fallback.name})
            chat.transcript.append(message)
            why = f"deadlock decided by {self.fallback.name!r}"
            return _stop(chat, "escalated", message.content, why, message.vote or message.content)
        return _stop(chat, "escalated", said.answer, "deadlock decided by a person", said.decision)

    # speakers ------------------------------------------------------------------------------
    def _next(self, chat: _Chat) -> Act:
        """The next turn: a participant in order, a function's pick (made once the driver
        lets the turn start), or the manager's."""
        if self.selection == "round_robin":
            return self._turn(chat, self.names[chat.turns % len(self.names)], opens=True)
        if self.selection == "function":
            chat.phase = "pick"
            return Act((), opens=True)
        chat.notes = 0
        return self._ask_manager(chat, "", opens=True)

    async def _pick(self, chat: _Chat, ctx: RunContext) -> Act:
        picked = self.speaker(list(chat.transcript), list(self.names))
        if inspect.isawaitable(picked):
            picked = await picked
        choice: SpeakerChoice = answer_as(SpeakerAnswer, picked, f"{self.name}.speaker", ctx.key)
        name = choice.speaker.strip()
        if name not in self.participants:
            raise RunError(
                f"GroupChat {self.name!r} at {ctx.key}: speaker function picked "
                f"{picked!r}, which is not a participant; participants are {self.names}"
            )
        return self._turn(chat, name, opens=False)

    def _ask_manager(self, chat: _Chat, note: str, opens: bool) -> Act:
        request = SpeakerRequest(
            topic=chat.topic,
            transcript=list(chat.transcript),
            round=self._round(chat.turns + 1),
            turn=chat.turns + 1,
            candidates=list(self.names),
            note=note,
        )
        chat.phase = "manager"
        return Act((Ask(self.speaker, request, expect=SpeakerAnswer),), opens=opens)

    def _picked(self, chat: _Chat, picked: SpeakerChoice, ctx: RunContext) -> Act:
        """The manager's pick, or the manager asked again with a note (a few times)."""
        name = picked.speaker.strip()
        if name in self.participants:
            return self._turn(chat, name, opens=False)
        chat.notes += 1
        if chat.notes > self.max_reasks:
            raise RunError(
                f"GroupChat {self.name!r} at {ctx.key}: manager {self.speaker.name!r} picked "
                f"{name!r}, which is not a participant ({chat.notes} tries); "
                f"participants are {self.names}"
            )
        ctx.emit("groupchat.manager_retry", picked=name, candidates=self.names)
        note = f"{name!r} is not a participant; answer with one of {self.names}"
        return self._ask_manager(chat, note, opens=False)

    # turns ---------------------------------------------------------------------------------
    def _turn(self, chat: _Chat, name: str, opens: bool) -> Act:
        role: Role = "participant"
        if self.critic is not None:
            role = "critic" if name == self.critic else "proposer"
        given = ChatTurn(
            topic=chat.topic,
            transcript=list(chat.transcript),
            round=self._round(chat.turns + 1),
            turn=chat.turns + 1,
            speaker=name,
            role=role,
            votes=dict(chat.votes),
            options=self.options,
        )
        chat.phase, chat.speaker = "turn", name
        call = Ask(self.participants[name], given, expect=MessageAnswer)
        return Act((call,), opens=opens, counts=True)

    def _spoken(self, chat: _Chat, said: ChatMessage, ctx: RunContext) -> Stop | None:
        """A turn's message joins the transcript; the chat may end with it."""
        # already validated at the door: only the speaker is the chat's to say
        said = ChatMessage.model_construct(
            speaker=chat.speaker, content=said.content, vote=said.vote
        )
        message = self._check_vote(said, ctx)
        chat.transcript.append(message)
        ctx.emit(
            "groupchat.turn",
            turn=chat.turns,
            round=self._round(chat.turns),
            speaker=message.speaker,
            selected_by=self.selection,
            vote=message.vote,
        )
        return self._verdict(chat, message, ctx)

    def _check_vote(self, message: ChatMessage, ctx: RunContext) -> ChatMessage:
        """Votes match the options case-insensitively; a critic's vote is its verdict."""
        vote = message.vote
        if vote is None or self.options is None or message.speaker == self.critic:
            return message
        by_lower = {o.lower(): o for o in self.options}
        matched = by_lower.get(vote.lower())
        if matched is None:
            raise OutputTypeError(
                message.speaker,
                ctx.key,
                f"vote {vote!r} is not one of the options {self.options}",
            )
        return message.model_copy(update={"vote": matched})

    def _round(self, turn: int) -> int:
        return (turn - 1) // len(self.names) + 1

    # stopping ------------------------------------------------------------------------------
    def _verdict(self, chat: _Chat, message: ChatMessage, ctx: RunContext) -> Stop | None:
        """Whether this turn ends the chat; also feeds the stall detector."""
        speaker = message.speaker
        if speaker == self.critic:
            if message.vote is not None and message.vote.strip().lower() in self.approve:
                last = self._last_proposal(chat)
                return _stop(chat, "completed", last, f"approved by {speaker!r}", message.vote)
        elif message.vote is not None:
            chat.votes[speaker] = message.vote
            ctx.emit("groupchat.vote", speaker=speaker, vote=message.vote, tally=self._tally(chat))
        if self.consensus is not None:
            winner = self._winner(chat)
            if winner is not None:
                return _stop(chat, "completed", winner, f"consensus on {winner!r}", winner)
            chat.stall.observe(tuple(sorted(chat.votes.items())))
        else:
            chat.stall.observe((speaker, fingerprint(message.content)))
        if self.until is not None and self.until(list(chat.transcript)):
            return _stop(chat, "completed", message.content, "until() held")
        return None

    def _tally(self, chat: _Chat) -> dict[str, float]:
        tally: dict[str, float] = {}
        for voter, vote in chat.votes.items():
            tally[vote] = tally.get(vote, 0.0) + self.weights.get(voter, 0.0)
        return tally

    def _winner(self, chat: _Chat) -> str | None:
        tally = self._tally(chat)
        if not tally:
            return None
        if self.consensus == "unanimous":
            if len(tally) == 1 and set(chat.votes) >= set(self.voters):
                return next(iter(tally))
            return None
        total = sum(self.weights.values())
        option, weight = max(tally.items(), key=lambda kv: kv[1])
        share = weight / total if total else 0.0
        enough = share >= self.threshold if self.threshold is not None else share > 0.5
        return option if enough else None

    def _last_proposal(self, chat: _Chat) -> str | None:
        for message in reversed(chat.transcript):
            if message.speaker != self.critic:
                return message.content
        return None

    def _halted(self, chat: _Chat, halt: Halt, ctx: RunContext) -> Act | Stop:
        last = chat.transcript[-1].content if chat.transcript else None
        if halt.status != "stalled":
            return _stop(chat, halt.status, last, halt.reason)
        what = "the same votes" if self.consensus is not None else "nothing new said"
        reason = f"no progress for {chat.stall.streak} turns ({what})"
        action = "stop"
        if self.on_deadlock == "escalate":
            action = "fallback" if self.fallback is not None else "person"
        ctx.emit("groupchat.deadlock", reason=reason, turns=chat.turns, action=action)
        if action == "stop":
            return _stop(chat, "stalled", last, f"deadlock: {reason}")
        report = DeadlockReport(
            chat=self.name,
            topic=to_plain(chat.topic),
            reason=reason,
            turns=chat.turns,
            votes=dict(chat.votes),
            tally=self._tally(chat),
            transcript=list(chat.transcript),
        )
        if action == "fallback":
            chat.phase = "fallback"
            return ask(self.fallback, report, expect=MessageAnswer)
        chat.phase = "person"
        return ask(self._escalation, report)


def _stop(chat: _Chat, status: Status, output: Any, reason: str, decision: Any = None) -> Stop:
    return Stop(status, output, reason, {"decision": decision})


# helpers ---------------------------------------------------------------------------------


class DeadlockDecision(BaseModel):
    """What a person decides about a deadlocked chat: the `decision` (an option, say) and
    the chat's `answer` (the decision itself when not given)."""

    decision: str | None = None
    answer: Any = None


def _person_shorthand(value: Any) -> Any:
    """A person answers a string (the decision and the answer), or a dict with `decision`
    and/or `answer`."""
    if isinstance(value, str):
        return {"decision": value, "answer": value}
    if isinstance(value, Mapping):
        decision = value.get("decision", value.get("answer"))
        answer = value.get("answer", decision)
        if decision is None and answer is None:
            raise ValueError("a deadlock decision must be a string or a dict with "
                             "'decision' or 'answer'")  # fmt: skip
        return {"decision": None if decision is None else str(decision), "answer": answer}
    return value


DeadlockAnswer = Annotated[DeadlockDecision, BeforeValidator(_person_shorthand)]


def _deadlock_question(report: DeadlockReport) -> str:
    return f"deadlock: {report.reason}"


# helpers ---------------------------------------------------------------------------------


def _check_participants(name: str, participants: Sequence[Any]) -> dict[str, Any]:
    if isinstance(participants, str) or not isinstance(participants, Sequence):
        raise UsageError(f"GroupChat {name!r}: participants must be a list of agents")
    table: dict[str, Any] = {}
    for i, p in enumerate(participants):
        if not _is_agent(p):
            raise UsageError(f"GroupChat {name!r}: participant {i} ({p!r}) is not an agent")
        if p.name in table:
            raise UsageError(f"GroupChat {name!r}: two participants are named {p.name!r}")
        table[p.name] = p
    if not table:
        raise UsageError(f"GroupChat {name!r} needs at least one participant")
    return table


def _check_speaker(name: str, speaker: Any) -> tuple[Any, str]:
    if isinstance(speaker, str) and speaker in set(Speaker):
        return Speaker(speaker), Speaker.ROUND_ROBIN.value
    if _is_agent(speaker):
        return speaker, "manager"
    if callable(speaker):
        return speaker, "function"
    raise UsageError(
        f"GroupChat {name!r}: speaker must be 'round_robin', a function "
        f"(transcript, names) -> name, or a manager agent; got {speaker!r}"
    )


def _check_critic(name: str, critic: Any, participants: Mapping[str, Any]) -> str | None:
    if critic is None:
        return None
    critic_name = critic if isinstance(critic, str) else getattr(critic, "name", None)
    if critic_name not in participants:
        raise UsageError(
            f"GroupChat {name!r}: critic {critic_name!r} is not a participant "
            f"({list(participants)})"
        )
    if len(participants) < 2:
        raise UsageError(f"GroupChat {name!r}: a critic needs at least one other participant")
    return str(critic_name)


def _check_weights(
    name: str, consensus: Any, weights: Mapping[str, float] | None, voters: list[str]
) -> dict[str, float]:
    if consensus == "weighted" and not weights:
        raise UsageError(f"GroupChat {name!r}: consensus='weighted' needs weights=")
    if weights and consensus != "weighted":
        raise UsageError(f"GroupChat {name!r}: weights= only apply with consensus='weighted'")
    table = {v: 1.0 for v in voters}
    for voter, weight in (weights or {}).items():
        if voter not in table:
            raise UsageError(
                f"GroupChat {name!r}: weight for {voter!r}, who is not a voting participant "
                f"({voters})"
            )
        table[voter] = float(
            NON_NEGATIVE.check(f"GroupChat {name!r}", f"weight for {voter!r}", weight)
        )
    if consensus is not None and not any(table.values()):
        raise UsageError(f"GroupChat {name!r}: consensus needs at least one voter with weight")
    return table


def _check_threshold(name: str, consensus: Any, threshold: float | None) -> float | None:
    if threshold is None:
        return None
    if consensus not in ("majority", "weighted"):
        raise UsageError(
            f"GroupChat {name!r}: threshold applies to 'majority' or 'weighted' consensus"
        )
    return float(MAJORITY.check(f"GroupChat {name!r}", "threshold", threshold))


# YAML: `kind: groupchat` ----------------------------------------------------------------------
class GroupChatSpec(NodeFields):
    """A shared conversation. `speaker` is `round_robin` or `python:module:object` (a
    function `(transcript, names) -> name` or an agent); `manager` is an inline agent that
    picks. `rounds` with a `critic` makes it a critic-reviewer debate."""

    kind: Literal["groupchat"]
    participants: list[NodeSpec] = Field(min_length=1)
    speaker: str = Field(Speaker.ROUND_ROBIN, min_length=1, description="round_robin or " + REF)
    manager: NodeSpec | None = None
    max_turns: int | None = TURNS.field(None, description="default 12 (a debate: from rounds)")
    rounds: int | None = TURNS.field(None, description="debate rounds (needs `critic`)")
    until: Ref | None = Field(None, description=REF + ": transcript -> bool")
    consensus: Consensus | None = None
    weights: dict[str, Annotated[float, NON_NEGATIVE]] | None = None
    threshold: float | None = MAJORITY.field(
        None, description="the share of the votes that agrees (majority or weighted consensus)"
    )
    options: list[str] | None = None
    critic: str | None = Field(None, min_length=1, description="the name of a participant")
    approve: list[str] = Field(default_factory=lambda: ["approve", "approved"])
    max_stalls: int | None = TURNS.field(
        None, description="turns in a row without progress (default: one full round)"
    )
    on_deadlock: OnDeadlock = OnDeadlock.ESCALATE
    fallback: NodeSpec | None = None
    max_reasks: int = REASKS.field(2, description="times a manager's unknown pick is sent back")
    deadline: float | None = SECONDS.field(None, description="seconds for the whole chat")

    @field_validator("speaker")
    @classmethod
    def _known_speaker(cls, value: str) -> str:
        if value in set(Speaker) or ":" in value:
            return value
        raise ValueError(
            f"speaker {value!r} is not round_robin or python:module:object "
            "(a function (transcript, names) -> name, or an agent)"
        )

    @model_validator(mode="after")
    def _checks(self) -> GroupChatSpec:
        if self.manager is not None and self.speaker != "round_robin":
            raise ValueError("give `speaker` or `manager`, not both")
        if self.rounds is not None and self.critic is None:
            raise ValueError("`rounds` makes a debate, which needs a `critic`")
        if self.rounds is not None and self.max_turns is not None:
            raise ValueError("give `rounds` (a debate) or `max_turns`, not both")
        if self.threshold is not None and self.consensus not in ("majority", "weighted"):
            raise ValueError("`threshold` needs `consensus: majority` or `weighted`")
        return self


def _build(b: Builder, spec: GroupChatSpec, loc: Loc) -> GroupChat | None:
    participants = b.nodes(spec.participants, (*loc, "participants"))
    speaker: Any = spec.speaker
    if spec.manager is not None:
        speaker = b.maybe(spec.manager, (*loc, "manager"))
    elif speaker != "round_robin":
        speaker = b.function(speaker, (*loc, "speaker"), agents=True)
    until = b.function(spec.until, (*loc, "until"))
    fallback = b.maybe(spec.fallback, (*loc, "fallback"))
    if participants is None or failed(speaker, until, fallback):
        return None
    names = [str(p.name) for p in participants]
    ok = spec.critic is None or b.known(spec.critic, names, (*loc, "critic"), "participant")
    for who in spec.weights or {}:
        ok = b.known(who, names, (*loc, "weights", who), "participant") and ok
    if not ok:
        return None

    def make() -> GroupChat:
        options: dict[str, Any] = {
            "speaker": speaker,
            "until": until,
            "consensus": spec.consensus,
            "weights": spec.weights,
            "threshold": spec.threshold,
            "options": spec.options,
            "approve": spec.approve,
            "max_stalls": spec.max_stalls,
            "on_deadlock": spec.on_deadlock,
            "fallback": fallback,
            "max_reasks": spec.max_reasks,
            "deadline": spec.deadline,
            **b.common(spec),
        }
        if spec.rounds is not None:
            critic = participants[names.index(str(spec.critic))]
            proposers = [p for p in participants if p is not critic]
            return GroupChat.debate(
                spec.name, proposers=proposers, critic=critic, rounds=spec.rounds, **options
            )
        if spec.max_turns is not None:
            options["max_turns"] = spec.max_turns
        return GroupChat(spec.name, participants, critic=spec.critic, **options)

    return b.construct(loc, make)


def _draw(d: Canvas, agent: GroupChat, me: str) -> None:
    how = agent.selection if agent.selection != "function" else label_of(agent.speaker)
    chat = d.box(me, "transcript", f"transcript (speaker: {how})", "(())")
    for name, participant in agent.participants.items():
        node = d.draw(participant, me)
        d.edge(chat, node, "critic" if name == agent.critic else "turn")
        d.edge(node, chat, dotted=True)
    if agent.selection == "manager":
        d.edge(d.draw(agent.speaker, me), chat, "picks speaker", dotted=True)
    if agent.fallback is not None:
        d.edge(chat, d.draw(agent.fallback, me), "deadlock", dotted=True)


register(GroupChatSpec, _build, draws=GroupChat, draw=_draw, renamed=_RENAMED)
