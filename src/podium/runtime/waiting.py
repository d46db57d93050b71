"""Runs that wait for the outside world: finding what they wait for, and recording answers.

A step that waits raises `Suspended`; the journal keeps it as a `suspended` row whose output
is the request (what to show a person) and whose error is the reason. A decision is recorded
as that step's `completed` output; resuming the run then replays it like any other step.

A decision says what was decided, always: approve (optionally with an edit), reject, or
answer. Nothing is inferred from a missing field, because a wrong guess here runs a payment.
What a request takes depends on its kind: an approval is approved or rejected, a question
(and a router's triage, a chat's deadlock) is answered or rejected, and an effect of unknown
outcome takes any of the three.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, computed_field, model_validator

from podium.core.records import RunRecord, StepRecord, StepStatus
from podium.core.serde import describe_validation_error, to_plain
from podium.errors import UsageError

Action = Literal["approve", "reject", "answer"]

_HOW = (
    "say what was decided: Decision.approve(edited=...), Decision.reject(comment) or "
    "Decision.answer(value), or a dict with action='approve'|'reject'|'answer'"
)


class Decision(BaseModel):
    """What a person decided about a waiting step.

    `action` is required: `approve` (with `edited` replacing the proposed value, if given),
    `reject` (with `comment` as the reason), or `answer` (with `answer`). `by` is who the
    caller says decided (free text); `user` is the operating-system account of the process
    that recorded the decision and `identity` an authenticated identity (the HTTP server's API
    key name; None from the CLI and the library): podium sets
    both when it records the decision, whatever the caller passed.

    Older dicts say `approved: true/false` instead of `action`; they are read the same way,
    as long as they are explicit (`{}` or `approved: "no"` are refused).
    """

    action: Action
    comment: str = ""
    edited: Any = None
    answer: Any = None
    by: str | None = None
    user: str | None = None
    identity: str | None = None
    at: float = Field(default_factory=time.time)
    # An approval of a tool call: how long it stays good (seconds; set by the caller), and,
    # stamped by podium when the decision is recorded, the hash of the exact call approved
    # (the edited arguments, if edited) and when the approval runs out.
    ttl: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    args_hash: str | None = None
    expires_at: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def approved(self) -> bool:
        """False for a rejection; kept so that readers of older decisions still work."""
        return self.action != "reject"

    @classmethod
    def approve(
        cls, edited: Any = None, *, comment: str = "", by: str | None = None, **extra: Any
    ) -> Decision:
        """Approve the proposed value, or `edited` in its place."""
        return cls(action="approve", edited=edited, comment=comment, by=by, **extra)

    @classmethod
    def reject(cls, comment: str = "", *, by: str | None = None, **extra: Any) -> Decision:
        """Reject: the flow stops, `comment` recorded as the reason."""
        return cls(action="reject", comment=comment, by=by, **extra)

    @classmethod
    def _answer_with(cls, value: Any, *, by: str | None = None, **extra: Any) -> Decision:
        """Answer a question (or a triage, or an effect's outcome) with `value`."""
        return cls(action="answer", answer=value, by=by, **extra)

    @model_validator(mode="before")
    @classmethod
    def _explicit(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        approved = data.pop("approved", None)
        if approved is not None and not isinstance(approved, bool):
            raise ValueError(f"approved must be true or false, got {approved!r}; {_HOW}")
        action = data.get("action")
        if action is None:
            action = data["action"] = _legacy_action(approved, data)
        elif action not in ("approve", "reject", "answer"):
            raise ValueError(f"action {action!r} is not approve, reject or answer; {_HOW}")
        elif approved is not None and approved != (action != "reject"):
            raise ValueError(f"action {action!r} contradicts approved={approved}; {_HOW}")
        _check_fields(action, data)
        return data


def _legacy_action(approved: bool | None, data: dict[str, Any]) -> str:
    """The action an `approved`-style dict states, or an error if it states none."""
    if approved is False:
        return "reject"
    if data.get("answer") is not None:
        return "answer"
    if approved is True:
        return "approve"
    raise ValueError(f"this decision does not {_HOW}")


def _check_fields(action: Any, data: dict[str, Any]) -> None:
    if action == "reject" and (data.get("edited") is not None or data.get("answer") is not None):
        raise ValueError("a rejection carries no edit and no answer; decide one thing")
    if action == "approve" and data.get("answer") is not None:
        raise ValueError("an approval carries no answer (edited= replaces the proposed value)")
    if action == "answer" and data.get("edited") is not None:
        raise ValueError("an answer carries no edit; decide one thing")


# `Decision.answer(value)` reads like `Decision.approve()` and `podium answer`, but `answer` is
# also the field that holds the value. A classmethod is a non-data descriptor, so on the class
# it is the constructor, while an instance's own value (in its `__dict__`) wins on instances.
Decision.answer = classmethod(Decision._answer_with.__func__)  # type: ignore[attr-defined]


def as_decision(value: Any) -> Decision:
    """`value` as a `Decision`, or a `UsageError` that says how to state one."""
    if isinstance(value, Decision):
        return value
    if not isinstance(value, dict):
        raise UsageError(f"a decision must {_HOW}; got {value!r}")
    try:
        return Decision.model_validate(value)
    except ValidationError as e:
        raise UsageError(f"decision {value!r}: {_plain_reason(e)}") from None


def _plain_reason(error: ValidationError) -> str:
    (first, *_) = error.errors(include_url=False)
    if first.get("type") == "value_error":
        return str(first.get("msg", "")).removeprefix("Value error, ")
    return describe_validation_error(error)


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    """One thing a waiting run needs from a person: shown by `podium inbox`."""

    run_id: str
    step: str
    agent: str
    reason: str
    request: Any
    since: float
    deadline_at: float | None
    # when the request was read: `overdue` compares against it, so a runtime's clock decides
    as_of: float = field(default_factory=time.time, compare=False, repr=False)

    @property
    def overdue(self) -> bool:
        return self.deadline_at is not None and self.as_of >= self.deadline_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "step": self.step,
            "agent": self.agent,
            "reason": self.reason,
            "request": self.request,
            "since": self.since,
            "deadline_at": self.deadline_at,
            "overdue": self.overdue,
        }


def waiting_requests(
    run: RunRecord, steps: list[StepRecord], now: float | None = None
) -> list[WaitingRequest]:
    """The steps of `run` that wait for a decision, overdue or not as of `now` (default: the
    real time)."""
    as_of = time.time() if now is None else now
    out = []
    for s in steps:
        if s.status != StepStatus.SUSPENDED:
            continue
        request = s.output
        deadline = request.get("deadline_at") if isinstance(request, dict) else None
        out.append(
            WaitingRequest(
                run.run_id,
                s.key,
                s.agent,
                s.error or "",
                request,
                s.ended_at or s.started_at,
                float(deadline) if deadline is not None else None,
                as_of,
            )
        )
    return out


# What each kind of request takes, and how to give it. A request without a kind (a router's
# triage, a chat's deadlock) is a question.
_TAKES: dict[str, tuple[str, ...]] = {
    "approval": ("approve", "reject"),
    "question": ("answer", "reject"),
    "effect_unknown": ("approve", "reject", "answer"),
}


def _check_fits(run_id: str, waiting: StepRecord, decision: Decision) -> None:
    request = waiting.output if isinstance(waiting.output, dict) else {}
    kind = str(request.get("kind") or "question")
    takes = _TAKES.get(kind, _TAKES["question"])
    if decision.action in takes:
        return
    at = f"run {run_id} {{}} at {waiting.key}"
    if kind == "approval":
        raise UsageError(
            at.format("waits for an approval")
            + f": approve or reject it (podium approve {run_id} / podium reject {run_id} "
            "--comment WHY; Decision.approve() / Decision.reject(comment)); "
            "an answer does not fit"
        )
    raise UsageError(
        at.format("asks a question")
        + f": answer it (podium answer {run_id} JSON; Decision.answer(value)) or reject it; "
        f"{'approving' if decision.action == 'approve' else 'that'} does not fit"
    )


def os_user() -> str:
    """The operating-system account of this process: recorded with every decision, beside
    the free-text `by`, because it cannot be set from the command line."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):  # no pwd (Windows), or an unnamed uid
        pass
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"


def decided_step(
    run_id: str,
    steps: list[StepRecord],
    decision: Decision,
    step: str | None,
    now: float | None = None,
    *,
    identity: str | None = None,
) -> StepRecord:
    """The journal row that records `decision` as the output of the waiting step: only a
    decision that fits the request, stamped with the account that recorded it and the
    authenticated `identity` of the caller, if any (an API key's name): whatever the
    decision itself said about either is replaced."""
    waiting = [s for s in steps if s.status == StepStatus.SUSPENDED]
    if step is not None:
        waiting = [s for s in waiting if s.key == step]
        if not waiting:
            raise UsageError(f"run {run_id} has no step {step!r} waiting for a decision")
    if not waiting:
        raise UsageError(f"run {run_id} is not waiting for a decision")
    if len(waiting) > 1:
        keys = ", ".join(s.key for s in waiting)
        raise UsageError(f"run {run_id} waits at several steps ({keys}); name one with step=")
    (w,) = waiting
    _check_fits(run_id, w, decision)
    at = time.time() if now is None else now
    stamped = decision.model_copy(
        update={"user": os_user(), "identity": identity, **_binding(w.output, decision, at)}
    )
    return StepRecord(
        run_id,
        w.key,
        w.agent,
        w.kind,
        StepStatus.COMPLETED,
        attempt=w.attempt,
        output=to_plain(stamped),
        started_at=w.started_at,
        ended_at=at,
    )


def _binding(request: Any, decision: Decision, now: float) -> dict[str, Any]:
    """What binds an approval of a tool call to that call: the hash of the arguments that
    will run (the edited ones, if edited) and when it runs out. Only here, where a person's
    decision is recorded, is it set: whatever a caller (or a model) put there is dropped."""
    if not (isinstance(request, dict) and request.get("args_hash")) or decision.action != "approve":
        return {"args_hash": None, "expires_at": None}
    from podium.governance.hashing import args_hash

    tool = str(request.get("tool", ""))
    edited = decision.edited
    bound = request["args_hash"] if edited is None else args_hash(tool, to_plain(edited))
    ttl = decision.ttl if decision.ttl is not None else request.get("ttl")
    return {"args_hash": bound, "expires_at": None if ttl is None else now + float(ttl)}
