"""Prompt-injection containment and guardrails at the door (the rules are
`podium.governance.taint` and `podium.governance.guardrails`).

    rt = Runtime("sqlite:///runs.db", taint=True)

With `taint=True` each run keeps a `TaintState`: which agent invocations (step keys) read
untrusted content, and from where. The label follows values through the door:

- a tool's output is untrusted unless the tool is `trusted=True` (a `@sanitiser` is);
  an agent marked `untrusted = True` (a remote peer) gives untrusted output too;
- the caller that receives an untrusted output is tainted from then on (an `LLMAgent`
  that has a tool result in its messages, a pattern that got a tainted agent's output);
- an agent called by a tainted caller, or with an input that occurs in untrusted content,
  is tainted from its first step; what a tainted agent returns is tainted.

A side-effecting tool (`@tool(effect=True)`) called from a tainted context, or with an
argument that occurs in untrusted content, goes only if the calling agent's pinned plan
names it (`LLMAgent(plan=PinnedPlan([...]))`), or every argument value came out of a
sanitiser; else it is escalated: a `taint.escalated` event, and the run waits at that call
for a person (the guard's approval of the exact call, `podium.runtime.guard`). Nothing runs
until then.

Across resume the state is rebuilt as the run replays: replayed tool outputs are labelled
again from their tool, and an agent step replayed whole gets the label it had, which was
journaled as a `taint.label` event before its row completed (so a crash in between re-runs
it rather than losing the label).

Guardrails (`input_guardrails=`, `output_guardrails=` on agents) run in the same slot,
always, whether or not `taint` is on. `containment` is the middleware for the door's
`contain` slot (both), inside the journal record so that a label is written before the row
of the step it labels; the escalation itself is the guard's (`podium.runtime.guard`, in the
`policy` slot before the journal), which asks for the taint rule's verdict.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from podium.core.records import Event
from podium.errors import GuardrailTrippedError
from podium.governance.guardrails import Guardrail
from podium.governance.taint import (
    CLEAN,
    MAX_SHOWN,
    Label,
    PinnedPlan,
    all_declassified,
    check_effect,
    declassified,
    derived_sources,
    render,
)
from podium.governance.verdict import ALLOW, Action, Verdict

if TYPE_CHECKING:
    from podium.runtime.door import Call, Handler

LABEL_EVENT = "taint.label"
TAINT_ON = "taint.on"  # at the start of a contained run: its resumes stay contained


def taint_default() -> bool:
    """`PODIUM_TAINT` as a flag: `1`, `true`, `yes` or `on` turn containment on."""
    return os.environ.get("PODIUM_TAINT", "").strip().lower() in ("1", "true", "yes", "on")


def contained(history: Iterable[Event] | None) -> bool:
    """Whether a run was started with containment on (its events say so)."""
    return any(e.kind == TAINT_ON for e in history or ())


class TaintState:
    """One run's labels. Keys are step keys; an agent invocation's key is the `parent` of
    every call it makes, so a call finds its caller's label in one lookup. Only tainted
    keys are stored: a run that never reads untrusted content keeps empty dicts."""

    __slots__ = ("clean", "journaled", "labels", "plans", "texts", "used")

    def __init__(self, history: Iterable[Event] | None = None) -> None:
        self.labels: dict[str, Label] = {}  # caller key -> sources it read
        self.texts: dict[str, str] = {}  # source key -> its untrusted text (value level)
        self.clean: set[str] = set()  # values a sanitiser vouched for
        self.plans: dict[str, PinnedPlan] = {}  # agent invocation -> its pinned plan
        self.used: dict[str, list[int]] = {}  # agent invocation -> uses of each planned call
        # labels of agent steps journaled by earlier processes of this run (for replay)
        self.journaled: dict[str, Label] = {}
        for e in history or ():
            if e.kind == LABEL_EVENT and e.data:
                self.journaled[e.key] = frozenset(e.data.get("sources", ()))

    def caller_label(self, call: Call) -> Label:
        return self.labels.get(call.parent, CLEAN)

    def sources_of(self, call: Call) -> Label:
        """What `call`'s input derives from: its caller's context, else its values (a
        tainted caller decides alone: matching values would only name more sources)."""
        found = self.labels.get(call.parent, CLEAN)
        if not found and self.texts:
            found = derived_sources(call.input, self.texts)
        return found

    # entering and leaving a call --------------------------------------------------------
    def enter(self, call: Call) -> None:
        """An agent starts tainted if its caller is, or if its input derives from untrusted
        content; its pinned plan (if any) is noted for the calls it makes."""
        if call.kind != "agent":
            return
        label = CLEAN
        if self.labels or self.texts:
            label = self.sources_of(call)
            if label:
                self.labels[call.key] = label
        plan = getattr(call.target, "plan", None)
        if plan is not None and isinstance(plan, PinnedPlan):
            if plan.at_run and label:  # made after reading untrusted text: not a plan
                call.run.emit(
                    "taint.plan_refused",
                    call.key,
                    call.name,
                    data={
                        "reason": "the plan was handed on by a caller that read untrusted content",
                        "sources": sorted(label)[:MAX_SHOWN],
                    },
                )
            else:
                self.plans[call.key] = plan

    def leave(self, call: Call, output: Any, live: bool) -> None:
        """`call` returned `output` to its caller: label the output, taint the caller."""
        kind, target, key = call.kind, call.target, call.key
        out: Label = CLEAN
        if kind == "tool":
            if getattr(target, "sanitiser", False):
                self.clean.update(declassified(output))
            elif not getattr(target, "trusted", False):
                out = frozenset((key,))
                self.texts[key] = render(output)
            if getattr(target, "effect", False):
                self._note_plan_use(call, live)
        elif kind == "agent":
            out = self._agent_output(call, output, live)
        if out:
            parent = call.parent
            self.labels[parent] = self.labels.get(parent, CLEAN) | out

    def _agent_output(self, call: Call, output: Any, live: bool) -> Label:
        key = call.key
        if not (self.labels or self.plans or self.journaled) and not getattr(
            call.target, "untrusted", False
        ):
            return CLEAN  # nothing untrusted read anywhere yet: nothing to carry
        if live:
            out = self.labels.pop(key, CLEAN)
            if getattr(call.target, "untrusted", False):
                out = out | {key}
            if out:  # journaled before the step's row completes (the door writes it after)
                call.run.emit(LABEL_EVENT, key, call.name, data={"sources": sorted(out)})
        else:  # replayed whole: the label it had when it completed
            self.labels.pop(key, None)
            out = self.journaled.get(key, CLEAN)
            prior = call.run.prior or {}
            for src in out:  # the untrusted texts it read, for value-level matches later
                row = prior.get(src)
                if src not in self.texts and row is not None and row.output is not None:
                    self.texts[src] = render(row.output)
        self.plans.pop(key, None)
        self.used.pop(key, None)
        if out:
            self.texts[key] = render(output)
        return out

    # pinned plans -------------------------------------------------------------------------
    def plan_match(self, call: Call) -> int | None:
        plan = self.plans.get(call.parent)
        if plan is None:
            return None
        return plan.match(call.name, call.input, self.used.get(call.parent, ()))

    def _note_plan_use(self, call: Call, live: bool) -> None:
        """A replayed effect that matches its agent's plan used it up, as it did live (live
        calls are counted before they run, in `taint_check`)."""
        if live:
            return
        i = self.plan_match(call)
        if i is not None:
            self.use(call.parent, i, +1)

    def use(self, agent_key: str, i: int, step: int) -> None:
        plan = self.plans[agent_key]
        counts = self.used.setdefault(agent_key, [0] * len(plan.calls))
        counts[i] += step


def state_of(call: Call) -> TaintState | None:
    return call.run.taint


def verdict_for(call: Call) -> Verdict:
    """The taint rule's verdict on `call` (no side effects): allow, or approve (escalate) a
    side-effecting tool call whose arguments derive from untrusted content and that no
    pinned plan or sanitiser lets through."""
    state = call.run.taint
    if state is None or call.kind != "tool" or not getattr(call.target, "effect", False):
        return ALLOW
    sources = state.sources_of(call)
    if not sources:
        return ALLOW
    return check_effect(
        call.name,
        call.input,
        sources,
        plan_ok=state.plan_match(call) is not None,
        sanitised=all_declassified(call.input, state.clean),
    )


async def taint_check(call: Call, nxt: Handler) -> Any:
    """The door middleware of the taint rule: labels follow the call, and a side-effecting
    call derived from untrusted content is escalated (see the module). Costs two dict
    lookups per call in a run with `taint` off or nothing untrusted read yet."""
    state = call.run.taint
    if state is None:
        return await nxt(call)
    state.enter(call)
    used = None
    try:
        if call.kind == "tool" and getattr(call.target, "effect", False):
            used = _gate(state, call)
        output = await nxt(call)
    except BaseException:
        if used is not None:
            state.use(call.parent, used, -1)  # it did not happen: the use is not spent
        raise
    state.leave(call, output, True)
    return output


def _gate(state: TaintState, call: Call) -> int | None:
    """Decide an effect call (escalate it, or let it go); return the planned call it uses
    up, if any (counted at once, so two calls in one turn cannot share one use)."""
    verdict = verdict_for(call)
    if verdict.action == Action.APPROVE:
        return None  # escalated: the guard, before this, had a person approve this call
    match = state.plan_match(call)
    if match is not None:
        state.use(call.parent, match, +1)
    if verdict.rule:
        call.run.emit(
            "taint.allowed", call.key, call.name, data={"tool": call.name, "rule": verdict.rule}
        )
    return match


def on_replay(call: Call, output: Any) -> None:
    """The replay layer hands every step it replays here, so labels are rebuilt as they
    were: the same decisions after a resume."""
    state = call.run.taint
    if state is not None:
        state.leave(call, output, False)


def escalation_sources(call: Call) -> list[str]:
    """The untrusted content an escalated call's arguments derive from (step keys), for
    the person asked to approve it (`podium inbox`)."""
    state = call.run.taint
    return sorted(state.sources_of(call))[:MAX_SHOWN] if state is not None else []


# guardrails ---------------------------------------------------------------------------------
async def guardrails_check(call: Call, nxt: Handler) -> Any:
    """Run an agent's input guardrails before it and its output guardrails after it."""
    if call.kind != "agent":
        return await nxt(call)
    before: tuple[Guardrail, ...] = getattr(call.target, "input_guardrails", ())
    if before:
        await _guard(call, before, call.input, "input")
    output = await nxt(call)
    after: tuple[Guardrail, ...] = getattr(call.target, "output_guardrails", ())
    if after:
        await _guard(call, after, output, "output")
    return output


async def _guard(call: Call, guards: tuple[Guardrail, ...], value: Any, where: str) -> None:
    for g in guards:
        result = await g.check(value)
        if result.tripwire:
            info = None if result.info is None else str(result.info)
            call.run.emit(
                "guard.tripped",
                call.key,
                call.name,
                data={"guard": g.name, "where": where, "info": info},
            )
            raise GuardrailTrippedError(g.name, where, call.name, call.key, info)


async def containment(call: Call, nxt: Handler) -> Any:
    """Guardrails and the taint rule together: the door's `policy` slot, entered only by
    runs that are contained or have an agent with guardrails."""
    if call.kind == "agent" and getattr(call.target, "guarded", False):
        return await guardrails_check(call, partial(taint_check, nxt=nxt))
    return await taint_check(call, nxt)
