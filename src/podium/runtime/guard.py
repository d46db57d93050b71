"""The door's `policy` slot: every tool call, whoever asks, passes one check.

A run enters this slot when it has a policy (`Runtime(policy=...)`, a workflow file's
`policies:`), or once it uses a tool declared `@tool(needs_approval=True)`; a run with
neither never does, so it pays nothing. The slot sits before the journal: a call it refuses
writes no step row (its `policy.denied` event is the record), and an approval is settled
before an effect's `started` row is made durable.

- Agent calls pass through; the roles an agent declares are noted for the tool calls its
  step makes.
- A tool call gets the strictest verdict of the run's policies (the ones it was started
  with, kept in the store so that every process that resumes it checks the same, plus the
  resuming runtime's) and of the tool's own `needs_approval`.
- DENY: a `policy.denied` event, then `PolicyDeniedError` (never retried). An `LLMAgent`
  hands it back to its model as a refusal; `ctx.use` raises it to the caller.
- APPROVE: a person must approve this exact call. The run waits at a step below the tool
  call (`<tool step>/approval.<hash>#n`) whose request shows the tool, the arguments and
  their hash (`podium inbox`). Only a decision recorded by `Runtime.resume` / `podium
  approve` completes that step, stamped with the hash of the arguments it approves (the
  edited ones, if edited) and when it runs out: an approval is bound to one call, used by
  that call only, and a model's text or tool result cannot make one. An approval that ran
  out asks again; a rejection is a refusal (`PolicyDeniedError`, rule `approval`).

In a contained run (`Runtime(taint=True)`) the taint rule's verdict joins the others: a
side-effecting call derived from untrusted content that no pinned plan or sanitiser lets go
is escalated here, to the same approval of the exact call (its request names the untrusted
sources), so a person answers one request whichever rules asked. The labels themselves
are kept by the door's `contain` slot (`podium.runtime.taint.containment`), inside the
journal record.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from podium.core.serde import describe_validation_error, to_plain
from podium.errors import PolicyDeniedError, Suspended
from podium.governance.hashing import args_hash
from podium.governance.policy import Policy
from podium.governance.verdict import ALLOW, Action, Verdict, strictest
from podium.runtime.taint import escalation_sources
from podium.runtime.taint import verdict_for as taint_verdict

if TYPE_CHECKING:
    from podium.runtime.door import Call, Handler, Middleware

POLICY_KV = "podium.policies"  # run id -> the policies the run was started with
NEEDS_APPROVAL = Verdict(Action.APPROVE, "this tool needs a person's approval", "tool")


class Guard:
    """What one run is checked against: its policies, and the roles its agents declared
    (by their step key: the tool calls a step makes name it as their parent)."""

    __slots__ = ("policies", "roles")

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        self.policies = tuple(policies)
        self.roles: dict[str, tuple[str, ...]] = {}

    def verdict(self, call: Call, args: Any) -> Verdict:
        """The strictest verdict of the policies and the tool's own `needs_approval`, on the
        arguments' JSON form (a pydantic argument is checked as the mapping it sends)."""
        roles = self.roles.get(call.parent, ())
        plain = to_plain(args) if self.policies else None
        verdicts = [p.check(call.agent, roles, call.name, plain) for p in self.policies]
        if getattr(call.target, "needs_approval", False):
            verdicts.append(NEEDS_APPROVAL)
        if call.run.taint is not None:
            verdicts.append(taint_verdict(call))
        return strictest(*verdicts) if verdicts else ALLOW

    def ttl(self, verdict: Verdict) -> float | None:
        """How long an approval asked for by `verdict` stays good (None: until used)."""
        ttls = (p.approval_ttl_for(verdict) for p in self.policies)
        return next((t for t in ttls if t is not None), None)


async def guard(call: Call, nxt: Handler) -> Any:
    """The policy slot's middleware."""
    g = call.run.guard
    if g is None:
        return await nxt(call)
    if call.kind == "agent":
        roles = getattr(call.target, "roles", None)
        if roles:
            g.roles[call.key] = tuple(roles)
        return await nxt(call)
    if call.kind != "tool" or getattr(call.target, "ends_turn", False):
        # A handoff's transfer tool changes who speaks, not the world, and goes only to
        # the receivers its pattern declares: the receiver's own tool calls are checked.
        return await nxt(call)
    verdict = g.verdict(call, call.input)
    if verdict.action == Action.DENY:
        raise _denied(call, verdict)
    if verdict.action == Action.APPROVE:
        await _approved(call, g, verdict)
    return await nxt(call)


def with_guard(mw: Middleware) -> Middleware:
    """A caller's own middleware for the policy slot, run after the guard: a policy cannot
    be switched off by filling its slot (the guard passes straight on in runs without one)."""

    async def both(call: Call, nxt: Handler) -> Any:
        return await guard(call, partial(mw, nxt=nxt))  # type: ignore[call-arg]

    return both


def _denied(call: Call, verdict: Verdict, args: Any = None) -> PolicyDeniedError:
    """Record the denial (`policy.denied`) and the error that carries it."""
    plain = to_plain(call.input if args is None else args)
    h = args_hash(call.name, plain)
    agent = call.agent
    data = {
        "tool": call.name,
        "agent": agent,
        "rule": verdict.rule,
        "reason": verdict.reason,
        "args_hash": h,
    }
    _emit_once(call, "policy.denied", data)
    return PolicyDeniedError(
        f"agent {agent!r} may not call tool {call.name!r} at {call.key}: {verdict.reason} "
        f"(rule {verdict.rule or 'policy'}); a policy refusal is never retried",
        tool=call.name,
        agent=agent,
        rule=verdict.rule,
        reason=verdict.reason,
        args_hash=h,
    )


def _emit_once(call: Call, kind: str, data: dict[str, Any]) -> None:
    """Emit a security event of this step, unless an earlier process of the run did: a
    resumed run replays its denials and approvals (the same policy, the same decision, the
    same verdict), and each is counted once."""
    history = call.run.history
    if history and any(e.kind == kind and e.key == call.key and e.data == data for e in history):
        return
    call.run.emit(kind, call.key, call.agent, data=data)


class _AskApproval:
    """The step a run waits at for a person's approval of one tool call: it always
    suspends; only a recorded decision (its journaled output) ever completes it."""

    __slots__ = ("name",)
    retry = None
    timeout = None

    def __init__(self, h: str) -> None:
        self.name = f"approval.{h[:16]}"

    async def invoke(self, call: Call) -> Any:
        request = call.input
        call.run.emit(
            "approval.requested",
            call.key,
            str(request.get("agent", "")),
            data={k: request.get(k) for k in ("tool", "args_hash", "reason", "rule")},
        )
        raise Suspended(call.key, f"approve the call of tool {request['tool']!r}", request)


async def _approved(call: Call, g: Guard, verdict: Verdict) -> None:
    """Wait for a person's approval of this exact call, then let it run (with the edited
    arguments, if the person edited them). A rejection raises `PolicyDeniedError`."""
    from podium.runtime.context import RunContext
    from podium.runtime.waiting import Decision

    run, tool = call.run, call.name
    plain = to_plain(call.input)
    h = args_hash(tool, plain)
    ttl = g.ttl(verdict)
    request = {
        "kind": "approval",
        "prompt": f"Agent {call.agent!r} asks to call tool {tool!r} with these arguments.",
        "tool": tool,
        "args": plain,
        "args_hash": h,
        "reason": verdict.reason,
        "rule": verdict.rule,
        "agent": call.agent,
        "ttl": ttl,
    }
    if verdict.rule.startswith("taint"):  # the untrusted content its arguments derive from
        request["sources"] = escalation_sources(call)
        _emit_once(
            call,
            "taint.escalated",
            {"tool": tool, "reason": verdict.reason, "sources": request["sources"]},
        )
    ctx = RunContext(run, call.key, call.agent)
    ask = _AskApproval(h)
    while True:
        decision = Decision.model_validate(await ctx.invoke(ask, "human", request))
        if decision.user is None:
            raise _denied(call, Verdict(Action.DENY, "an approval nobody recorded", "approval"))
        who = {"by": decision.by, "user": decision.user}
        if decision.action == "reject":
            _emit_once(call, "approval.rejected", {"tool": tool, "args_hash": h, **who})
            why = decision.comment or "no reason given"
            reason = f"rejected by {decision.by or decision.user}: {why}"
            raise _denied(call, Verdict(Action.DENY, reason, "approval"))
        expires = decision.expires_at
        if expires is not None and run.clock.now() > expires:
            gone = {"tool": tool, "args_hash": h, "expires_at": expires}
            _emit_once(call, "approval.expired", gone)
            continue  # ran out before the call could use it: ask again
        break
    args = plain if decision.edited is None else to_plain(decision.edited)
    bound = args_hash(tool, args)
    if decision.args_hash != bound:
        raise _denied(call, Verdict(Action.DENY, "the approval is for another call", "approval"))
    if decision.edited is not None:
        _take_edit(call, g, args)
    data = {"tool": tool, "args_hash": bound, **who, "ttl": decision.ttl or ttl}
    _emit_once(call, "approval.granted", data)
    _emit_once(call, "approval.used", {"args_hash": bound})


def _take_edit(call: Call, g: Guard, args: Any) -> None:
    """The person's edit replaces the arguments: it must fit the tool, and the policies'
    limits still hold (an approval covers the need for a person, not a hard limit)."""
    check = getattr(call.target, "check_input", None)
    if check is not None:
        try:
            args = check(args)
        except ValidationError as e:
            why = f"the edited arguments do not fit: {describe_validation_error(e)}"
            raise _denied(call, Verdict(Action.DENY, why, "approval"), args) from None
    verdict = g.verdict(call, args)
    if verdict.action == Action.DENY:
        raise _denied(call, verdict, args)
    call.input = args
