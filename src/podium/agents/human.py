"""People in the loop: `HumanApproval` (approve, reject or edit a proposed action) and
`HumanAgent` (a person answers a question).

With no decision yet, the run suspends: its status becomes `waiting`, the process may exit and
nothing is lost. A decision arrives from anywhere (`podium approve RUN`, `rt.resume(run_id,
decision=...)`) and is recorded as the output of the waiting step, so the run continues from
there, in any process.

Deadlines: `deadline=seconds` fixes, at the first suspension, the time by which a person must
answer. A run past it is resumed by `rt.sweep()` / `podium sweep`, and the waiting step applies
`on_timeout`: `"reject"` (the default), `"approve"`, or `"escalate"` (ask `escalate_to` with a
fresh deadline; rejected if that one passes too).

    flow = Sequential("claim", [assess, HumanApproval("approve_payment", deadline=3600), pay])
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator

from podium.agents.base import AgentBase
from podium.agents.kinds import REF, Builder, Loc, Ref, Spec, register
from podium.core.bounds import SECONDS
from podium.core.choices import choice
from podium.core.serde import Validator, describe_validation_error, to_plain
from podium.errors import RejectedError, Suspended, UsageError
from podium.runtime.waiting import Decision, os_user

if TYPE_CHECKING:
    from podium.runtime.context import RunContext


class OnTimeout(StrEnum):
    """What a person's deadline passing does: `on_timeout=`."""

    REJECT = "reject"  # the flow stops with RejectedError
    APPROVE = "approve"  # the proposal passes as it is
    ESCALATE = "escalate"  # `escalate_to` is asked, with a new deadline


__all__ = ["Decision", "HumanAgent", "HumanApproval"]


class _WaitForPerson(AgentBase[dict[str, Any], Decision]):
    """The step that waits. Its journal row holds the request while it waits, and the
    decision once there is one; resuming replays that decision."""

    def __init__(
        self, owner: str, deadline: float | None, on_timeout: OnTimeout, escalate_to: str | None
    ) -> None:
        self._setup(f"{owner}.decision", output_type=Decision, description="a person decides")
        self.deadline = deadline
        self.on_timeout = on_timeout
        self.escalate_to = escalate_to

    async def run(self, request: dict[str, Any], ctx: RunContext) -> Decision:
        previous = ctx.previous()
        asked = (
            previous.output if previous is not None and isinstance(previous.output, dict) else None
        )
        if asked is not None:
            request = asked  # keep the original deadline and escalation state
        elif self.deadline is not None:
            due = ctx.clock.now() + self.deadline
            request = {**request, "deadline_at": due, "escalated": False}
        deadline_at = request.get("deadline_at")
        if deadline_at is not None and ctx.clock.now() >= float(deadline_at):
            return self._expired(request, ctx)
        assignee = request.get("assignee")
        who = f" ({assignee})" if assignee else ""
        raise Suspended(ctx.key, f"waiting for a person{who}: {request['prompt']}", request)

    def _expired(self, request: dict[str, Any], ctx: RunContext) -> Decision:
        if self.on_timeout == "escalate" and not request.get("escalated"):
            assert self.deadline is not None
            escalated = {
                **request,
                "escalated": True,
                "assignee": self.escalate_to,
                "deadline_at": ctx.clock.now() + self.deadline,
            }
            ctx.emit("human.escalated", to=self.escalate_to)
            raise Suspended(
                ctx.key, f"escalated to {self.escalate_to}: {request['prompt']}", escalated
            )
        approved = self.on_timeout == "approve"
        ctx.emit("human.deadline", outcome="approved" if approved else "rejected")
        return Decision(
            action="approve" if approved else "reject",
            comment="deadline passed",
            by="deadline",
            user=os_user(),
        )


class _HumanBase(AgentBase[Any, Any]):
    def _init_wait(
        self,
        name: str,
        deadline: float | None,
        on_timeout: OnTimeout | str,
        escalate_to: str | None,
    ) -> None:
        if deadline is not None and not SECONDS.ok(deadline):
            raise UsageError(f"{type(self).__name__} {name!r}: deadline must be positive")
        when = choice(OnTimeout, f"{type(self).__name__} {name!r}", "on_timeout", on_timeout)
        if when == OnTimeout.ESCALATE and (not escalate_to or deadline is None):
            raise UsageError(
                f"{type(self).__name__} {name!r}: escalating needs escalate_to= and deadline="
            )
        self._wait = _WaitForPerson(name, deadline, when, escalate_to)


class HumanApproval(_HumanBase):
    """Asks a person to approve, edit or reject its input (the proposed action).

    Approved: the input passes on unchanged, or as edited. Rejected: the flow stops with
    `RejectedError`, the person's comment recorded as the run's error.
    """

    def __init__(
        self,
        name: str,
        *,
        prompt: str = "",
        input_type: Any = Any,
        assignee: str | None = None,
        deadline: float | None = None,
        on_timeout: OnTimeout | str = OnTimeout.REJECT,
        escalate_to: str | None = None,
        description: str = "",
    ) -> None:
        self._setup(
            name,
            input_type=input_type,
            output_type=input_type,
            description=description or "a person approves the proposed action",
        )
        self.prompt = prompt or f"Approve {name}?"
        self.assignee = assignee
        self._init_wait(name, deadline, on_timeout, escalate_to)

    async def run(self, input: Any, ctx: RunContext) -> Any:
        request = {
            "kind": "approval",
            "prompt": self.prompt,
            "proposed": to_plain(input),
            "assignee": self.assignee,
        }
        decision: Decision = await ctx.call(self._wait, request)
        ctx.emit(
            "human.decision",
            approved=decision.approved,
            by=decision.by,
            user=decision.user,
            comment=decision.comment,
            edited=decision.edited is not None,
        )
        if not decision.approved:
            raise RejectedError(ctx.key, decision.comment, decision.by)
        if decision.edited is None:
            return input
        return _fit(self.check_input, decision.edited, f"{self.name!r}: the edited value")


class HumanAgent(_HumanBase):
    """A person answers `question` about the input; the answer (checked against
    `answer_type`) is the output. `question` may be a function of the input, for a question
    that depends on it (a router's triage says why it could not decide)."""

    def __init__(
        self,
        name: str,
        *,
        question: str | Callable[[Any], str],
        answer_type: Any = str,
        assignee: str | None = None,
        deadline: float | None = None,
        on_timeout: OnTimeout | str = OnTimeout.REJECT,
        escalate_to: str | None = None,
        description: str = "",
    ) -> None:
        self._setup(
            name, output_type=answer_type, description=description or "a person answers a question"
        )
        self.question = question
        self.assignee = assignee
        self._init_wait(name, deadline, on_timeout, escalate_to)

    async def run(self, input: Any, ctx: RunContext) -> Any:
        question = self.question
        request = {
            "kind": "question",
            "prompt": question if isinstance(question, str) else question(input),
            "context": to_plain(input),
            "assignee": self.assignee,
        }
        decision: Decision = await ctx.call(self._wait, request)
        if not decision.approved:
            raise RejectedError(ctx.key, decision.comment or "no answer", decision.by)
        ctx.emit("human.answer", by=decision.by, user=decision.user)
        return _fit(self.check_output, decision.answer, f"{self.name!r}: the answer")


def _fit(check: Validator | None, value: Any, what: str) -> Any:
    """A person's edit or answer checked against the declared type. `Runtime.resume` replays
    the run up to here before it records a decision, so a value that does not fit is refused
    then, with this message, and never reaches the journal."""
    try:
        return value if check is None else check(value)
    except ValidationError as e:
        raise UsageError(f"{what} does not fit: {describe_validation_error(e)}") from None


# YAML: `kind: human` and `kind: approval` -----------------------------------------------------
class _PersonSpec(Spec):
    """Fields a person's step has. No `retry`/`timeout`/`budget`: a person is waited for, with
    a `deadline` and what happens when it passes (`on_timeout`)."""

    name: str = Field(min_length=1)
    description: str = ""
    assignee: str | None = Field(None, min_length=1, description="who is asked (shown in inbox)")
    deadline: float | None = SECONDS.field(None, description="seconds a person has to answer")
    on_timeout: OnTimeout = OnTimeout.REJECT
    escalate_to: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _escalation(self) -> _PersonSpec:
        if self.on_timeout == "escalate" and (self.escalate_to is None or self.deadline is None):
            raise ValueError("on_timeout: escalate needs `escalate_to` and `deadline`")
        return self

    def waiting(self) -> dict[str, Any]:
        """The constructor keywords every person's step shares."""
        keys = ("assignee", "deadline", "on_timeout", "escalate_to", "description")
        return {k: getattr(self, k) for k in keys}


class HumanSpec(_PersonSpec):
    """A person answers `question` about the input (`HumanAgent`); the run waits meanwhile."""

    kind: Literal["human"]
    question: str = Field(min_length=1)
    answer_type: Ref | None = Field(
        None, description=REF + " (a type the answer must fit; default: text)"
    )


class ApprovalSpec(_PersonSpec):
    """A person approves, edits or rejects the input (`HumanApproval`); rejection stops the
    flow with the reason recorded."""

    kind: Literal["approval"]
    prompt: str = ""
    input_type: Ref | None = Field(None, description=REF + " (the proposed value)")


def _build_human(b: Builder, spec: HumanSpec, loc: Loc) -> HumanAgent | None:
    answer_type: Any = str
    if spec.answer_type is not None:
        answer_type = b.import_object(spec.answer_type, (*loc, "answer_type"))
        if answer_type is None:
            return None
    return b.construct(
        loc,
        lambda: HumanAgent(
            spec.name, question=spec.question, answer_type=answer_type, **spec.waiting()
        ),
    )


def _build_approval(b: Builder, spec: ApprovalSpec, loc: Loc) -> HumanApproval | None:
    input_type: Any = Any
    if spec.input_type is not None:
        input_type = b.import_object(spec.input_type, (*loc, "input_type"))
        if input_type is None:
            return None
    return b.construct(
        loc,
        lambda: HumanApproval(
            spec.name, prompt=spec.prompt, input_type=input_type, **spec.waiting()
        ),
    )


register(HumanSpec, _build_human, draws=HumanAgent, shape="([])", agent=True)
register(ApprovalSpec, _build_approval, draws=HumanApproval, shape="([])", agent=True)
